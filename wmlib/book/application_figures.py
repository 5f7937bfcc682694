"""Figures of the chapter "Applications": inpainting, melody variations, few-shot classification."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .plots import METHOD_COLOURS


def inpainting_figure(table: pd.DataFrame, title: str = "inpainting: error of the filled gap (95% CI)"):
    """:func:`wmlib.analysis.applications.inpainting_table`: mel RMSE against the gap length, one panel per source,
    one line per method."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sources = list(dict.fromkeys(table["source"]))
    figure = make_subplots(rows=1, cols=len(sources), subplot_titles=sources, shared_yaxes=True)
    for col, source in enumerate(sources, start=1):
        for index, method in enumerate(dict.fromkeys(table["method"])):
            rows = table[(table["source"] == source) & (table["method"] == method)].sort_values("gap_ms")
            figure.add_trace(go.Scatter(
                x=rows["gap_ms"], y=rows["mel_rmse_db"], name=method, legendgroup=method, showlegend=col == 1,
                mode="lines+markers", line=dict(color=METHOD_COLOURS[index], dash="dot" if index < 2 else "solid"),
                error_y=dict(type="data", symmetric=False, array=rows["mel_rmse_db_high"] - rows["mel_rmse_db"],
                             arrayminus=rows["mel_rmse_db"] - rows["mel_rmse_db_low"], thickness=1)), row=1, col=col)
        figure.update_xaxes(title_text="gap (ms)", row=1, col=col)
    figure.update_yaxes(title_text="RMSE of filled tokens (dB)", row=1, col=1)
    figure.update_layout(title=title, height=420, legend=dict(orientation="h", y=-0.25))
    return figure


def variations_figure(example: dict, tokens_per_second: float, shown: int = 4,
                      title: str = "one melody's context and four dreamed variations"):
    """Pitch tracks (MIDI) of the context, the true continuation and ``shown`` variations from
    :func:`wmlib.analysis.applications.variations`."""
    import plotly.graph_objects as go

    context = len(example["context_pitch"])
    time_context = np.arange(context) / tokens_per_second
    time_dream = (context + np.arange(len(example["truth_pitch"]))) / tokens_per_second
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=time_context, y=example["context_pitch"], name="context", mode="lines+markers",
                                line=dict(color="black", width=3)))
    figure.add_trace(go.Scatter(x=time_dream, y=example["truth_pitch"], name="truth", mode="lines+markers",
                                line=dict(color="black", dash="dot", width=3)))
    for index in range(min(shown, len(example["dream_pitch"]))):
        figure.add_trace(go.Scatter(x=time_dream, y=example["dream_pitch"][index], name=f"variation {index + 1}",
                                    mode="lines+markers", line=dict(color=METHOD_COLOURS[index + 1])))
    figure.add_vline(x=context / tokens_per_second, line_dash="dash", line_color="grey",
                     annotation_text="the dream starts")
    note = f"{example['utt_id']}; note labels of the dreamed tokens; gaps: unvoiced tokens"
    figure.update_layout(title=f"{title}<br><sup>{note}</sup>",
                         xaxis_title="time (s)", yaxis_title="MIDI pitch", height=420)
    return figure


def few_shot_figure(table: pd.DataFrame, title: str = "few-shot source classification (balanced accuracy; band: "
                                                      "95% of support draws)"):
    """:func:`wmlib.analysis.applications.few_shot_curve`: one panel per test set, one line per representation."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sets = list(dict.fromkeys(table["test set"]))
    figure = make_subplots(rows=1, cols=len(sets), subplot_titles=sets, shared_yaxes=True)
    for col, set_name in enumerate(sets, start=1):
        for index, name in enumerate(dict.fromkeys(table["representation"])):
            rows = table[(table["test set"] == set_name) & (table["representation"] == name)].sort_values("shots")
            colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
            x = rows["shots"].to_numpy()
            figure.add_trace(go.Scatter(x=x, y=rows["balanced_accuracy"], name=name, legendgroup=name,
                                        showlegend=col == 1, mode="lines+markers", line=dict(color=colour)),
                             row=1, col=col)
            figure.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[rows["balanced_accuracy_high"],
                                                                     rows["balanced_accuracy_low"][::-1]],
                                        fill="toself", fillcolor=colour, opacity=0.15, line=dict(width=0),
                                        legendgroup=name, showlegend=False, hoverinfo="skip"), row=1, col=col)
        figure.update_xaxes(type="log", title_text="labelled tokens per class", row=1, col=col)
    figure.update_yaxes(title_text="balanced accuracy", row=1, col=1)
    figure.update_layout(title=title, height=420, legend=dict(orientation="h", y=-0.25))
    return figure
