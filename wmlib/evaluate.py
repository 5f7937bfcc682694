"""Next-token prediction as retrieval: pick the true future token out of 256 candidates.

A contrastive model predicts no spectrogram, so its predictions are judged the way it was trained: for a context
ending at token ``t`` and a horizon ``h``, every method scores the same 256 candidate tokens — the true token
``t + h`` and 255 distractors drawn from the test set — and we count how often the true one ranks first (top-1)
or among the first five (top-5).  Chance is 1/256 and 5/256.

Every method answers the same queries with the same distractors (a paired comparison):

- the world model (and the same architecture at random initialisation): cosine similarity between its predicted
  embedding and each candidate's embedding;
- **copy-last-token**: the last observed token is the prediction, compared in log-mel space;
- **linear autoregression**: ridge regression from the last ``order`` tokens' log-mels to token ``t + h``, fit on
  the training split.

Confidence intervals are percentile bootstraps over *utterances* (queries within an utterance are not
independent).  Used by the chapter "Training and prediction".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .features import TokenSet

CANDIDATES = 256  # the true token + 255 distractors


@dataclass
class Windows:
    """Non-overlapping windows of ``length`` consecutive tokens of one split, and where each comes from."""

    mel: np.ndarray  # (W, L, n_mels, frames)
    utt_ids: np.ndarray  # (W,)

    @classmethod
    def from_tokens(cls, tokens: TokenSet, split: str, length: int, max_windows: int | None = None,
                    seed: int = 0) -> "Windows":
        """Cut every utterance of ``split`` into windows of ``length`` tokens (the remainder is dropped)."""
        labels = tokens.labels
        mels, utt_ids = [], []
        for utt_id, rows in labels[labels["split"] == split].groupby("utt_id", sort=True):
            index = rows.index.to_numpy()
            for start in range(0, len(index) - length + 1, length):
                mels.append(tokens.mel[index[start:start + length]])
                utt_ids.append(utt_id)
        assert mels, f"no utterance of split {split!r} has {length} tokens"
        mel, utt_ids = np.stack(mels), np.array(utt_ids)  # (W, L, n_mels, frames)
        if max_windows is not None and len(mel) > max_windows:
            keep = np.sort(np.random.default_rng(seed).choice(len(mel), max_windows, replace=False))
            mel, utt_ids = mel[keep], utt_ids[keep]
        return cls(mel, utt_ids)


def query_positions(length: int, horizon: int, first: int) -> np.ndarray:
    """Context ends ``t`` in a window with the target ``t + horizon`` still inside it."""
    return np.arange(first, length - horizon)


def draw_distractors(n_queries: int, pool_size: int, targets: np.ndarray, seed: int) -> np.ndarray:
    """``(Q, 255)`` pool indices, none equal to its query's target; the same for every method (paired)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, pool_size - 1, size=(n_queries, CANDIDATES - 1))
    return draws + (draws >= targets[:, None])  # skip the target itself


def ranks(predictions: np.ndarray, pool: np.ndarray, targets: np.ndarray, distractors: np.ndarray,
          similarity: str) -> np.ndarray:
    """How many distractors score above the true target, per query (0 = retrieved first).

    Args:
        predictions: ``(Q, D)`` one predicted vector per query.
        pool: ``(N, D)`` candidate vectors; ``targets`` and ``distractors`` index it.
        similarity: ``cosine`` (embeddings) or ``euclidean`` (negative distance, for log-mel predictions).
    """
    predictions, pool = predictions.astype(np.float32), pool.astype(np.float32)
    if similarity == "cosine":
        predictions = predictions / np.linalg.norm(predictions, axis=1, keepdims=True).clip(1e-8)
        pool = pool / np.linalg.norm(pool, axis=1, keepdims=True).clip(1e-8)
    assert similarity in ("cosine", "euclidean"), f"unknown similarity {similarity!r}"
    out = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), 512):  # (512, 256, D) floats at a time
        part = slice(start, start + 512)
        candidates = pool[np.concatenate([targets[part, None], distractors[part]], axis=1)]  # (q, 256, D)
        if similarity == "cosine":
            scores = np.einsum("qd,qkd->qk", predictions[part], candidates)
        else:
            scores = -np.sum((candidates - predictions[part, None]) ** 2, axis=-1)
        out[part] = (scores[:, 1:] > scores[:, :1]).sum(axis=1)
    return out


