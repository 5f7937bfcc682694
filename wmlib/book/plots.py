"""Interactive figures for the book (plotly), drawn offline.

:func:`setup_book_page` makes figures render in the built HTML without a CDN: plotly.js ships once in the
book's ``_static/`` and every figure is emitted as an HTML ``<div>`` that uses it (myst-nb drops plotly 7's default
mime type, so without this the figures vanish).

Used by every chapter; chapter 1 uses :func:`spectrogram_figure` and the corpus statistics figures.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SOURCE_COLOURS = {"speech": "#1f77b4", "music": "#d62728", "noise": "#7f7f7f"}


def setup_book_page() -> None:
    """The hidden first cell of every chapter: plotly figures as HTML divs that use the page's own plotly.js (in
    Jupyter and in the book), and no tqdm notebook warning in the page.  Under ``python -m wmlib figures``
    (:mod:`wmlib.book.figures`), every figure shown is also written to a file.

    ``tqdm.auto`` (imported by librosa and others) warns "IProgress not found" in a kernel without ipywidgets; the
    chapters turn their progress bars off, so the warning says nothing to a reader and is silenced here.
    """
    import os
    import warnings

    import plotly.io as pio
    from plotly.io._base_renderers import HtmlRenderer

    from .figures import FIGURES_ENV, PREFIX_ENV, export_renderer

    class OfflineDivRenderer(HtmlRenderer):
        def __init__(self):
            super().__init__(connected=False, global_init=False, full_html=False, include_plotlyjs=False)

        def to_mimebundle(self, fig_dict):  # plotly's own adds a MathJax <script> from a CDN to every figure
            return {"text/html": figure_div(fig_dict)}

    pio.renderers["book"] = OfflineDivRenderer()
    pio.renderers.default = "book+plotly_mimetype"  # the div for HTML, the mime bundle for JupyterLab
    if os.environ.get(FIGURES_ENV):
        pio.renderers["export"] = export_renderer(os.environ[FIGURES_ENV], os.environ.get(PREFIX_ENV, "figure"))
        pio.renderers.default += "+export"
    pio.templates.default = "plotly_white"
    warnings.filterwarnings("ignore", message="IProgress not found")


def figure_div(figure) -> str:
    """A plotly figure (or its dict) as an HTML ``<div>`` drawn by the page's own plotly.js: nothing from a CDN."""
    from plotly.io import to_html

    return to_html(figure, include_plotlyjs=False, include_mathjax=False, full_html=False, default_width="100%",
                   default_height=525)


def show_together(items) -> None:
    """Show several figures and players (and short labels) as one numbered figure of the built book.

    myst-nb captions a cell's figure by wrapping each of its outputs; a figure cell must therefore have exactly one.
    In the book build (:data:`wmlib.book.build.BOOK_BUILD_ENV` set), ``items`` become one HTML output, in order:
    plotly figures as divs that use the page's plotly.js, ``IPython.display.Audio`` players, strings as paragraphs.
    Elsewhere (Jupyter, the figure export) each is shown in turn, as ``.show()`` and ``display`` would.
    """
    import html
    import os

    import plotly.graph_objects as go
    from IPython.display import HTML, display

    from .build import BOOK_BUILD_ENV

    items = list(items)
    if not os.environ.get(BOOK_BUILD_ENV):
        for item in items:
            item.show() if isinstance(item, go.Figure) else display(item)
        return
    parts = []
    for item in items:
        if isinstance(item, go.Figure):
            parts.append(figure_div(item))
        elif isinstance(item, str):
            parts.append(f"<p>{html.escape(item)}</p>")
        else:
            parts.append(item._repr_html_())
    display(HTML('<div class="wm-together">' + "".join(parts) + "</div>"))


