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
from pathlib import Path

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet

CANDIDATES = 256  # the true token + 255 distractors


@dataclass
class Windows:
    """Non-overlapping windows of ``length`` consecutive tokens of one split, and where each comes from."""

    mel: np.ndarray  # (W, L, n_mels, frames)
    utt_ids: np.ndarray  # (W,)
    index: np.ndarray | None = None  # (W, L) the tokens' rows in the TokenSet they were cut from

    def labels(self, tokens: TokenSet) -> pd.DataFrame:
        """The per-token labels of every window, ``W * L`` rows in window-major order, with a ``window`` column."""
        assert self.index is not None, "these windows were not cut from a TokenSet"
        labels = tokens.labels.iloc[self.index.ravel()].reset_index(drop=True)
        return labels.assign(window=np.repeat(np.arange(len(self.index)), self.index.shape[1]))

    @classmethod
    def from_tokens(cls, tokens: TokenSet, split: str, length: int, max_windows: int | None = None,
                    seed: int = 0, where: dict | None = None, stride: int | None = None) -> Windows:
        """Cut every utterance of ``split`` into windows of ``length`` tokens (the remainder is dropped), one every
        ``stride`` tokens (default ``length``: windows do not overlap).

        ``where``: label column -> value or list of values the tokens must have (e.g. ``{"domain": "real",
        "source": "speech"}``).
        """
        labels = tokens.labels
        keep = labels["split"].to_numpy() == split
        for column, values in (where or {}).items():
            keep &= labels[column].isin(values if isinstance(values, (list, tuple, set)) else [values]).to_numpy()
        rows_of, utt_ids = [], []
        for utt_id, rows in labels[keep].groupby("utt_id", sort=True):
            index = rows.index.to_numpy()
            for start in range(0, len(index) - length + 1, stride or length):
                rows_of.append(index[start:start + length])
                utt_ids.append(utt_id)
        assert rows_of, f"no utterance of split {split!r}{f' where {where}' if where else ''} has {length} tokens"
        index, utt_ids = np.stack(rows_of), np.array(utt_ids)  # (W, L)
        if max_windows is not None and len(index) > max_windows:
            keep = np.sort(np.random.default_rng(seed).choice(len(index), max_windows, replace=False))
            index, utt_ids = index[keep], utt_ids[keep]
        return cls(tokens.mel[index], utt_ids, index)  # mel (W, L, n_mels, frames)


def query_positions(length: int, horizon: int, first: int, stride: int = 1) -> np.ndarray:
    """Context ends ``t`` (from ``first``, every ``stride``-th) in a window that holds the target ``t + horizon``."""
    return np.arange(first, length - horizon, stride)


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


