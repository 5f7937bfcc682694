"""Figures of the chapter "Dreams": DreamerV3's open-loop report for sound, and the measures of coherence."""
from __future__ import annotations

import numpy as np
import pandas as pd

from wmlib.data.features import from_tokens

from .plots import METHOD_COLOURS, wrap

CONTEXT_COLOUR, DREAM_COLOUR = "#2ca02c", "#d62728"  # observed / imagined frames, as in DreamerV3's reports


def dream_report_figure(context: np.ndarray, truth: np.ndarray, dreams: dict, title: str = "",
                        hop_seconds: float = 0.01):
    """Rows *truth*, each dream, and *|error|* of the first dream, over context + continuation; the context is
    framed in green and the imagination in red, with a dashed line where observation stops.

    Args:
        context: ``(K, n_mels, frames)`` dB observed tokens.
        truth: ``(H, n_mels, frames)`` dB, what really followed.
        dreams: row title -> ``(H, n_mels, frames)`` dB dreamed tokens.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    observed = from_tokens(context)  # (M, K * frames)
    rows = {"truth": np.concatenate([observed, from_tokens(truth)], 1)}
    rows |= {name: np.concatenate([observed, from_tokens(mel)], 1) for name, mel in dreams.items()}
    first = next(iter(dreams.values()))
    error = np.abs(from_tokens(first) - from_tokens(truth))
    rows[f"|{next(iter(dreams))} − truth|"] = np.concatenate([np.full_like(observed, np.nan), error], 1)
    values = np.concatenate([m.ravel() for m in list(rows.values())[:-1]])
    low, high = np.percentile(values[np.isfinite(values)], [2, 99.5])
    boundary = observed.shape[1] * hop_seconds
    end = list(rows.values())[0].shape[1] * hop_seconds
    figure = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.05,
                           subplot_titles=list(rows))
    for row, mel in enumerate(rows.values(), start=1):
        is_error = row == len(rows)
        x = np.arange(mel.shape[1]) * hop_seconds
        figure.add_trace(go.Heatmap(
            z=mel, x=x, colorscale="Greys" if is_error else "Magma", zmin=0 if is_error else low,
            zmax=30 if is_error else high, showscale=row in (1, len(rows)),
            colorbar=dict(title="dB" if not is_error else "|dB|", len=0.35, y=0.85 if row == 1 else 0.12),
            hovertemplate="t=%{x:.2f}s bin=%{y} %{z:.0f} dB<extra></extra>"), row=row, col=1)
        figure.update_yaxes(title_text="mel bin", row=row, col=1)
        for start, stop, colour in ((0, boundary, CONTEXT_COLOUR), (boundary, end, DREAM_COLOUR)):
            figure.add_shape(type="rect", x0=start, x1=stop, y0=-0.5, y1=mel.shape[0] - 0.5, line=dict(
                color=colour, width=3), row=row, col=1)
        figure.add_vline(x=boundary, line_width=2, line_dash="dash", line_color="cyan", row=row, col=1)
    figure.update_xaxes(title_text="time (s): context (green frame), then imagination (red frame)", row=len(rows),
                        col=1)
    figure.update_layout(height=90 + 170 * len(rows), title=title, margin=dict(l=50, r=20, t=70, b=40))
    return figure


def frechet_figure(table: pd.DataFrame, title: str = ""):
    """Bars of :meth:`wmlib.analysis.coherence.DreamStudy.frechet_table`, one panel per space, 95% CIs."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    spaces = list(dict.fromkeys(table["space"]))
    figure = make_subplots(rows=1, cols=len(spaces), subplot_titles=[f"{space} space" for space in spaces],
                           horizontal_spacing=0.12)
    names = list(dict.fromkeys(table["continuation"]))
    colours = {name: METHOD_COLOURS[i % len(METHOD_COLOURS)] for i, name in enumerate(names)}
    for col, space in enumerate(spaces, start=1):
        rows = table[table["space"] == space]
        figure.add_trace(go.Bar(
            x=[wrap(name, 14) for name in rows["continuation"]], y=rows["frechet"],
            marker_color=[colours[name] for name in rows["continuation"]], showlegend=False,
            error_y=dict(type="data", symmetric=False, array=rows["frechet_high"] - rows["frechet"],
                         arrayminus=rows["frechet"] - rows["frechet_low"])), row=1, col=col)
        figure.update_yaxes(type="log", title_text="Fréchet distance to real continuations" if col == 1 else None,
                            row=1, col=col)
    figure.update_layout(title=title, height=460, margin=dict(l=60, r=20, t=60, b=90))
    return figure


def dream_probe_figure(table: pd.DataFrame, title: str = "", descriptions: dict | None = None):
    """:meth:`wmlib.analysis.coherence.DreamStudy.dream_probe_curves`: one panel per target, score against the
    horizon, one line per reading, 95% CIs as bands."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    targets = list(dict.fromkeys(table["target"]))
    titles = []
    for target in targets:
        metric = table.loc[table["target"] == target, "metric"].iloc[0]
        label = (descriptions or {}).get(target, target)
        titles.append(wrap(f"{label} ({'accuracy ↑' if metric == 'accuracy' else metric.replace('_', ', ') + ' ↓'})",
                           40))
    figure = make_subplots(rows=(len(targets) + 1) // 2, cols=2, subplot_titles=titles, vertical_spacing=0.16,
                           horizontal_spacing=0.1)
    methods = list(dict.fromkeys(table["method"]))
    for index, target in enumerate(targets):
        row, col = index // 2 + 1, index % 2 + 1
        for m, method in enumerate(methods):
            rows = table[(table["target"] == target) & (table["method"] == method)].sort_values("horizon")
            colour = METHOD_COLOURS[m % len(METHOD_COLOURS)]
            x = rows["horizon"] * 40
            dash = "dot" if method == "copy last token" else "solid"
            figure.add_trace(go.Scatter(x=x, y=rows["score"], name=method, legendgroup=method, showlegend=index == 0,
                                        mode="lines", line=dict(color=colour, dash=dash)), row=row, col=col)
            figure.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[rows["score_high"], rows["score_low"][::-1]],
                                        fill="toself", fillcolor=colour, opacity=0.15, line=dict(width=0),
                                        showlegend=False, legendgroup=method, hoverinfo="skip"), row=row, col=col)
        figure.update_xaxes(title_text="ms into the dream", row=row, col=col)
    figure.update_layout(title=title, height=330 * ((len(targets) + 1) // 2) + 80, legend=dict(orientation="h",
                                                                                              y=-0.12))
    return figure


def phone_duration_figure(durations: pd.DataFrame, title: str = ""):
    """Box plots of phone durations (ms) in real and dreamed continuations
    (:meth:`wmlib.analysis.coherence.DreamStudy.phone_durations`)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for index, name in enumerate(dict.fromkeys(durations["continuation"])):
        values = durations.loc[durations["continuation"] == name, "duration_ms"]
        figure.add_trace(go.Box(y=values, name=f"{name} ({len(values)} phones)", boxmean=True,
                                marker_color=METHOD_COLOURS[index % len(METHOD_COLOURS)]))
    figure.update_yaxes(type="log")  # a few stuck dreams hold one "phone" for a second; most last 40-200 ms
    figure.update_layout(title=title, yaxis_title="phone duration (ms, log scale)", height=380, showlegend=False)
    return figure