def spectrogram_figure(mel: np.ndarray, hop_seconds: float = 0.01, title: str = "",
                       token_seconds: float | None = 0.04, segments: pd.DataFrame | None = None,
                       label_column: str = "phone", pitch: pd.DataFrame | None = None):
    """A log-mel spectrogram with optional token grid, labelled segments and a pitch track.

    Args:
        mel: ``(n_mels, frames)`` log-mel in dB.
        hop_seconds: seconds per frame.
        token_seconds: draw a faint line at every token boundary (``None`` for none).
        segments: rows with ``start_s, end_s`` and ``label_column``, written above the spectrogram.
        pitch: rows with ``time_s`` and ``mel_bin`` (the label's pitch on the mel axis) drawn as a line.

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    times = np.arange(mel.shape[1]) * hop_seconds
    figure = go.Figure(go.Heatmap(z=mel, x=times, y=np.arange(mel.shape[0]), colorscale="Magma",
                                  colorbar=dict(title="dB"), hovertemplate="t=%{x:.2f}s bin=%{y} %{z:.0f} dB"))
    duration = mel.shape[1] * hop_seconds
    if token_seconds:
        figure.add_trace(vertical_lines(np.arange(0, duration, token_seconds), mel.shape[0],
                                        dict(width=0.3, color="rgba(255,255,255,0.25)")))
    if segments is not None and len(segments):
        figure.add_trace(vertical_lines(segments["start_s"].to_numpy(), mel.shape[0],
                                        dict(width=1, color="rgba(0,255,255,0.6)")))
        figure.add_trace(go.Scatter(
            x=(segments["start_s"] + segments["end_s"]) / 2, y=np.full(len(segments), mel.shape[0] + 2),
            text=segments[label_column].astype(str), mode="text", textfont=dict(size=10), name=label_column,
            hovertemplate="%{text}<extra></extra>"))
    if pitch is not None and len(pitch):
        figure.add_trace(go.Scatter(x=pitch["time_s"], y=pitch["mel_bin"], mode="lines", name="f0 label",
                                    line=dict(color="cyan", width=2), connectgaps=False))
    title = wrap(title, 45)  # a sentence as title: wrapped, clear of the toolbar at a laptop's page width
    lines = title.count("<br>") + 1
    figure.update_layout(title=title, xaxis_title="time (s)", yaxis_title="mel bin", height=320 + 22 * lines,
                         margin=dict(l=50, r=20, t=40 + 22 * lines, b=40), showlegend=False)
    figure.update_yaxes(range=[-0.5, mel.shape[0] + 4])
    return figure


def vertical_lines(xs: np.ndarray, height: float, line: dict):
    """One line trace drawing a vertical line at each of ``xs`` from 0 to ``height`` (hundreds of ``add_vline``
    shapes make a figure slow to build and to draw)."""
    import plotly.graph_objects as go

    x = np.repeat(np.asarray(xs, dtype=float), 3)
    y = np.tile([-0.5, height - 0.5, np.nan], len(xs))
    x[2::3] = np.nan
    return go.Scatter(x=x, y=y, mode="lines", line=line, hoverinfo="skip", showlegend=False)


def hz_to_mel_bin(hz: np.ndarray, n_mels: int = 64, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """Fractional mel-bin index of frequencies, to draw pitch over a mel spectrogram."""
    import librosa

    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]
    return np.interp(librosa.hz_to_mel(hz), librosa.hz_to_mel(centres), np.arange(n_mels))


def utterance_figure(corpus, utt_id: str, config=None):
    """Spectrogram of one utterance with its own labels: phones (speech), note names and pitch (music), events.

    Used by chapter 1's corpus tour.
    """
    import librosa

    from wmlib.data.features import FeatureConfig, log_mel

    config = config or FeatureConfig()
    row = corpus.utterances.set_index("utt_id").loc[utt_id]
    mel = log_mel(corpus.audio(utt_id), config)
    hop = config.hop_length / config.sample_rate
    title = f"{row['source']} · {row['voice']} · {utt_id}" + (f" — “{row['text']}”" if row["text"] else "")
    if row["source"] == "speech":
        return spectrogram_figure(mel, hop, title, segments=corpus.segments("phones", utt_id), label_column="phone")
    if row["source"] == "music":
        notes = corpus.segments("notes", utt_id)
        notes = notes.assign(name=[librosa.midi_to_note(int(p), unicode=False) for p in notes["pitch"]])
        pitch = pd.DataFrame({  # one line segment per note, NaN between notes so the line breaks
            "time_s": np.ravel(np.column_stack([notes["start_s"], notes["end_s"], notes["end_s"]])),
            "mel_bin": np.ravel(np.column_stack([hz_to_mel_bin(librosa.midi_to_hz(notes["pitch"]),
                                                               config.n_mels, config.fmin, config.fmax)] * 2
                                                + [np.full(len(notes), np.nan)])),
        })
        return spectrogram_figure(mel, hop, title, segments=notes, label_column="name", pitch=pitch)
    return spectrogram_figure(mel, hop, title, segments=corpus.segments("events", utt_id), label_column="event")


def duration_figure(utterances: pd.DataFrame):
    """Histogram of utterance durations per source (chapter 1)."""
    import plotly.express as px

    figure = px.histogram(utterances, x="duration_s", color="source", nbins=40, barmode="overlay",
                          color_discrete_map=SOURCE_COLOURS, labels={"duration_s": "utterance duration (s)"})
    figure.update_layout(height=300, margin=dict(l=50, r=20, t=30, b=40))
    return figure


def phone_distribution_figure(token_labels: pd.DataFrame):
    """Token count per phone, coloured by phone class, over speech tokens (chapter 1)."""
    import plotly.express as px

    speech = token_labels[token_labels["source"] == "speech"]
    counts = speech.groupby(["phone", "phone_class"]).size().rename("tokens").reset_index()
    counts = counts.sort_values("tokens", ascending=False)
    figure = px.bar(counts, x="phone", y="tokens", color="phone_class", labels={"tokens": "40 ms tokens"})
    figure.update_layout(height=320, margin=dict(l=50, r=20, t=30, b=40), xaxis_tickangle=0)
    return figure


def pitch_distribution_figure(token_labels: pd.DataFrame):
    """Histogram of voiced-token pitch (MIDI units) for speech (estimated) and music (exact) (chapter 1)."""
    import plotly.express as px

    voiced = token_labels[token_labels["voiced"]].assign(
        kind=lambda frame: frame["source"] + np.where(frame["f0_estimated"], " (pYIN estimate)", " (MIDI label)"))
    figure = px.histogram(voiced, x="midi_pitch", color="kind", nbins=70, barmode="overlay",
                          labels={"midi_pitch": "pitch (MIDI note number; 60 = C4 = 262 Hz)"})
    figure.update_layout(height=300, margin=dict(l=50, r=20, t=30, b=40))
    return figure


def waveform_and_spectrogram_figure(audio: np.ndarray, mel: np.ndarray, sample_rate: int = 16_000,
                                    hop_seconds: float = 0.01, title: str = ""):
    """The waveform above its log-mel spectrogram, on one time axis (chapter 1)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    step = 8  # every 8th sample is plenty for a picture and keeps the page light
    time_s = np.arange(0, len(audio), step) / sample_rate
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.05)
    figure.add_trace(go.Scatter(x=time_s, y=audio[::step], line=dict(width=0.6)), row=1, col=1)
    figure.add_trace(go.Heatmap(z=mel, x=np.arange(mel.shape[1]) * hop_seconds, colorscale="Magma",
                                showscale=False), row=2, col=1)
    figure.update_layout(height=420, showlegend=False, title=title)
    figure.update_yaxes(title_text="pressure", row=1, col=1)
    figure.update_yaxes(title_text="mel bin", row=2, col=1)
    figure.update_xaxes(title_text="time (s)", row=2, col=1)
    return figure


