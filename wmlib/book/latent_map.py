"""The interactive latent map: a plotly scatter of :func:`wmlib.analysis.latent_map.latent_map` whose points play
their token's audio, with half a second before it, when clicked.

Offline: the audio of the map's utterances is embedded in the page once (Ogg Vorbis, base64) and
``_static/latent_map.js`` (added to every page by the book) plays the clicked point's stretch of it in the player
under the map.  Buttons colour the points by pitch, phone, source or voice; hovering shows every label.

Used by the chapter "Phones, sources and voices".
"""
from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import pandas as pd

from .plots import METHOD_COLOURS, SOURCE_COLOURS, wrap

#: Seconds of audio played before the clicked token.
CONTEXT_SECONDS = 0.5
PALETTE = METHOD_COLOURS + ["#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
                            "#dbdb8d", "#9edae5"]


def ogg_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    """``audio`` as an Ogg Vorbis ``data:`` URI (about 1.5 kB per second of 16 kHz audio)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.asarray(audio, dtype=np.float32), -1, 1), sample_rate, format="OGG",
                    subtype="VORBIS")
    return "data:audio/ogg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _colours(values: pd.Series) -> list[str]:
    names = list(dict.fromkeys(values))
    return [PALETTE[names.index(v) % len(PALETTE)] for v in values]


def latent_map_figure(points: pd.DataFrame, title: str = ""):
    """The scatter: one trace per colouring (pitch, phone, source, voice; buttons switch), hover labels, and per
    point ``customdata`` ``[utterance index, token start s, token end s]`` for the player."""
    import plotly.graph_objects as go

    clips = {utt: i for i, utt in enumerate(dict.fromkeys(points["utt_id"]))}
    custom = np.stack([points["utt_id"].map(clips), points["start_s"], points["end_s"]], axis=1)
    pitch = points["midi_pitch"].to_numpy(dtype=float)
    hover = [f"{r.source} · {r.voice}<br>{r.utt_id} at {r.start_s:.2f} s<br>phone: {r.phone or '–'}"
             f"<br>pitch: {f'{r.midi_pitch:.1f}' if np.isfinite(r.midi_pitch) else 'unvoiced'} (MIDI)"
             f"<br>energy: {r.energy_db:.0f} dB" for r in points.itertuples()]
    colourings = {
        "pitch": dict(color=np.where(np.isfinite(pitch), pitch, np.nan), colorscale="Viridis", showscale=True,
                      colorbar=dict(title="MIDI"), cmin=np.nanmin(pitch) if np.isfinite(pitch).any() else 0),
        "phone": dict(color=_colours(points["phone"].replace("", "(not speech)"))),
        "source": dict(color=[SOURCE_COLOURS.get(s, "#333") for s in points["source"]]),
        "voice": dict(color=_colours(points["voice"])),
    }
    figure = go.Figure()
    for index, (name, marker) in enumerate(colourings.items()):
        figure.add_trace(go.Scattergl(
            x=points["x"], y=points["y"], mode="markers", name=name, visible=index == 0, customdata=custom,
            text=hover, hovertemplate="%{text}<extra></extra>", marker=dict(size=5, opacity=0.8, **marker)))
    buttons = [dict(label=f"colour: {name}", method="update",
                    args=[{"visible": [i == j for j in range(len(colourings))]}])
               for i, name in enumerate(colourings)]
    figure.update_layout(
        title=wrap(title, 80), height=560, showlegend=False, margin=dict(l=10, r=10, t=90, b=10),
        xaxis=dict(showticklabels=False, title="UMAP 1"), yaxis=dict(showticklabels=False, title="UMAP 2"),
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=0, y=1.08, xanchor="left")])
    return figure


def latent_map_html(points: pd.DataFrame, audio: dict[str, np.ndarray], sample_rate: int = 16_000,
                    title: str = "", element_id: str = "latent-map"):
    """The map, its player and the embedded audio as one ``IPython.display.HTML`` block.

    Args:
        points: :func:`wmlib.analysis.latent_map.latent_map`'s table.
        audio: ``utt_id -> waveform`` for every utterance of ``points``.
        sample_rate: the waveforms' rate.
        title: the figure's title.
        element_id: the container's HTML id (unique on the page).
    """
    from IPython.display import HTML

    utterances = list(dict.fromkeys(points["utt_id"]))
    missing = [utt for utt in utterances if utt not in audio]
    assert not missing, f"no audio for {len(missing)} utterance(s) of the map, e.g. {missing[0]}"
    clips = [ogg_data_uri(audio[utt], sample_rate) for utt in utterances]
    figure = latent_map_figure(points, title).to_html(full_html=False, include_plotlyjs=False,
                                                      div_id=f"{element_id}-plot")
    return HTML(
        f'<div class="wm-latent-map" id="{html.escape(element_id)}" data-context-seconds="{CONTEXT_SECONDS}">'
        f"{figure}"
        '<p class="wm-latent-status">Click a point to hear its token with half a second before it.</p>'
        '<audio class="wm-latent-player" controls preload="none"></audio>'
        f'<script type="application/json" class="wm-latent-clips">{json.dumps(clips)}</script></div>')
