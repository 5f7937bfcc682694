"""Figures of the chapter "Representational similarity" (from :class:`wmlib.analysis.similarity.SimilarityStudy`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .plots import METHOD_COLOURS

#: Stimulus order of the RDM figures: by source, then voice, then pitch (said in every title; never re-sorted).
RDM_ORDER = ("source", "voice", "semitone")


def rdm_order(labels: pd.DataFrame, every: int = 1) -> np.ndarray:
    """Stimulus indices sorted by :data:`RDM_ORDER` (every ``every``-th kept, so a figure stays light)."""
    order = labels.sort_values(list(RDM_ORDER), kind="stable").index.to_numpy()
    return order[::every]


def rdm_grid_figure(rdms: dict[str, np.ndarray], labels: pd.DataFrame, every: int = 4, columns: int = 3,
                    title: str | None = None):
    """A grid of RDMs (encoders and label models), stimuli sorted by source, then voice, then pitch; each panel
    ranked to percentiles so that panels of different measures share one colour scale."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    from scipy.stats import rankdata

    order = rdm_order(labels, every)
    names = list(rdms)
    rows = -(-len(names) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=names, horizontal_spacing=0.04,
                           vertical_spacing=0.06)
    hover = [f"{s} · {v} · {'' if np.isnan(p) else f'{p:.0f} st'}" for s, v, p in
             labels.loc[order, ["source", "voice", "semitone"]].itertuples(index=False)]
    for k, name in enumerate(names):
        matrix = rdms[name][np.ix_(order, order)]
        finite = np.isfinite(matrix)
        ranked = np.full(matrix.shape, np.nan)
        ranked[finite] = rankdata(matrix[finite]) / finite.sum() * 100
        figure.add_trace(go.Heatmap(z=np.round(ranked, 1), x=hover, y=hover, colorscale="Viridis", zmin=0, zmax=100,
                                    showscale=k == 0, colorbar=dict(title="percentile", len=0.5),
                                    hovertemplate="%{y}<br>%{x}<br>percentile %{z}<extra>" + name + "</extra>"),
                         row=k // columns + 1, col=k % columns + 1)
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False, autorange="reversed")
    figure.update_annotations(font_size=12)
    figure.update_layout(height=230 * rows + 90, title=title or f"RDMs of {len(order)} stimuli<br><sup>sorted by "
                         "source, then voice, then pitch; dark: alike</sup>", margin=dict(l=20, r=20, t=90, b=20))
    return figure


def encoder_matrix_figure(pairs: pd.DataFrame, measure: str = "cka", order=None, title: str | None = None):
    """Encoder x encoder similarity (``cka`` or ``spearman``), the interval in each cell's hover."""
    import plotly.graph_objects as go

    order = list(order or dict.fromkeys(pairs["first"]))
    pivot = pairs.pivot(index="first", columns="second", values=measure).loc[order, order]
    low = pairs.pivot(index="first", columns="second", values=f"{measure}_low").loc[order, order]
    high = pairs.pivot(index="first", columns="second", values=f"{measure}_high").loc[order, order]
    text = np.vectorize(lambda v: f"{v:.2f}")(pivot.to_numpy())
    interval = np.vectorize(lambda v, a, b: f"{v:.3f} [{a:.3f}, {b:.3f}]")(pivot.to_numpy(), low.to_numpy(),
                                                                            high.to_numpy())
    name = {"cka": "linear CKA", "spearman": "Spearman between RDMs", "whitened": "whitened Pearson"}[measure]
    figure = go.Figure(go.Heatmap(z=pivot.to_numpy(), x=order, y=order, text=text, texttemplate="%{text}",
                                  customdata=interval, colorscale="Viridis", zmin=0, zmax=1,
                                  colorbar=dict(title=name.split()[-1]),
                                  hovertemplate="%{y} vs %{x}<br>" + name + " %{customdata}<extra></extra>"))
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title=title or f"{name} between encoders (95% CI in the hover)", height=160 + 34 * len(order),
                         margin=dict(l=150, r=20, t=60, b=120))
    return figure