def _group_resamples(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(group_index, picks)``: each value's group, and ``n_boot`` resamples of the groups with replacement."""
    rng = np.random.default_rng(seed)
    names, group_index = np.unique(groups, return_inverse=True)
    return group_index, rng.integers(0, len(names), size=(n_boot, len(names)))


def bootstrap_ci(hits: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``hits``, resampling whole groups (utterances)."""
    group_index, picks = _group_resamples(groups, n_boot, seed)
    sums = np.bincount(group_index, weights=hits.astype(float))
    counts = np.bincount(group_index)
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    return tuple(np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))


@dataclass(frozen=True)
class PairedDifference:
    """``mean(a) - mean(b)`` over the same units, its percentile interval and what it says."""

    difference: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """``"beats"`` / ``"loses to"`` when the interval excludes 0, else ``"not distinguishable from"``."""
        return "beats" if self.low > 0 else "loses to" if self.high < 0 else "not distinguishable from"

    def __str__(self) -> str:
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def paired_difference(a: np.ndarray, b: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> PairedDifference:
    """The difference of two methods' means on the same queries, with a bootstrap interval that resamples whole
    groups (utterances) once for both, so what the two share cancels.  Deciding by whether two separate intervals
    overlap ignores that pairing (and is wrong in both directions).

    Args:
        a, b: one value per query (hits, errors), the same queries in the same order.
        groups: the unit each query belongs to (its utterance).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape == np.shape(groups), (
        f"a, b and groups must hold one value per query each, got {a.shape}, {b.shape}, {np.shape(groups)}")
    group_index, picks = _group_resamples(groups, n_boot, seed)
    sums = np.bincount(group_index, weights=a - b)
    counts = np.bincount(group_index)
    differences = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(differences, [(1 - level) / 2, (1 + level) / 2])
    # the point estimate by the resamples' own arithmetic (a sum over queries, then one division), so that an
    # interval collapsed on one value (a single utterance, or every resample alike) holds it exactly
    return PairedDifference(float(sums.sum() / counts.sum()), float(low), float(high))


def flatten_tokens(mel: np.ndarray) -> np.ndarray:
    """``(..., n_mels, frames)`` -> ``(..., n_mels * frames)``, scaled as the models scale their input."""
    from .models import DB_OFFSET, DB_SCALE

    return ((mel + DB_OFFSET) / DB_SCALE).reshape(*mel.shape[:-2], -1)


# ----------------------------------------------------------------------------------------------------------------
# Predictors: every method answers the same three questions.


class CopyLast:
    """Baseline: the prediction made at ``t`` is token ``t`` itself, whatever the horizon (log-mel space)."""

    similarity = "euclidean"

    def candidates(self, windows: Windows) -> np.ndarray:
        """``(W, L, D)`` the vectors every token is retrieved by."""
        return flatten_tokens(windows.mel)

    def predict(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        """``(W, N, D)`` the predicted vector of token ``t + horizon`` for each context end ``t``."""
        return flatten_tokens(windows.mel[:, positions])

    def predict_mel(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        """``(W, N, n_mels, frames)`` the predicted token in dB."""
        return windows.mel[:, positions]


class LinearAutoregression(CopyLast):
    """Baseline: ridge regression from the last ``order`` tokens (scaled log-mel) to token ``t + horizon``."""

    def __init__(self, order: int = 4, alpha: float = 10.0):
        self.order, self.alpha, self.models = order, alpha, {}

    def _inputs(self, windows: Windows) -> np.ndarray:
        flat = flatten_tokens(windows.mel)  # (W, L, D)
        lagged = [np.roll(flat, lag, axis=1) for lag in range(self.order)]  # lag 0 = token t
        return np.concatenate(lagged, axis=-1)  # (W, L, order * D); rows t < order - 1 wrap and are never used

    def fit(self, train: Windows, horizons) -> LinearAutoregression:
        from sklearn.linear_model import Ridge

        inputs, flat = self._inputs(train), flatten_tokens(train.mel)
        for horizon in horizons:
            positions = query_positions(flat.shape[1], horizon, self.order - 1)
            x = inputs[:, positions].reshape(-1, inputs.shape[-1])
            y = flat[:, positions + horizon].reshape(-1, flat.shape[-1])
            self.models[horizon] = Ridge(alpha=self.alpha).fit(x, y)
        return self

    def predict(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        assert positions.min() >= self.order - 1, f"context ends need {self.order} tokens, got {positions.min()}"
        assert horizon in self.models, f"fit horizon {horizon} first (fitted: {sorted(self.models)})"
        inputs = self._inputs(windows)[:, positions]  # (W, N, order * D)
        return self.models[horizon].predict(inputs.reshape(-1, inputs.shape[-1])).reshape(*inputs.shape[:2], -1)

    def predict_mel(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        from .models import DB_OFFSET, DB_SCALE

        flat = self.predict(windows, horizon, positions)  # (W, N, D), scaled
        return (flat * DB_SCALE - DB_OFFSET).reshape(*flat.shape[:2], *windows.mel.shape[-2:])


class ModelPredictor:
    """A trained world model: contrastive models retrieve in their own embedding space (cosine); models without
    contrastive heads retrieve by their decoded prediction in log-mel space, as the baselines do.  One imagination
    (:meth:`wmlib.model.models.WorldModel.predict_ahead`) serves both the retrieval and the mel error."""

    def __init__(self, model, batch_size: int = 32):
        self.model, self.batch_size = model.eval(), batch_size
        self.contrastive = model.config.contrastive
        self.similarity = "cosine" if self.contrastive else "euclidean"
        self._last = (None, None)  # (key, predictions) of the last question asked

    def _batches(self, windows: Windows, work) -> dict:
        import torch

        device = next(self.model.parameters()).device
        outputs = {}
        with torch.no_grad():
            for start in range(0, len(windows.mel), self.batch_size):
                batch = torch.as_tensor(windows.mel[start:start + self.batch_size], device=device)
                for key, value in work(batch).items():
                    outputs.setdefault(key, []).append(value.float().cpu().numpy())
        return {key: np.concatenate(values) for key, values in outputs.items()}

    def _ahead(self, windows: Windows, horizon: int, positions: np.ndarray) -> dict:
        key = (id(windows), horizon, positions.tobytes())
        if self._last[0] != key:
            self._last = (key, self._batches(windows, lambda batch: self.model.predict_ahead(
                batch, horizon, positions)))
        return self._last[1]

    def candidates(self, windows: Windows) -> np.ndarray:
        if not self.contrastive:
            return flatten_tokens(windows.mel)
        return self._batches(windows, lambda batch: {"embedding": self.model.embed(batch)})["embedding"]

    def predict(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        if not self.contrastive:
            return flatten_tokens(self.predict_mel(windows, horizon, positions))
        return self._ahead(windows, horizon, positions)["embedding"]  # (W, N, P)

    def predict_mel(self, windows: Windows, horizon: int, positions: np.ndarray) -> np.ndarray:
        return self._ahead(windows, horizon, positions)["tokens"]  # (W, N, M, F) dB


# ----------------------------------------------------------------------------------------------------------------
# The table


def retrieval_table(test: Windows, methods: dict, horizons=(1, 2, 4, 8), first: int = 3, seed: int = 0,
                    n_boot: int = 1000, stride_ahead: int = 4, hits: dict | None = None) -> pd.DataFrame:
    """Top-1 / top-5 retrieval and mel error, with 95% bootstrap CIs, for every method and horizon on the same
    queries and distractors.

    Args:
        test: the evaluation windows.
        methods: name -> predictor (:class:`CopyLast`, :class:`LinearAutoregression`, :class:`ModelPredictor`, or
            anything with their ``similarity``, ``candidates``, ``predict`` and ``predict_mel``).
        first: first context end (so the linear model has ``order`` tokens of context; the same for all).
        stride_ahead: beyond horizon 1, only every ``stride_ahead``-th context end is queried.  Open-loop
            imagination costs ``horizon`` model runs per query, and neighbouring queries of one window say much the
            same; the confidence intervals (over utterances) account for the smaller number.
        hits: a dict to fill with ``(method, horizon) -> (top-1 hits, utterance of each query)``, the same queries in
            the same order for every method, for :func:`paired_difference`.

    Returns:
        One row per (method, horizon): ``top1, top1_low, top1_high, top5, …, mel_rmse_db, mel_rmse_db_low,
        mel_rmse_db_high`` (root mean square error of the predicted token in dB) and ``queries``.
    """
    rows = []
    n_windows, length = test.mel.shape[:2]
    pools = {name: method.candidates(test) for name, method in methods.items()}  # (W, L, D) each
    for horizon in horizons:
        positions = query_positions(length, horizon, first, 1 if horizon == 1 else stride_ahead)
        window_index = np.repeat(np.arange(n_windows), len(positions))
        targets = window_index * length + np.tile(positions + horizon, n_windows)  # into the flattened pool
        distractors = draw_distractors(len(targets), n_windows * length, targets, seed + horizon)
        groups = test.utt_ids[window_index]
        truth = test.mel[:, positions + horizon]  # (W, N, M, F)
        for name, method in methods.items():
            predictions = method.predict(test, horizon, positions)  # (W, N, D)
            queries = predictions.reshape(-1, predictions.shape[-1])  # (W * N, D), window-major like targets
            pool = pools[name]
            rank = ranks(queries, pool.reshape(-1, pool.shape[-1]), targets, distractors, method.similarity)
            row = {"method": name, "horizon": horizon, "queries": len(rank)}
            if hits is not None:
                hits[name, horizon] = (rank < 1, groups)
            for k in (1, 5):
                found = rank < k
                low, high = bootstrap_ci(found, groups, n_boot=n_boot, seed=seed)
                row |= {f"top{k}": found.mean(), f"top{k}_low": low, f"top{k}_high": high}
            squared = ((method.predict_mel(test, horizon, positions) - truth) ** 2).mean(axis=(-2, -1)).ravel()
            low, high = bootstrap_ci(squared, groups, n_boot=n_boot, seed=seed)
            row |= {"mel_rmse_db": np.sqrt(squared.mean()), "mel_rmse_db_low": np.sqrt(low),
                    "mel_rmse_db_high": np.sqrt(high)}
            rows.append(row)
    return pd.DataFrame(rows)


def standard_methods(train: Windows, models: dict, horizons=(1, 2, 4, 8), order: int = 4) -> dict:
    """The baselines (copy-last-token, linear autoregression fit on ``train``) and the world models given
    (name -> model) as predictors for :func:`retrieval_table`."""
    methods = {"copy last token": CopyLast(),
               f"linear AR ({order} tokens)": LinearAutoregression(order=order).fit(train, horizons)}
    return methods | {name: ModelPredictor(model) for name, model in models.items()}


GENERATED = {"domain": "generated"}  # the clean generated corpus (no randomized copies, no real recordings)


def evaluate_runs(profile: str | None, runs: dict, horizons=(1, 2, 4, 8), length: int = 64,
                  train_windows: int = 600, n_boot: int = 1000, seed: int = 0, random_init: str | None = "all",
                  stride_ahead: int = 4, split: str = "test", where: dict | None = GENERATED) -> pd.DataFrame:
    """Retrieval table for trained runs, the random-initialisation control and the baselines.

    Args:
        profile: corpus profile (``split`` for queries, train split — every domain, the models' own training
            mixture — for the linear baseline).
        split, where: the queries' split and label filter (:meth:`Windows.from_tokens`; default: the test split
            of the clean generated corpus).
        runs: name -> run directory of :func:`wmlib.model.train.train` (its final weights) or a checkpoint of one.
        train_windows: windows of the training split used to fit the linear autoregression (a random subset).
        random_init: ``"all"``: add every run's step-0 checkpoint as ``"<name> (random init)"``; a run's name:
            only that one's; ``None``: none.

    Returns:
        The :func:`retrieval_table` of every method.  Used by ``python -m wmlib evaluate`` and the chapters
        "Training and prediction" and "Real sound".
    """
    from wmlib.data.features import load_tokens

    from .checkpoints import list_checkpoints, load_model

    assert random_init in (None, "all") or random_init in runs, (
        f"random_init must be None, 'all' or one of {sorted(runs)}, got {random_init!r}")
    tokens = load_tokens(profile, progress=False)
    train = Windows.from_tokens(tokens, "train", length, max_windows=train_windows, seed=seed)
    test = Windows.from_tokens(tokens, split, length, where=where)
    models = {}
    for name, path in runs.items():
        models[name] = load_model(path)[0]
        if random_init in ("all", name):
            path = Path(path)
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path
            initial = [checkpoint for step, checkpoint in list_checkpoints(run_dir) if step == 0]
            assert initial, f"{path} keeps no step-0 checkpoint for the random-initialisation control"
            models[f"{name} (random init)"] = load_model(initial[0])[0]
    return retrieval_table(test, standard_methods(train, models, horizons), horizons, n_boot=n_boot, seed=seed,
                           stride_ahead=stride_ahead)


def compare(table: pd.DataFrame, method: str, other: str, horizon: int, metric: str = "top1") -> str:
    """``"beats"``, ``"loses to"`` (95% CIs apart) or ``"ties with"`` (CIs overlap): ``method`` against ``other``."""
    rows = table[table["horizon"] == horizon].set_index("method")
    a, b = rows.loc[method], rows.loc[other]
    if a[f"{metric}_low"] > b[f"{metric}_high"]:
        return "beats"
    if a[f"{metric}_high"] < b[f"{metric}_low"]:
        return "loses to"
    return "ties with"


def findings(table: pd.DataFrame, method: str, baselines=("copy last token", "linear AR (4 tokens)")) -> list[str]:
    """Plain sentences about ``method`` against the baselines in a :func:`retrieval_table`, for the book's text
    (written from the numbers, so the text cannot drift from them)."""
    lines = []
    horizons = sorted(table["horizon"].unique())
    top1 = table.pivot(index="method", columns="horizon", values="top1")
    for horizon in horizons:
        verdicts = {baseline: compare(table, method, baseline, horizon) for baseline in baselines}
        parts = [f"{verdict} {baseline} ({top1.loc[method, horizon]:.3f} vs {top1.loc[baseline, horizon]:.3f})"
                 for baseline, verdict in verdicts.items()]
        lines.append(f"{horizon} token{'s' if horizon > 1 else ''} ahead, {method} " + " and ".join(parts) + ".")
    best = top1.loc[list(baselines)].max()
    behind = [h for h in horizons if top1.loc[method, h] < best[h]]
    if behind:
        lines.append(f"The best baseline is ahead of {method} from {behind[0]} token{'s' if behind[0] > 1 else ''} "
                     f"ahead on (top-1 at {behind[0]}: {top1.loc[method, behind[0]]:.3f} vs {best[behind[0]]:.3f}).")
    else:
        lines.append(f"{method} is ahead of both baselines at every horizon measured.")
    return lines
