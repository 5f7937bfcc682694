"""How good a sparse dictionary is, as the field reports it: variance explained, L0, dead and dense features, seed
stability — and, for the world model, how much of its own next-token retrieval survives when its state is
replaced by the dictionary's reconstruction (the audio counterpart of "loss recovered").

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import numpy as np

from wmlib.model.bootstrap import PairedDifference, bootstrap_weights

from .dictionary import SparseDictionary

#: A feature active on more than this fraction of tokens is dense.
DENSE_FRACTION = 0.1
#: Two atoms of two seeds are the same feature when their cosine exceeds this (AudioSAE's measure).
STABLE_COSINE = 0.7


def variance_explained(x: np.ndarray, reconstruction: np.ndarray) -> float:
    """``1 - ||x - x̂||² / ||x - mean(x)||²`` over all rows."""
    x = np.asarray(x, np.float64)
    residual = ((x - reconstruction) ** 2).sum()
    total = ((x - x.mean(axis=0)) ** 2).sum()
    return float(1 - residual / total)


def quality(dictionary: SparseDictionary, x: np.ndarray, codes: np.ndarray | None = None) -> dict:
    """Variance explained, L0 (mean active features per token), dead (never active on these tokens) and dense
    (active on more than :data:`DENSE_FRACTION` of them) features, as fractions of the dictionary."""
    codes = dictionary.encode(x) if codes is None else codes
    active = codes > 0
    rate = active.mean(axis=0)
    return {"features": dictionary.features, "variance_explained": variance_explained(x, dictionary.decode(codes)),
            "l0": float(active.sum(axis=1).mean()), "dead": float((rate == 0).mean()),
            "dense": float((rate > DENSE_FRACTION).mean())}


def best_matches(atoms: np.ndarray, other: np.ndarray) -> np.ndarray:
    """For each atom (row) of ``atoms``, its highest cosine with any atom of ``other``."""
    a = atoms / np.linalg.norm(atoms, axis=1, keepdims=True).clip(1e-12)
    b = other / np.linalg.norm(other, axis=1, keepdims=True).clip(1e-12)
    return (a @ b.T).max(axis=1)


def stability(first: SparseDictionary, second: SparseDictionary, alive: np.ndarray | None = None) -> dict:
    """The share of ``first``'s features whose best decoder-cosine match in ``second`` exceeds
    :data:`STABLE_COSINE`, over all features and over the ``alive`` ones; and the median best match."""
    matches = best_matches(first.atoms, second.atoms)
    out = {"stable": float((matches > STABLE_COSINE).mean()), "median_match": float(np.median(matches))}
    if alive is not None:
        out["stable_alive"] = float((matches[alive] > STABLE_COSINE).mean()) if alive.any() else 0.0
    return out


def retrieval_hits(model, windows, states: dict[str, np.ndarray], first: int = 3, seed: int = 0) -> dict:
    """The model's top-1 next-token retrieval (h = 1, 256 candidates, as :func:`wmlib.model.evaluate.retrieval_table`)
    from each set of states, on the same queries and distractors.

    Args:
        windows: :class:`wmlib.model.evaluate.Windows` of held-out tokens.
        states: name -> ``(W, L, d)`` states after each token (the model's own ``feature``, or a replacement).

    Returns:
        name -> per-query hits ``(Q,)`` (booleans), and ``"groups"``: the utterance of each query.
    """
    import torch
    import torch.nn.functional as F

    from wmlib.model.evaluate import draw_distractors, query_positions, ranks

    n_windows, length = windows.mel.shape[:2]
    positions = query_positions(length, 1, first)  # context ends t; the state after t predicts t + 1
    with torch.no_grad():
        pool = model.embed(torch.as_tensor(windows.mel)).numpy().reshape(n_windows * length, -1)  # (W*L, P)
    window_index = np.repeat(np.arange(n_windows), len(positions))
    targets = window_index * length + np.tile(positions + 1, n_windows)
    distractors = draw_distractors(len(targets), len(pool), targets, seed + 1)
    out = {}
    for name, state in states.items():
        flat = torch.as_tensor(state[:, positions].reshape(-1, state.shape[-1]), dtype=torch.float32)  # (Q, d)
        with torch.no_grad():
            prediction = F.normalize(model.prediction_heads[0](flat), dim=-1).numpy()
        out[name] = ranks(prediction, pool, targets, distractors, "cosine") < 1
    out["groups"] = windows.utt_ids[window_index]
    return out


def retrieval_kept(hits: dict, n_boot: int = 1000, seed: int = 0) -> dict:
    """Top-1 of the state, the reconstruction and the mean-ablated state; the fraction of the state's top-1 above
    the mean-ablated one that the reconstruction keeps, ``(recon - mean) / (state - mean)``, with a bootstrap
    interval over utterances; and the paired differences behind it."""
    index, weights = bootstrap_weights(hits["groups"], n_boot, seed)
    counts = np.bincount(index, minlength=weights.shape[1])
    totals = weights @ counts  # (1 + B,)
    top1 = {name: weights @ np.bincount(index, weights=hits[name].astype(float), minlength=weights.shape[1]) / totals
            for name in ("state", "reconstruction", "mean")}
    kept = (top1["reconstruction"] - top1["mean"]) / np.where(top1["state"] - top1["mean"] == 0, np.nan,
                                                               top1["state"] - top1["mean"])
    low, high = np.nanquantile(kept[1:], [0.025, 0.975])
    return {"top1": {name: float(values[0]) for name, values in top1.items()},
            "kept": float(kept[0]), "kept_low": float(low), "kept_high": float(high),
            "reconstruction_vs_state": PairedDifference.from_resamples(top1["reconstruction"] - top1["state"]),
            "reconstruction_vs_mean": PairedDifference.from_resamples(top1["reconstruction"] - top1["mean"]),
            "queries": int(len(hits["groups"]))}
