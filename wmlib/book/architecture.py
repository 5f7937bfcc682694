"""Architecture diagrams of the world model, drawn from a model's config (so the sizes shown are the sizes built):
the default transformer and the RSSM, with the contrastive head and the stop-gradient readout decoder.

Used by the chapter "The world model".
"""
from __future__ import annotations

#: Box colours by role.
COLOURS = {"input": "#eeeeee", "encoder": "#c6dbef", "dynamics": "#fdd0a2", "state": "#fff5eb", "head": "#c7e9c0",
           "loss": "#fcbba1", "readout": "#dadaeb"}


def _diagram(boxes: dict, arrows: list, title: str, height: int = 360):
    """``boxes``: name -> ``(x, y, text, role)`` (centres, in a 0..10 x 0..5 frame); ``arrows``: ``(from, to,
    label, dashed)``."""
    import plotly.graph_objects as go

    figure = go.Figure()
    width, tall = 1.85, 0.66
    for x, y, text, role in boxes.values():
        figure.add_shape(type="rect", x0=x - width / 2, x1=x + width / 2, y0=y - tall / 2, y1=y + tall / 2,
                         fillcolor=COLOURS[role], line=dict(color="#555", width=1), layer="below")
        figure.add_annotation(x=x, y=y, text=text, showarrow=False, font=dict(size=10))
    for start, end, label, dashed in arrows:
        (x0, y0, *_), (x1, y1, *_) = boxes[start], boxes[end]
        # leave and enter at the boxes' edges, along the dominant direction
        if abs(x1 - x0) >= abs(y1 - y0):
            sign = 1 if x1 > x0 else -1
            x0, x1 = x0 + sign * width / 2, x1 - sign * width / 2
        else:
            sign = 1 if y1 > y0 else -1
            y0, y1 = y0 + sign * tall / 2, y1 - sign * tall / 2
        figure.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                              arrowhead=2, arrowsize=1.2, arrowwidth=1.4, arrowcolor="#888" if dashed else "#333",
                              text="")
        if label:
            figure.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2 + 0.18, text=f"<i>{label}</i>", showarrow=False,
                                  font=dict(size=10, color="#555"))
    figure.update_xaxes(visible=False, range=[0, 10])
    figure.update_yaxes(visible=False, range=[0, 5], scaleanchor=None)
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
                         showlegend=False)
    return figure


def transformer_figure(config):
    """The default model: token encoder, causal transformer, prediction heads against the target projection
    (InfoNCE), the next-embedding head that imagination feeds back, and the stop-gradient readout decoder."""
    bands, frames = config.n_mels, config.frames_per_token
    boxes = {
        "token": (1.0, 4.2, f"token t<br>{bands} × {frames} log-mel", "input"),
        "encoder": (1.0, 2.9, f"token encoder<br>→ e<sub>t</sub> ({config.embed_dim})", "encoder"),
        "transformer": (3.6, 2.9, f"causal transformer<br>{config.n_layers} layers, width {config.d_model}",
                        "dynamics"),
        "feature": (6.2, 2.9, "state after t<br>(feature; context of t+1)", "state"),
        "heads": (8.7, 2.9, f"prediction heads<br>k = 1…{config.predict_horizons} → {config.proj_dim}", "head"),
        "target": (8.7, 1.7, f"target projection<br>of e<sub>t+k</sub> → {config.proj_dim}", "head"),
        "loss": (8.7, 0.6, "InfoNCE<br>(cosine / τ)", "loss"),
        "next": (6.2, 4.4, "next-embedding head<br>(fed back in dreams)", "head"),
        "readout": (6.2, 1.3, "readout decoder<br>(gradient stopped)", "readout"),
    }
    arrows = [("token", "encoder", "", False), ("encoder", "transformer", "e<sub>≤t</sub>", False),
              ("transformer", "feature", "", False), ("feature", "heads", "", False), ("heads", "target", "", False),
              ("target", "loss", "", False), ("feature", "next", "", False), ("feature", "readout", "", True)]
    return _diagram(boxes, arrows, "the default world model (transformer dynamics, contrastive objective)")


def rssm_figure(config):
    """The RSSM: GRU deterministic state, prior from it alone, posterior with the token's embedding too (it reads
    h_t as well), categorical stochastic state fed back to the GRU, and the same heads as the transformer."""
    bands, frames = config.n_mels, config.frames_per_token
    boxes = {
        "token": (1.0, 4.2, f"token t<br>{bands} × {frames} log-mel", "input"),
        "encoder": (1.0, 2.9, f"token encoder<br>→ e<sub>t</sub> ({config.embed_dim})", "encoder"),
        "deter": (3.8, 1.3, f"h<sub>t</sub>: GRU state<br>({config.deter_dim})", "dynamics"),
        "prior": (3.8, 2.9, "prior p(z<sub>t</sub> | h<sub>t</sub>)<br>"
                  f"{config.stoch_vars} × {config.stoch_classes} categorical", "state"),
        "posterior": (3.8, 4.4, "posterior q(z<sub>t</sub> | h<sub>t</sub>, e<sub>t</sub>)", "state"),
        "next": (6.4, 1.3, "h<sub>t+1</sub> = GRU(h<sub>t</sub>, z<sub>t</sub>)", "dynamics"),
        "kl": (6.4, 3.6, "KL balance<br>(free nats)", "loss"),
        "heads": (8.8, 1.3, "heads on (h, z):<br>InfoNCE, readout", "head"),
    }
    arrows = [("token", "encoder", "", False), ("encoder", "posterior", "e<sub>t</sub>", False),
              ("deter", "prior", "", False),
              ("posterior", "next", "z<sub>t</sub>", False), ("deter", "next", "", False),
              ("prior", "kl", "", False), ("posterior", "kl", "", False), ("next", "heads", "", False)]
    return _diagram(boxes, arrows, "the RSSM (DreamerV2's dynamics, built beside it)")
