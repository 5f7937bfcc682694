"""Figures of the chapter "Interventions"."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .plots import wrap


def intervention_matrix_figure(matrix: pd.DataFrame, title: str = "what each intervention changed (moved − unmoved)"):
    """:func:`wmlib.analysis.interventions.intervention_table` as a heatmap: interventions × measures, each column
    on its own scale (its largest absolute change is full colour), the numbers written in."""
    import plotly.graph_objects as go

    pivot = matrix.pivot(index="intervention", columns="measure", values="change")
    pivot = pivot.loc[list(dict.fromkeys(matrix["intervention"])), list(dict.fromkeys(matrix["measure"]))]
    scale = pivot.abs().max().replace(0, 1)
    figure = go.Figure(go.Heatmap(
        z=(pivot / scale).to_numpy(), x=[wrap(c, 22) for c in pivot.columns], y=list(pivot.index),
        text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:+.2f}")(pivot.to_numpy()),
        texttemplate="%{text}", colorscale="RdBu", zmid=0, zmin=-1, zmax=1, showscale=False,
        hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    figure.update_layout(title=title, height=120 + 55 * len(pivot), margin=dict(l=260, r=20, t=60, b=90))
    figure.update_yaxes(autorange="reversed")
    return figure


def causal_figure(causal: pd.DataFrame, title: str = "shift of the model's expected next token: along the direction "
                  "and along a random one of the same norm (95% CI over utterances)"):
    """:func:`wmlib.analysis.interventions.causal_table`: one panel per intervention (each measure has its own
    unit, named under the panel's title), the shift of the expected next token under the direction and under a
    random direction of the same norm."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    units = {"semitones": "semitones", "(dB)": "dB", "fricative": "P(fricative)"}
    titles = []
    for row in causal.itertuples(index=False):
        unit = next((label for key, label in units.items() if key in row.measure), row.measure)
        titles.append(f"{wrap(row.intervention, 16)}<br><sub>{unit}</sub>")
    figure = make_subplots(rows=1, cols=len(causal), subplot_titles=titles, horizontal_spacing=0.07)
    for column, row in enumerate(causal.itertuples(index=False), start=1):
        for name, value, low, high, colour in (
                ("direction", row.shift, row.shift_low, row.shift_high, "#1f77b4"),
                ("random", row.random, row.random_low, row.random_high, "#999999")):
            figure.add_trace(go.Bar(x=[name], y=[value], marker_color=colour, showlegend=False,
                                    error_y=dict(type="data", array=[high - value], arrayminus=[value - low]),
                                    hovertemplate=f"{name}: %{{y:.3f}} [{low:.3f}, {high:.3f}]<extra></extra>"),
                             row=1, col=column)
    figure.update_annotations(font_size=11)
    figure.update_layout(title=title, height=430, margin=dict(l=40, r=20, t=130, b=40))
    return figure
