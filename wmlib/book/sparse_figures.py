"""Figures of the chapter "Sparse features"."""
from __future__ import annotations

import pandas as pd

from .plots import METHOD_COLOURS, wrap

#: The quality table's columns as the chapter shows them.
QUALITY_COLUMNS = {"representation": "representation", "width": "width", "features": "features",
                   "variance_explained": "variance explained", "l0": "L0", "dead": "dead", "dense": "dense",
                   "stable": "stable across seeds", "median_match": "median best cosine",
                   "stable_alive": "stable, of those that fire", "train_seconds": "training (s, two seeds)"}


def quality_display(quality: pd.DataFrame):
    """:meth:`wmlib.analysis.sparse.study.SparseStudy.quality_table`, formatted for the page."""
    table = quality[list(QUALITY_COLUMNS)].rename(columns=QUALITY_COLUMNS)
    return table.style.format({"variance explained": "{:.3f}", "L0": "{:.0f}", "dead": "{:.1%}", "dense": "{:.1%}",
                               "stable across seeds": "{:.1%}", "median best cosine": "{:.2f}",
                               "stable, of those that fire": "{:.1%}", "training (s, two seeds)": "{:.0f}"}
                              ).hide(axis="index")


def share_display(table: pd.DataFrame):
    """:meth:`wmlib.analysis.sparse.study.SparseStudy.interpretability_table`, one interval per cell."""
    def interval(value, low, high, signed=False):
        sign = "+" if signed else ""
        return "" if pd.isna(value) else f"{value:{sign}.1%} [{low:{sign}.1%}, {high:{sign}.1%}]"

    shown = pd.DataFrame({
        "representation": table["representation"],
        "features that match a label": [interval(r.share, r.share_low, r.share_high) for r in table.itertuples()],
        "matched": table["matched"],
        "world model − this": [interval(r.model_minus, r.model_minus_low, r.model_minus_high, signed=True)
                               for r in table.itertuples()],
        "verdict": table["verdict"].fillna("")})
    return shown.style.hide(axis="index")

ROW_COLOURS = {"world model": METHOD_COLOURS[0], "log-mel": METHOD_COLOURS[1], "random init": "#999999"}


def share_figure(table: pd.DataFrame, title: str = "features that match a label (held-out F1 ≥ 0.5), 95% CI over "
                 "held-out utterances"):
    """:meth:`wmlib.analysis.sparse.study.SparseStudy.interpretability_table` as bars with intervals."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for row in table.itertuples(index=False):
        figure.add_trace(go.Bar(
            x=[row.representation], y=[row.share], marker_color=ROW_COLOURS.get(row.representation, "#333"),
            error_y=dict(type="data", array=[row.share_high - row.share], arrayminus=[row.share - row.share_low]),
            showlegend=False, hovertemplate=f"{row.representation}: %{{y:.1%}} [{row.share_low:.1%}, "
                                            f"{row.share_high:.1%}]<extra></extra>"))
    figure.update_layout(title=wrap(title, 70), height=380, yaxis=dict(title="share of the dictionary",
                                                                      tickformat=".0%"),
                         margin=dict(l=60, r=20, t=80, b=40))
    return figure


def atlas_figure(study, labels_per_family: int = 3, title: str = "feature atlas: the best held-out F1 any one feature "
                 "reaches for a label"):
    """For the labels the model's features match best (a few per family), the best held-out F1 of a single feature
    of each representation's dictionary."""
    import plotly.graph_objects as go

    best = {name: row.features[row.features["label"] != ""].groupby("label")["f1"].max()
            for name, row in study.rows.items()}
    table = pd.DataFrame(best).fillna(0)
    model = table.iloc[:, 0].sort_values(ascending=False)
    families = pd.Series(model.index.str.split(":").str[0], index=model.index)
    chosen = [label for family in dict.fromkeys(families) for label in model[families == family].index[
        :labels_per_family]]
    chosen = sorted(chosen, key=lambda label: -model[label])[:24]
    figure = go.Figure()
    for name in table.columns:
        figure.add_trace(go.Bar(y=chosen, x=table.loc[chosen, name], orientation="h", name=name,
                                marker_color=ROW_COLOURS.get(name, "#333"),
                                hovertemplate=f"{name}<br>%{{y}}: best F1 %{{x:.2f}}<extra></extra>"))
    figure.add_vline(x=0.5, line_dash="dot", line_color="#555")
    figure.update_layout(title=wrap(title, 80), barmode="group", height=140 + 34 * len(chosen),
                         xaxis=dict(title="best held-out F1 of one feature", range=[0, 1]),
                         yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                         margin=dict(l=230, r=20, t=110, b=40))
    return figure


