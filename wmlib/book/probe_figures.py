"""Figures of the probing chapters (plotly): representation x target heatmaps with CIs, probes along training and
along the prediction horizon, confusion matrices.

Every function takes the tidy rows of :func:`wmlib.analysis.probes.probe_target` (or a table built from them).
Used by the chapters "Pitch and energy" and "Phones, sources and voices".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from wmlib.analysis.probing import headline_metric

from .plots import METHOD_COLOURS, wrap

METRIC_NAMES = {"r2": "R²", "accuracy": "accuracy", "error_cents": "mean error (cents)"}


def headline(results: pd.DataFrame, setting: str = "in-distribution") -> pd.DataFrame:
    """The rows of ``results`` with each target's headline metric (R² or accuracy) in ``setting``."""
    keep = results["metric"] == results["target"].map(headline_metric)
    return results[keep & (results["setting"] == setting)]


def probe_heatmap(results: pd.DataFrame, setting: str = "in-distribution", title: str = "", rows=None):
    """Representation (rows) x target (columns): the headline metric, its 95% CI in each cell and the hover."""
    import plotly.graph_objects as go

    part = headline(results, setting)
    rows = list(dict.fromkeys(part["representation"])) if rows is None else list(rows)
    targets = list(dict.fromkeys(part["target"]))
    value = part.pivot_table(index="representation", columns="target", values="value", sort=False)
    low = part.pivot_table(index="representation", columns="target", values="low", sort=False)
    high = part.pivot_table(index="representation", columns="target", values="high", sort=False)
    value, low, high = (table.reindex(index=rows, columns=targets) for table in (value, low, high))
    text = [[f"{v:.2f}<br>[{lo:.2f}, {hi:.2f}]" if np.isfinite(v) else ""
             for v, lo, hi in zip(*cells)] for cells in zip(value.to_numpy(), low.to_numpy(), high.to_numpy())]
    columns = [f"{t}<br>({METRIC_NAMES[headline_metric(t)]})" for t in targets]
    figure = go.Figure(go.Heatmap(
        z=value.to_numpy(), x=columns, y=rows, text=text, texttemplate="%{text}", textfont=dict(size=10), zmin=0,
        zmax=1,
        colorscale="Viridis", colorbar=dict(title="R² / acc."),
        hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>"))
    figure.update_layout(title=wrap(title, 70), height=120 + 44 * len(rows), margin=dict(l=10, r=10, t=60, b=10),
                         yaxis=dict(autorange="reversed"))
    return figure


def _line(figure, rows: pd.DataFrame, x: str, name: str, colour: str, dash: str = "solid", **where):
    import plotly.graph_objects as go

    rows = rows.sort_values(x)
    figure.add_trace(go.Scatter(
        x=rows[x], y=rows["value"], name=name, mode="lines+markers", line=dict(color=colour, dash=dash),
        error_y=dict(type="data", symmetric=False, array=rows["high"] - rows["value"],
                     arrayminus=rows["value"] - rows["low"], thickness=1)), **where)


def training_figure(table: pd.DataFrame, title: str = "", baselines: pd.DataFrame | None = None):
    """Headline metric against the training step (:func:`wmlib.analysis.probing.along_training`), one line per
    target; optional dotted lines: a baseline's level per target (rows of ``baselines``, same targets)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    part = headline(table)
    for index, target in enumerate(dict.fromkeys(part["target"])):
        colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
        _line(figure, part[part["target"] == target], "step", target, colour)
        if baselines is not None:
            level = headline(baselines)
            level = level[level["target"] == target]
            for row in level.itertuples():
                figure.add_hline(y=row.value, line_dash="dot", line_color=colour,
                                 annotation_text=f"{row.representation}: {target}", annotation_font_size=9)
    steps = sorted(part["step"].unique())
    figure.update_xaxes(type="log", tickvals=[max(s, 10) for s in steps], ticktext=[str(s) for s in steps],
                        title_text="training step (step 0 = random init, drawn at 10)")
    figure.data = tuple(trace.update(x=[max(x, 10) for x in trace.x]) for trace in figure.data)
    figure.update_layout(title=wrap(title, 70), yaxis_title="R² / accuracy (in-distribution, 95% CI)", height=440)
    return figure


def horizon_probe_figure(table: pd.DataFrame, title: str = ""):
    """Headline metric against the horizon (:func:`wmlib.analysis.probing.along_horizon`): one panel per target,
    one line per representation."""
    from plotly.subplots import make_subplots

    part = headline(table)
    targets = list(dict.fromkeys(part["target"]))
    figure = make_subplots(rows=1, cols=len(targets), subplot_titles=targets, horizontal_spacing=0.08)
    for column, target in enumerate(targets, start=1):
        for index, name in enumerate(dict.fromkeys(part["representation"])):
            rows = part[(part["target"] == target) & (part["representation"] == name)]
            _line(figure, rows, "horizon", name, METHOD_COLOURS[index % len(METHOD_COLOURS)],
                  dash="dot" if "log-mel" in name else "solid", row=1, col=column)
            figure.data[-1].update(showlegend=column == 1, legendgroup=name)
    horizons = sorted(part["horizon"].unique())
    figure.update_xaxes(type="log", tickvals=horizons, ticktext=[f"{h}" for h in horizons],
                        title_text="tokens ahead (× 40 ms)")
    figure.update_yaxes(title_text="R² / accuracy", col=1)
    figure.update_layout(title=wrap(title, 70), height=460, legend=dict(orientation="h", y=-0.25),
                         margin=dict(t=110))
    return figure


def confusion_figure(matrix: pd.DataFrame, title: str = ""):
    """A row-normalised confusion matrix (:func:`wmlib.analysis.probing.confusion`): truth down, prediction across."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), zmin=0, zmax=1, colorscale="Blues",
        colorbar=dict(title="share of row"),
        hovertemplate="true %{y}, predicted %{x}: %{z:.2f}<extra></extra>"))
    size = 200 + 14 * len(matrix)
    figure.update_layout(title=wrap(title, 80), height=size, xaxis=dict(title="predicted", tickangle=-90),
                         yaxis=dict(title="true", autorange="reversed"), margin=dict(l=60, r=10, t=60, b=60))
    return figure