def bootstrap_ci(hits: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``hits``, resampling whole groups (utterances)."""
    rng = np.random.default_rng(seed)
    names, group_index = np.unique(groups, return_inverse=True)
    sums = np.bincount(group_index, weights=hits.astype(float))
    counts = np.bincount(group_index)
    picks = rng.integers(0, len(names), size=(n_boot, len(names)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    return tuple(np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))


def flatten_tokens(mel: np.ndarray) -> np.ndarray:
    """``(..., n_mels, frames)`` -> ``(..., n_mels * frames)``, scaled as the models scale their input."""
    from .models import DB_OFFSET, DB_SCALE

    return ((mel + DB_OFFSET) / DB_SCALE).reshape(*mel.shape[:-2], -1)


def copy_last_predictions(windows: Windows, horizon: int) -> np.ndarray:
    """``(W, L, D)``: the prediction made at ``t`` is token ``t`` itself, whatever the horizon."""
    return flatten_tokens(windows.mel)


class LinearAutoregression:
    """Ridge regression from the last ``order`` tokens (flattened log-mel) to token ``t + horizon``."""

    def __init__(self, order: int = 4, alpha: float = 10.0):
        self.order, self.alpha, self.models = order, alpha, {}

    def _inputs(self, windows: Windows) -> np.ndarray:
        flat = flatten_tokens(windows.mel)  # (W, L, D)
        lagged = [np.roll(flat, lag, axis=1) for lag in range(self.order)]  # lag 0 = token t
        return np.concatenate(lagged, axis=-1)  # (W, L, order * D); rows t < order - 1 wrap and are never used

    def fit(self, train: Windows, horizons) -> "LinearAutoregression":
        from sklearn.linear_model import Ridge

        inputs, flat = self._inputs(train), flatten_tokens(train.mel)
        for horizon in horizons:
            positions = query_positions(flat.shape[1], horizon, self.order - 1)
            x = inputs[:, positions].reshape(-1, inputs.shape[-1])
            y = flat[:, positions + horizon].reshape(-1, flat.shape[-1])
            self.models[horizon] = Ridge(alpha=self.alpha).fit(x, y)
        return self

    def predictions(self, windows: Windows, horizon: int) -> np.ndarray:
        inputs = self._inputs(windows)
        return self.models[horizon].predict(inputs.reshape(-1, inputs.shape[-1])).reshape(*inputs.shape[:2], -1)


def model_predictions(model, windows: Windows, horizon: int, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A world model's ``(W, L, E)`` predicted embeddings for ``t + horizon`` and ``(W, L, E)`` token embeddings."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    predicted, embedded = [], []
    with torch.no_grad():
        for start in range(0, len(windows.mel), batch_size):
            batch = torch.as_tensor(windows.mel[start:start + batch_size], device=device)
            predicted.append(model.predict_next_embeddings(batch, horizon).float().cpu().numpy())
            embedded.append(model.embed(batch).float().cpu().numpy())
    return np.concatenate(predicted), np.concatenate(embedded)


def retrieval_table(test: Windows, methods: dict, horizons=(1, 2, 4, 8), first: int = 3, seed: int = 0,
                    n_boot: int = 1000) -> pd.DataFrame:
    """Top-1 / top-5 retrieval with 95% bootstrap CIs for every method and horizon, on the same queries.

    Args:
        test: the evaluation windows.
        methods: name -> callable ``(windows, horizon) -> (predictions (W, L, D), pool (W, L, D), similarity)``.
        first: first context end (so the linear model has ``order`` tokens of context; the same for all).

    Returns:
        One row per (method, horizon): ``top1, top1_low, top1_high, top5, top5_low, top5_high, queries``.
    """
    rows = []
    n_windows, length = test.mel.shape[:2]
    for horizon in horizons:
        positions = query_positions(length, horizon, first)
        window_index = np.repeat(np.arange(n_windows), len(positions))
        targets = window_index * length + np.tile(positions + horizon, n_windows)  # into the flattened pool
        distractors = draw_distractors(len(targets), n_windows * length, targets, seed + horizon)
        groups = test.utt_ids[window_index]
        for name, method in methods.items():
            predictions, pool, similarity = method(test, horizon)
            queries = predictions[:, positions].reshape(-1, predictions.shape[-1])
            rank = ranks(queries, pool.reshape(-1, pool.shape[-1]), targets, distractors, similarity)
            row = {"method": name, "horizon": horizon, "queries": len(rank)}
            for k in (1, 5):
                hits = rank < k
                low, high = bootstrap_ci(hits, groups, n_boot=n_boot, seed=seed)
                row |= {f"top{k}": hits.mean(), f"top{k}_low": low, f"top{k}_high": high}
            rows.append(row)
    return pd.DataFrame(rows)


def standard_methods(train: Windows, models: dict, horizons=(1, 2, 4, 8), order: int = 4) -> dict:
    """The world models given (name -> model) plus copy-last-token and linear autoregression baselines."""
    linear = LinearAutoregression(order=order).fit(train, horizons)
    methods = {
        "copy last token": lambda w, h: (copy_last_predictions(w, h), flatten_tokens(w.mel), "euclidean"),
        f"linear AR ({order} tokens)": lambda w, h: (linear.predictions(w, h), flatten_tokens(w.mel), "euclidean"),
    }
    for name, model in models.items():
        methods[name] = lambda w, h, model=model: (*model_predictions(model, w, h), "cosine")
    return methods


def evaluate_runs(profile: str | None, run_dirs: dict, horizons=(1, 2, 4, 8), length: int = 64,
                  train_windows: int = 600, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Retrieval table for trained runs, their step-0 (random-initialisation) checkpoints and the baselines.

    Args:
        profile: corpus profile (test split for queries, train split for the linear baseline).
        run_dirs: name -> run directory of :func:`wmlib.train.train`.
        train_windows: windows of the training split used to fit the linear autoregression (a random subset).

    Returns:
        The :func:`retrieval_table` of every method.  Used by ``python -m wmlib evaluate`` and the chapter
        "Training and prediction".
    """
    from .features import load_tokens
    from .train import list_checkpoints, load_model

    tokens = load_tokens(profile, progress=False)
    train = Windows.from_tokens(tokens, "train", length, max_windows=train_windows, seed=seed)
    test = Windows.from_tokens(tokens, "test", length)
    models = {}
    for name, run_dir in run_dirs.items():
        models[name] = load_model(run_dir)[0]
        initial = [path for step, path in list_checkpoints(run_dir) if step == 0]
        if initial:
            models[f"{name} (random init)"] = load_model(initial[0])[0]
    return retrieval_table(test, standard_methods(train, models, horizons), horizons, n_boot=n_boot, seed=seed)