def label_bars_figure(labels: pd.DataFrame, order=None, title: str | None = None):
    """Each encoder against each label model: Spearman (layer chosen on the other half of the clips) with its 95%
    CI, and the permutation null as a grey band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = list(dict.fromkeys(labels["label"]))
    order = list(order or dict.fromkeys(labels["encoder"]))
    columns = 3
    rows_of_panels = -(-len(models) // columns)
    figure = make_subplots(rows=rows_of_panels, cols=columns, subplot_titles=models, shared_yaxes=True,
                           horizontal_spacing=0.02, vertical_spacing=0.08)
    families = labels.drop_duplicates("encoder").set_index("encoder")["family"]
    colours = {family: METHOD_COLOURS[k] for k, family in enumerate(dict.fromkeys(families))}
    for k, model in enumerate(models):
        rows = labels[labels["label"] == model].set_index("encoder").loc[order[::-1]]
        figure.add_trace(go.Bar(
            x=rows["spearman"], y=rows.index, orientation="h", marker_color=[colours[families[e]] for e in rows.index],
            error_x=dict(type="data", symmetric=False, array=rows["high"] - rows["spearman"],
                         arrayminus=rows["spearman"] - rows["low"]),
            customdata=np.stack([rows["low"], rows["high"], rows["layer_a"], rows["layer_b"]], axis=1),
            hovertemplate="%{y}: %{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<br>layers "
                          "%{customdata[2]} / %{customdata[3]}<extra>" + model + "</extra>", showlegend=False),
            row=k // columns + 1, col=k % columns + 1)
        null = labels[labels["label"] == model].iloc[0]
        figure.add_vrect(x0=null["null_low"], x1=null["null_high"], fillcolor="grey", opacity=0.4, line_width=0,
                         row=k // columns + 1, col=k % columns + 1)
    for family, colour in colours.items():
        figure.add_trace(go.Bar(x=[None], y=[None], marker_color=colour, name=family, showlegend=True))
    low = min(-0.1, float(labels["low"].min()) - 0.05)
    high = max(1.0, float(labels["high"].max()) + 0.05) if labels["high"].max() > 0.9 else 0.9
    figure.update_xaxes(range=[low, high], dtick=0.2)
    figure.update_yaxes(dtick=1)  # every encoder's name, not every other one
    figure.update_layout(title=title or "each encoder against each label model<br><sup>Spearman between RDMs, "
                         "95% CI; grey: permutation null</sup>", height=120 + 2 * 20 * len(order), barmode="overlay",
                         legend=dict(orientation="h", y=-0.06), margin=dict(l=140, r=20, t=90, b=50))
    return figure


def training_figure(training: pd.DataFrame, title: str | None = None):
    """Along training: Spearman to the label models (top) and CKA to the other encoders (bottom), 95% CIs; the second
    seed at its step as a hollow marker."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    palette = qualitative.D3 + qualitative.Dark2
    figure = make_subplots(rows=2, cols=1, subplot_titles=["against the label models (Spearman)",
                                                           "against the other encoders (linear CKA)"],
                           vertical_spacing=0.12)
    for col, kind in enumerate(("label (Spearman)", "encoder (CKA)"), start=1):
        rows = training[training["kind"] == kind]
        for k, reference in enumerate(dict.fromkeys(rows["reference"])):
            colour = palette[k % len(palette)]
            line = rows[(rows["reference"] == reference) & (rows["seed"] == 0)].sort_values("step")
            x = line["step"].clip(lower=10)  # step 0 drawn at 10 on the log axis
            figure.add_trace(go.Scatter(
                x=x, y=line["value"], mode="lines+markers", name=reference, line=dict(color=colour),
                legendgroup=kind, legendgrouptitle_text=kind if k == 0 else None,
                error_y=dict(type="data", symmetric=False, array=line["high"] - line["value"],
                             arrayminus=line["value"] - line["low"], thickness=1),
                customdata=np.stack([line["step"], line["low"], line["high"]], axis=1),
                hovertemplate=reference + " at step %{customdata[0]}: %{y:.3f} [%{customdata[1]:.3f}, "
                                          "%{customdata[2]:.3f}]<extra></extra>"), row=col, col=1)
            other = rows[(rows["reference"] == reference) & (rows["seed"] != 0)]
            figure.add_trace(go.Scatter(
                x=other["step"], y=other["value"], mode="markers", showlegend=False, legendgroup=kind,
                marker=dict(symbol="circle-open", size=11, color=colour),
                hovertemplate=reference + ", second seed: %{y:.3f}<extra></extra>"), row=col, col=1)
    figure.update_xaxes(type="log")
    figure.update_xaxes(title="training step (step 0, the random initialisation, drawn at 10)", row=2, col=1)
    figure.update_layout(title=title or "similarity along training<br><sup>95% CIs; hollow: the second seed</sup>",
                         height=820, legend=dict(groupclick="toggleitem"), margin=dict(l=60, r=20, t=90, b=60))
    return figure


def mds_figure(pairs: pd.DataFrame, families: dict[str, str], measure: str = "cka", seed: int = 0,
               descriptions: dict[str, str] | None = None):
    """A 2-D map of the encoders by their second-order similarity: metric MDS of ``1 - measure``."""
    import plotly.graph_objects as go
    from sklearn.manifold import MDS

    order = list(dict.fromkeys(pairs["first"]))
    pivot = pairs.pivot(index="first", columns="second", values=measure).loc[order, order].to_numpy()
    distance = np.clip(1 - (pivot + pivot.T) / 2, 0, None)
    np.fill_diagonal(distance, 0)
    xy = MDS(n_components=2, metric="precomputed", init="random", n_init=4, random_state=seed,
             normalized_stress="auto").fit_transform(distance)
    colours = {family: METHOD_COLOURS[k] for k, family in enumerate(dict.fromkeys(families.values()))}
    span = np.ptp(xy, axis=0).max()
    # a label below its point when an earlier point sits close above-left of it, so that neighbours stay readable
    below = [any(np.linalg.norm(xy[k] - xy[j]) < 0.06 * span for j in range(k)) for k in range(len(order))]
    figure = go.Figure()
    for family, colour in colours.items():
        members = [k for k, name in enumerate(order) if families.get(name) == family]
        figure.add_trace(go.Scatter(
            x=xy[members, 0], y=xy[members, 1], mode="markers+text", name=family, text=[order[k] for k in members],
            textposition=["bottom center" if below[k] else "top center" for k in members],
            marker=dict(size=12, color=colour),
            customdata=[(descriptions or {}).get(order[k], "") for k in members],
            hovertemplate="%{text}<br>%{customdata}<extra>" + family + "</extra>"))
    figure.update_xaxes(showticklabels=False, zeroline=False, title="MDS 1",
                        range=[xy[:, 0].min() - 0.2 * span, xy[:, 0].max() + 0.2 * span])
    figure.update_yaxes(showticklabels=False, zeroline=False, title="MDS 2", scaleanchor="x",
                        range=[xy[:, 1].min() - 0.1 * span, xy[:, 1].max() + 0.1 * span])
    figure.update_layout(title=f"encoders by second-order similarity<br><sup>MDS of 1 − {measure.upper()}; near = "
                         "alike</sup>", height=600, legend=dict(orientation="h", y=-0.05),
                         margin=dict(l=40, r=20, t=80, b=40))
    return figure

