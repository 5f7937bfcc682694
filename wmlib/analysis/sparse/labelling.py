"""Every feature of a sparse dictionary labelled from the corpus's exact labels.

A *label* is a yes/no property of a token (:func:`label_matrix`): its phone, phone class, pitch class, register,
source, voice / instrument / noise kind, energy band, silence, domain (generated, randomized, real) and the effects
its randomized copy went through.  A feature *matches* a label when "the feature is active above a threshold"
predicts the label: F1 of that prediction.  The threshold and the label are chosen on training tokens (the best F1
among a few thresholds per feature: any activation, and quantiles of its positive activations); the F1 reported
is that choice's F1 on held-out tokens (:func:`label_features`).  The *interpretable share* is the fraction of all
features (dead ones included) whose held-out F1 reaches 0.5; its bootstrap resamples held-out utterances, the same
resamples for every dictionary, so two representations' shares compare by a paired difference
(:func:`interpretable_shares`).

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from wmlib.model.bootstrap import PairedDifference, bootstrap_weights

#: Quantiles of a feature's positive activations (on training tokens) tried as its threshold, besides "any".
THRESHOLD_QUANTILES = (0.25, 0.5, 0.75, 0.9)
#: Held-out F1 from which a feature counts as matching its label.
MATCH_F1 = 0.5
#: A label needs this many training tokens to be tried.
MIN_LABEL_TOKENS = 30
#: Register bounds (MIDI): below C3, C3 to B4, from C5.
REGISTERS = ((-np.inf, 48, "low (below C3)"), (48, 72, "middle (C3–B4)"), (72, np.inf, "high (C5 and up)"))
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Energy below this (dB, the token's RMS) is silence.
SILENCE_DB = -60.0
#: The families of labels, in the order tables list them.
FAMILIES = ("phone", "phone class", "pitch class", "register", "source", "voice", "instrument", "noise",
            "energy", "silence", "domain", "effect")


def effects_of(utterances: pd.DataFrame) -> dict[str, list[str]]:
    """``utt_id -> [effect, ...]`` from the corpus's ``augmentation`` column (JSON of each randomized copy)."""
    out = {}
    if "augmentation" not in utterances:
        return out
    for utt_id, text in zip(utterances["utt_id"], utterances["augmentation"].fillna("")):
        if isinstance(text, str) and text.strip().startswith("{"):
            out[utt_id] = sorted(json.loads(text))
    return out


def energy_bands(train_energy: np.ndarray, bands: int = 4) -> np.ndarray:
    """Band edges (dB) at the quantiles of the training tokens' energy above silence."""
    energy = np.asarray(train_energy, float)
    return np.quantile(energy[energy >= SILENCE_DB], np.linspace(0, 1, bands + 1)[1:-1])


def label_matrix(labels: pd.DataFrame, effects: dict[str, list[str]] | None = None,
                 energy_edges: np.ndarray | None = None) -> pd.DataFrame:
    """One boolean column per label, one row per token (rows aligned with ``labels``).

    Args:
        labels: a :class:`~wmlib.data.features.TokenSet`'s labels.
        effects: :func:`effects_of` the corpus (randomized copies' effects); none when omitted.
        energy_edges: :func:`energy_bands` of the training tokens (default: of ``labels`` themselves).
    """
    columns: dict[str, np.ndarray] = {}
    source = labels["source"].to_numpy()
    for name in sorted(set(labels["phone"]) - {""}):
        columns[f"phone: {name}"] = labels["phone"].to_numpy() == name
    for name in sorted(set(labels["phone_class"]) - {""}):
        columns[f"phone class: {name}"] = labels["phone_class"].to_numpy() == name
    pitch = labels["midi_pitch"].to_numpy(float)
    exact_pitch = np.isfinite(pitch) & (source == "music")
    pitch_class = np.where(exact_pitch, np.round(np.nan_to_num(pitch)).astype(int) % 12, -1)
    for index, name in enumerate(PITCH_CLASSES):
        columns[f"pitch class: {name}"] = pitch_class == index
    for low, high, name in REGISTERS:
        columns[f"register: {name}"] = np.isfinite(pitch) & (pitch >= low) & (pitch < high)
    for name in sorted(set(source)):
        columns[f"source: {name}"] = source == name
    family = {"speech": "voice", "music": "instrument", "noise": "noise"}
    voice = labels["voice"].to_numpy()
    for (kind, name), _ in labels.groupby(["source", "voice"], sort=True):
        columns[f"{family.get(kind, 'voice')}: {name}"] = (source == kind) & (voice == name)
    energy = labels["energy_db"].to_numpy(float)
    edges = energy_bands(energy) if energy_edges is None else np.asarray(energy_edges)
    band = np.digitize(energy, edges)
    for index in range(len(edges) + 1):
        lower = "" if index == 0 else f"{edges[index - 1]:.0f}"
        upper = "" if index == len(edges) else f"{edges[index]:.0f}"
        columns[f"energy: band {index + 1} ({lower}…{upper} dB)"] = (energy >= SILENCE_DB) & (band == index)
    columns["silence: below -60 dB"] = energy < SILENCE_DB
    for name in sorted(set(labels["domain"])):
        columns[f"domain: {name}"] = labels["domain"].to_numpy() == name
    if effects:
        utt = labels["utt_id"].to_numpy()
        for effect in sorted({e for names in effects.values() for e in names}):
            having = {u for u, names in effects.items() if effect in names}
            columns[f"effect: {effect}"] = np.isin(utt, list(having))
    return pd.DataFrame(columns)