def erasure_figure(curves: pd.DataFrame, title: str = "erasure: a linear probe's balanced accuracy after zeroing the "
                   "concept's top features, or as many random ones (95% CI)"):
    """:func:`wmlib.analysis.sparse.causal.erasure_curve` for each concept: one panel each, chance dotted."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    concepts = list(dict.fromkeys(curves["concept"]))
    figure = make_subplots(rows=1, cols=len(concepts), subplot_titles=concepts, shared_yaxes=True)
    for column, concept in enumerate(concepts, start=1):
        part = curves[curves["concept"] == concept]
        x = part["erased"].clip(lower=1)  # 0 erased drawn at 1 on the log axis
        for name, key, colour in (("concept's features", "accuracy", METHOD_COLOURS[0]),
                                  ("random features", "random", "#999999")):
            figure.add_trace(go.Scatter(
                x=x, y=part[key], mode="lines+markers", name=name, line=dict(color=colour), legendgroup=name,
                showlegend=column == 1,
                error_y=dict(type="data", array=part[f"{key}_high"] - part[key],
                             arrayminus=part[key] - part[f"{key}_low"]),
                customdata=part["erased"], hovertemplate=f"{name}: %{{customdata}} erased, %{{y:.3f}}<extra></extra>"),
                row=1, col=column)
        figure.add_hline(y=float(part["chance"].iloc[0]), line_dash="dot", line_color="#555", row=1, col=column)
        figure.update_xaxes(type="log", title="features zeroed", tickvals=list(x), row=1, col=column,
                            ticktext=[str(n) if i % 2 == 0 or n == part["erased"].max() else ""
                                      for i, n in enumerate(part["erased"])])
    figure.update_yaxes(title="balanced accuracy", row=1, col=1)
    figure.update_layout(title=wrap(title, 70), height=440, legend=dict(orientation="h", y=-0.25),
                         margin=dict(l=60, r=20, t=100, b=90))
    return figure


def steering_figure(table: pd.DataFrame, title: str = "steering: the change in the probability the model gives next "
                    "tokens that carry the feature's label (95% CI over utterances)"):
    """:func:`wmlib.analysis.sparse.causal.steering_table`: per feature, the shift under its direction and under a
    random direction of the same norm."""
    import plotly.graph_objects as go

    names = [f"{row.label} (#{row.feature})" for row in table.itertuples(index=False)]
    figure = go.Figure()
    for name, key, colour in (("the feature's direction", "shift", METHOD_COLOURS[0]),
                              ("random direction, same norm", "random", "#999999")):
        figure.add_trace(go.Bar(
            y=names, x=table[key], orientation="h", name=name, marker_color=colour,
            error_x=dict(type="data", array=table[f"{key}_high"] - table[key],
                         arrayminus=table[key] - table[f"{key}_low"]),
            hovertemplate=f"{name}<br>%{{y}}: %{{x:+.3f}}<extra></extra>"))
    figure.update_layout(title=wrap(title, 80), barmode="group", height=160 + 50 * len(table),
                         xaxis=dict(title="shift of P(next token carries the label)"), yaxis=dict(autorange="reversed"),
                         legend=dict(orientation="h", y=1.02, yanchor="bottom"), margin=dict(l=230, r=20, t=110, b=40))
    return figure
