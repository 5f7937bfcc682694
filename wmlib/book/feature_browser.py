"""The feature browser: pick a feature of the world model's sparse dictionary (or a label, to list its features),
see what its most active held-out tokens are labelled, how it fires along its top utterance, and play each of its
top tokens with half a second before it.

Offline: each top token's clip (0.5 s of context + the token) is embedded in the page as Ogg Vorbis and
``_static/feature_browser.js`` draws the panel and plays a clip on click.

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import html
import json

import numpy as np

from .latent_map import CONTEXT_SECONDS, ogg_data_uri

#: Held-out tokens read for a feature's label histogram.
HISTOGRAM_TOKENS = 50


def browser_data(study, corpus, features: int = 48, tokens_per_feature: int = 6, sample_rate: int = 16_000) -> dict:
    """The browser's JSON: the ``features`` best-matched features of the model's dictionary (held-out F1), each with
    its label, F1, precision and recall, the labels of its most active held-out tokens, its activation along its top
    utterance, and its top tokens (one per utterance) with an audio clip each."""
    from wmlib.analysis.sparse.study import ROWS

    row = study.rows[ROWS[0]]
    table = row.features[row.features["label"] != ""].sort_values("f1", ascending=False).head(features)
    labels = study.test.labels
    label_names = np.array(study.test_labels.columns)
    clips, entries = [], []
    audio_cache: dict[str, np.ndarray] = {}
    for entry in table.itertuples(index=False):
        codes = row.test_codes[:, entry.feature]
        strongest = np.argsort(-codes, kind="stable")[:HISTOGRAM_TOKENS]
        strongest = strongest[codes[strongest] > 0]
        counts = study.test_labels.iloc[strongest].to_numpy(bool).sum(axis=0)
        top_labels = [[str(label_names[i]), int(counts[i])] for i in np.argsort(-counts, kind="stable")[:8]
                      if counts[i] > 0]
        top = study.top_tokens(entry.feature, tokens_per_feature)
        tokens = []
        for token in top.itertuples(index=False):
            if token.utt_id not in audio_cache:
                audio_cache[token.utt_id] = corpus.audio(token.utt_id)
            audio = audio_cache[token.utt_id]
            begin = max(0.0, token.start_s - CONTEXT_SECONDS)
            clips.append(ogg_data_uri(audio[int(begin * sample_rate): int(token.end_s * sample_rate)], sample_rate))
            tokens.append({"clip": len(clips) - 1, "utt": token.utt_id, "at": round(float(token.start_s), 2),
                           "activation": round(float(token.activation), 3),
                           "labels": f"{token.source} · {token.voice}" + (f" · {token.phone}" if token.phone else "")
                           + (f" · MIDI {token.midi_pitch:.0f}" if np.isfinite(token.midi_pitch) else "")})
        trace = []
        if len(top):
            rows = np.flatnonzero(labels["utt_id"].to_numpy() == top["utt_id"].iloc[0])
            trace = {"utt": top["utt_id"].iloc[0], "step": round(float(labels["end_s"].iloc[rows[0]]
                                                                         - labels["start_s"].iloc[rows[0]]), 3),
                     "values": [round(float(v), 3) for v in codes[rows]]}
        entries.append({"feature": int(entry.feature), "label": entry.label, "f1": round(float(entry.f1), 3),
                        "precision": round(float(entry.precision), 3), "recall": round(float(entry.recall), 3),
                        "histogram": top_labels, "trace": trace, "tokens": tokens})
    return {"features": entries, "clips": clips}


def feature_browser_html(data: dict, element_id: str = "feature-browser"):
    """The browser as one ``IPython.display.HTML`` block (its script: ``_static/feature_browser.js``)."""
    from IPython.display import HTML

    assert data["features"], "the browser needs at least one labelled feature"
    clips = data["clips"]
    panel = {key: value for key, value in data.items() if key != "clips"}  # the clips ride in their own block
    by_label = sorted({entry["label"] for entry in data["features"]})
    options = "".join(f'<option value="{i}">#{e["feature"]} · {html.escape(e["label"])} (F1 {e["f1"]:.2f})</option>'
                      for i, e in enumerate(data["features"]))
    label_options = '<option value="">every label</option>' + "".join(
        f'<option value="{html.escape(label)}">{html.escape(label)}</option>' for label in by_label)
    return HTML(
        f'<div class="wm-feature-browser" id="{html.escape(element_id)}" data-context-seconds="{CONTEXT_SECONDS}">'
        '<div class="wm-feature-controls"><label>label <select class="wm-feature-label">'
        f'{label_options}</select></label> <label>feature <select class="wm-feature-select">{options}</select>'
        '</label></div>'
        '<div class="wm-feature-panel"></div>'
        '<p class="wm-feature-status">Click a token to hear it with half a second before it.</p>'
        '<audio class="wm-feature-player" controls preload="none"></audio>'
        f'<script type="application/json" class="wm-feature-data">{json.dumps(panel)}</script>'
        f'<script type="application/json" class="wm-feature-clips">{json.dumps(clips)}</script></div>')