def family(label: str) -> str:
    """``"phone: aa"`` -> ``"phone"``."""
    return label.split(":")[0]


def _thresholds(codes: np.ndarray) -> np.ndarray:
    """``(F, T)`` thresholds per feature: 0 (any activation) and quantiles of its positive training activations
    (NaN where a feature never fires)."""
    out = np.full((codes.shape[1], 1 + len(THRESHOLD_QUANTILES)), np.nan)
    for feature in range(codes.shape[1]):
        active = codes[:, feature][codes[:, feature] > 0]
        if len(active):
            out[feature] = [0.0, *np.quantile(active, THRESHOLD_QUANTILES)]
    return out


def _counts(codes: np.ndarray, thresholds: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every feature f and threshold t: ``predicted[f, t]`` = tokens with ``codes[:, f] > t`` and
    ``hits[f, t, l]`` = those that carry label l.  ``targets``: ``(N, L)`` booleans."""
    from scipy import sparse

    n_features, n_thresholds = thresholds.shape
    rows, cols = [], []
    for t in range(n_thresholds):
        limit = np.where(np.isnan(thresholds[:, t]), np.inf, thresholds[:, t])  # (F,)
        token, feature = np.nonzero(codes > limit)
        rows.append(token)
        cols.append(feature * n_thresholds + t)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    fires = sparse.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                              shape=(len(codes), n_features * n_thresholds))
    hits = np.asarray((fires.T @ sparse.csr_matrix(targets.astype(np.float32))).todense())  # (F*T, L)
    predicted = np.asarray(fires.sum(axis=0)).ravel()
    return predicted.reshape(n_features, n_thresholds), hits.reshape(n_features, n_thresholds, -1)


def f1(hits, predicted, positives):
    """F1 of a prediction: ``2 TP / (predicted + positives)`` (0 where both are 0)."""
    denominator = np.asarray(predicted, float) + np.asarray(positives, float)
    return np.divide(2.0 * np.asarray(hits, float), denominator, out=np.zeros(np.broadcast(hits, denominator).shape),
                     where=denominator > 0)


def label_features(train_codes: np.ndarray, train_labels: pd.DataFrame, test_codes: np.ndarray,
                   test_labels: pd.DataFrame) -> pd.DataFrame:
    """The label each feature matches best, chosen on training tokens, scored on held-out ones.

    Args:
        train_codes, test_codes: ``(N, F)`` activations of the dictionary's features.
        train_labels, test_labels: :func:`label_matrix` of the same tokens (same columns).

    Returns:
        One row per feature: ``feature, label, family, threshold, train_f1, f1, precision, recall`` (held-out),
        ``active_train`` (fraction of training tokens where it fires), ``positives`` (held-out tokens of its label).
        A feature that never fires on training tokens has label ``""`` and F1 0.
    """
    # a label absent from the held-out tokens is False on all of them; one absent from training is never chosen
    test_labels = test_labels.reindex(columns=train_labels.columns, fill_value=False)
    targets = train_labels.to_numpy(bool)
    usable = targets.sum(axis=0) >= MIN_LABEL_TOKENS
    thresholds = _thresholds(train_codes)
    predicted, hits = _counts(train_codes, thresholds, targets[:, usable])
    scores = f1(hits, predicted[..., None], targets[:, usable].sum(axis=0))  # (F, T, L')
    scores[np.isnan(thresholds)] = -1
    flat = scores.reshape(len(scores), -1).argmax(axis=1)
    best_t, best_l = np.unravel_index(flat, scores.shape[1:])
    names = np.array(train_labels.columns)[usable][best_l]
    features = np.arange(train_codes.shape[1])
    threshold = thresholds[features, best_t]
    alive = np.isfinite(threshold)
    test_targets = test_labels[names].to_numpy(bool) if len(names) else np.zeros((len(test_codes), 0), bool)
    fires = test_codes > np.where(alive, threshold, np.inf)  # (N, F)
    tp = (fires & test_targets).sum(axis=0)
    n_predicted, positives = fires.sum(axis=0), test_targets.sum(axis=0)
    return pd.DataFrame({
        "feature": features, "label": np.where(alive, names, ""),
        "family": [family(n) if a else "" for n, a in zip(names, alive)], "threshold": threshold,
        "train_f1": np.where(alive, scores[features, best_t, best_l], 0.0),
        "f1": np.where(alive, f1(tp, n_predicted, positives), 0.0),
        "precision": np.divide(tp, n_predicted, out=np.zeros(len(tp)), where=n_predicted > 0),
        "recall": np.divide(tp, positives, out=np.zeros(len(tp)), where=positives > 0),
        "active_train": (train_codes > 0).mean(axis=0), "positives": positives})


def per_utterance_counts(codes: np.ndarray, labels: pd.DataFrame, features: pd.DataFrame,
                         groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the held-out tokens: per utterance (rows, in ``np.unique(groups)`` order) and feature, the true
    positives, predictions and positives of each feature's chosen label and threshold.  Returns
    ``(utterances, tp, predicted, positives)``, each count ``(U, F)``."""
    names, index = np.unique(groups, return_inverse=True)
    alive = features["label"].to_numpy() != ""
    labels = labels.reindex(columns=sorted(set(labels.columns) | set(features["label"][alive])), fill_value=False)
    threshold = np.where(alive, features["threshold"].to_numpy(float), np.inf)
    fires = codes > threshold  # (N, F)
    truth = np.zeros_like(fires)
    truth[:, alive] = labels[features["label"][alive]].to_numpy(bool)
    tp, predicted, positives = (np.zeros((len(names), codes.shape[1])) for _ in range(3))
    for array, values in ((tp, fires & truth), (predicted, fires), (positives, truth)):
        np.add.at(array, index, values)
    return names, tp, predicted, positives


def interpretable_shares(results: dict[str, tuple], groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                         threshold: float = MATCH_F1) -> dict[str, np.ndarray]:
    """The share of features with held-out F1 ≥ ``threshold``, per representation, on the same resamples of
    held-out utterances.

    Args:
        results: name -> ``(codes, label_matrix, features)`` on the same held-out tokens (``features``:
            :func:`label_features`).
        groups: the utterance of each held-out token.

    Returns:
        name -> ``(1 + n_boot,)`` shares: row 0 on the observed tokens, then one per resample (the same rows for
        every name: subtract two for a paired difference).
    """
    _, weights = bootstrap_weights(groups, n_boot, seed)  # (1 + B, U)
    out = {}
    for name, (codes, labels, features) in results.items():
        _, tp, predicted, positives = per_utterance_counts(codes, labels, features, groups)
        scores = f1(weights @ tp, weights @ predicted, weights @ positives)  # (1 + B, F)
        out[name] = (scores >= threshold).mean(axis=1)
    return out


def share_difference(shares: dict[str, np.ndarray], a: str, b: str) -> PairedDifference:
    """Share of ``a`` minus share of ``b`` on the same resamples of utterances."""
    return PairedDifference.from_resamples(shares[a] - shares[b])