def token_strip_figure(token_mels: np.ndarray, labels: list[str], title: str = ""):
    """Tokens side by side with a gap between them, each labelled (chapter 1: "why tokens").

    Args:
        token_mels: ``(T, n_mels, frames_per_token)``.
        labels: one tick label per token (e.g. its phone).
    """
    import plotly.graph_objects as go

    count, _, width = token_mels.shape
    separated = np.concatenate([np.pad(t, ((0, 0), (0, 1)), constant_values=np.nan) for t in token_mels], axis=1)
    figure = go.Figure(go.Heatmap(z=separated, colorscale="Magma", showscale=False))  # (n_mels, T * (width + 1))
    figure.update_layout(height=280, title=title, yaxis_title="mel bin",
                         xaxis=dict(tickvals=np.arange(count) * (width + 1) + (width - 1) / 2, ticktext=list(labels)))
    return figure


# ----------------------------------------------------------------------------------------------------------------
# World-model figures (chapters "The world model" and "Training and prediction")

METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def spectrogram_stack_figure(mels: dict, hop_seconds: float = 0.01, title: str = "", marker_s: float | None = None):
    """Several ``(n_mels, frames)`` dB spectrograms of one length, one above the other on a shared colour scale.

    Args:
        mels: panel title -> spectrogram.
        marker_s: draw a vertical line at this time in every panel (e.g. where the context ends).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    values = np.concatenate([m.ravel() for m in mels.values()])
    low, high = np.percentile(values[np.isfinite(values)], [2, 99.5])
    figure = make_subplots(rows=len(mels), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=list(mels))
    for row, mel in enumerate(mels.values(), start=1):
        figure.add_trace(go.Heatmap(z=mel, x=np.arange(mel.shape[1]) * hop_seconds, colorscale="Magma", zmin=low,
                                    zmax=high, showscale=row == 1, colorbar=dict(title="dB", len=0.5, y=0.8),
                                    hovertemplate="t=%{x:.2f}s bin=%{y} %{z:.0f} dB<extra></extra>"), row=row, col=1)
        figure.update_yaxes(title_text="mel bin", row=row, col=1)
        if marker_s is not None:
            figure.add_vline(x=marker_s, line_width=2, line_dash="dash", line_color="cyan", row=row, col=1)
    figure.update_xaxes(title_text="time (s)", row=len(mels), col=1)
    figure.update_layout(height=90 + 200 * len(mels), title=title, margin=dict(l=50, r=20, t=70, b=40))
    return figure


def learning_curves_figure(metrics: dict, panels: dict, x: str = "step"):
    """Training curves of several runs, one panel per metric.

    Args:
        metrics: run name -> its ``metrics.jsonl`` as a DataFrame (:func:`wmlib.model.train.read_metrics`).
        panels: metric column -> panel title; a run without that column is left out of the panel.
        x: the column on the horizontal axis (``step`` or ``elapsed_seconds``).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    # Side by side, each title gets a third of a page: wrap it rather than let neighbours overlap.
    titles = [wrap(title, max(16, 75 // len(panels))) for title in panels.values()]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.08)
    for index, (name, frame) in enumerate(metrics.items()):
        colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
        for col, column in enumerate(panels, start=1):
            if column in frame:
                figure.add_trace(go.Scatter(x=frame[x], y=frame[column], name=name, legendgroup=name,
                                            showlegend=col == 1,
                                            line=dict(color=colour, width=1.5)), row=1, col=col)
    figure.update_xaxes(title_text="optimizer step" if x == "step" else "seconds of training")
    lines = max(title.count("<br>") + 1 for title in titles)
    figure.update_annotations(font_size=13)  # the subplot titles
    figure.update_layout(height=340 + 18 * lines, legend=dict(orientation="h", y=-0.25),
                         margin=dict(l=50, r=20, t=30 + 18 * lines, b=40))
    return figure


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters with ``<br>`` (plotly's line break)."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width)) or text


def horizon_figure(table: pd.DataFrame, metric: str = "top1", title: str = "", chance: float | None = None,
                   y_title: str | None = None):
    """A metric of :func:`wmlib.model.evaluate.retrieval_table` against the horizon, one line per method, 95% CIs."""
    import plotly.graph_objects as go

    figure = go.Figure()
    methods = list(dict.fromkeys(table["method"]))
    for index, method in enumerate(methods):
        rows = table[table["method"] == method].sort_values("horizon")
        figure.add_trace(go.Scatter(
            x=rows["horizon"], y=rows[metric], name=method, mode="lines+markers",
            line=dict(color=METHOD_COLOURS[index % len(METHOD_COLOURS)],
                      dash="dot" if "random init" in method or "AR" in method or "copy" in method else "solid"),
            error_y=dict(type="data", symmetric=False, array=rows[f"{metric}_high"] - rows[metric],
                         arrayminus=rows[metric] - rows[f"{metric}_low"], thickness=1)))
    if chance is not None:
        figure.add_hline(y=chance, line_dash="dash", line_color="grey", annotation_text="chance")
    horizons = sorted(table["horizon"].unique())
    if len(horizons) > 8:  # a dream's every step: label the powers of two only
        horizons = [h for h in horizons if h & (h - 1) == 0]
    figure.update_xaxes(type="log", tickvals=horizons, ticktext=[f"{h} ({40 * h} ms)" for h in horizons],
                        title_text="tokens ahead")
    figure.update_layout(title=title, yaxis_title=y_title or metric, height=420, legend=dict(orientation="v"))
    return figure


def along_training_figure(table: pd.DataFrame, metric: str = "top1", title: str = "", y_title: str | None = None):
    """A metric along training (``step`` column), one line per ``set``, with 95% CIs; the rows without a step
    (the baselines) as dotted horizontal lines in their set's colour.  Used by the chapter "Real sound"."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for index, set_name in enumerate(dict.fromkeys(table["set"])):
        colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
        rows = table[(table["set"] == set_name) & table["step"].notna()].sort_values("step")
        figure.add_trace(go.Scatter(
            x=rows["step"], y=rows[metric], name=set_name, mode="lines+markers", line=dict(color=colour),
            error_y=dict(type="data", symmetric=False, array=rows[f"{metric}_high"] - rows[metric],
                         arrayminus=rows[metric] - rows[f"{metric}_low"], thickness=1)))
        for dash, row in zip(("dot", "dash"), table[(table["set"] == set_name) & table["step"].isna()].itertuples()):
            figure.add_hline(y=getattr(row, metric), line_dash=dash, line_color=colour, opacity=0.6,
                             annotation_text=f"{row.method}", annotation_position="top left")
    figure.update_xaxes(type="log", title_text="training step")
    figure.update_layout(title=title, yaxis_title=y_title or metric, height=440)
    return figure


def recipe_curve_figure(table: pd.DataFrame, horizon: int = 1, metric: str = "top1", title: str = ""):
    """Held-out top-1 along training, one panel per evaluation set and one line per recipe (the ``recipe`` and
    ``step`` columns of :func:`wmlib.analysis.learning_curve.learning_curve`), with 95% CIs; a recipe's finished
    shorter schedule as a hollow marker, the baselines as dotted lines.  Used by the chapter "Real sound"."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = table[table["horizon"] == horizon]
    sets = list(dict.fromkeys(rows["set"]))
    figure = make_subplots(rows=1, cols=len(sets), subplot_titles=sets, horizontal_spacing=0.05)
    curves = [recipe for recipe in dict.fromkeys(rows.loc[rows["step"].notna(), "recipe"]) if "(finished" not in recipe]
    for column, set_name in enumerate(sets, start=1):
        part = rows[rows["set"] == set_name]
        for index, recipe in enumerate(curves):
            colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
            for finished, marker in ((False, "circle"), (True, "circle-open")):
                name = recipe if not finished else f"{recipe} (finished"
                line = part[part["recipe"].str.startswith(name) if finished else part["recipe"] == name]
                line = line.sort_values("step")
                if line.empty:
                    continue
                figure.add_trace(go.Scatter(
                    x=line["step"].astype(float), y=line[metric], mode="markers" if finished else "lines+markers",
                    marker=dict(symbol=marker, size=10 if finished else 7, color=colour), line=dict(color=colour),
                    name=recipe + (" (finished schedule)" if finished else ""), legendgroup=recipe + str(finished),
                    showlegend=column == 1, error_y=dict(type="data", symmetric=False, thickness=1,
                                                         array=line[f"{metric}_high"] - line[metric],
                                                         arrayminus=line[metric] - line[f"{metric}_low"])), 1, column)
        for dash, row in zip(("dot", "dash"), part[part["step"].isna()].itertuples()):
            figure.add_hline(y=getattr(row, metric), line_dash=dash, line_color="grey", row=1, col=column,
                             annotation_text=row.method, annotation_position="bottom right", annotation_font_size=10)
    figure.update_xaxes(type="log", title_text="training step")
    figure.update_yaxes(title_text=f"{metric} of 256", col=1)
    figure.update_layout(title=title, height=460, legend=dict(orientation="h", y=-0.25))
    return figure


def similarity_figure(similarity: np.ndarray, title: str = ""):
    """``(T, T)`` cosine similarities of predictions (rows) and targets (columns) within one window."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Heatmap(z=similarity, colorscale="RdBu", zmid=0, colorbar=dict(title="cosine"),
                                  hovertemplate="prediction %{y} vs token %{x}: %{z:.2f}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="candidate token", yaxis_title="predicted token", height=460,
                         width=520, yaxis=dict(autorange="reversed", scaleanchor="x"))
    return figure


def surprise_figure(mel: np.ndarray, surprise: np.ndarray, posterior: np.ndarray, hop_seconds: float = 0.01,
                    token_seconds: float = 0.04, title: str = ""):
    """An utterance's spectrogram, the RSSM's posterior latent per token and its surprise (KL, nats) per token."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    token_times = (np.arange(len(surprise)) + 0.5) * token_seconds
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.4, 0.35, 0.25],
                           subplot_titles=["log-mel", "posterior z (one row per class of each variable)",
                                           "surprise KL(posterior || prior)"])
    figure.add_trace(go.Heatmap(z=mel, x=np.arange(mel.shape[1]) * hop_seconds, colorscale="Magma",
                                showscale=False), row=1, col=1)
    figure.add_trace(go.Heatmap(z=posterior.T, x=token_times, colorscale="Greys", showscale=False, zmin=0, zmax=1,
                                hovertemplate="t=%{x:.2f}s unit %{y}: %{z:.2f}<extra></extra>"), row=2, col=1)
    figure.add_trace(go.Bar(x=token_times, y=surprise, marker_color="#d62728", width=token_seconds * 0.9,
                            hovertemplate="t=%{x:.2f}s %{y:.1f} nats<extra></extra>"), row=3, col=1)
    figure.update_yaxes(title_text="mel bin", row=1, col=1)
    figure.update_yaxes(title_text="z unit", row=2, col=1)
    figure.update_yaxes(title_text="nats", row=3, col=1)
    figure.update_xaxes(title_text="time (s)", row=3, col=1)
    figure.update_layout(height=640, title=title, showlegend=False)
    return figure
