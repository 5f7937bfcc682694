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
