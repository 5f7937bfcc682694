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

from .bootstrap import PairedDifference, attach, bootstrap_ci, paired_difference, stored

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


#: the key of a retrieval table's ``attrs`` that holds its per-query results (:func:`per_query`)
PER_QUERY = "per_query"


def retrieval_table(test: Windows, methods: dict, horizons=(1, 2, 4, 8), first: int = 3, seed: int = 0,
                    n_boot: int = 1000, stride_ahead: int = 4) -> pd.DataFrame:
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

    Returns:
        One row per (method, horizon): ``top1, top1_low, top1_high, top5, …, mel_rmse_db, mel_rmse_db_low,
        mel_rmse_db_high`` (root mean square error of the predicted token in dB) and ``queries``.  The per-query
        results (the same queries in the same order for every method) ride along in ``attrs``, so that any two
        methods can be compared by their paired difference (:func:`per_query`, :func:`paired`).
    """
    rows, results = [], {}
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
            for k in (1, 5):
                found = rank < k
                low, high = bootstrap_ci(found, groups, n_boot=n_boot, seed=seed)
                row |= {f"top{k}": found.mean(), f"top{k}_low": low, f"top{k}_high": high}
            squared = ((method.predict_mel(test, horizon, positions) - truth) ** 2).mean(axis=(-2, -1)).ravel()
            low, high = bootstrap_ci(squared, groups, n_boot=n_boot, seed=seed)
            row |= {"mel_rmse_db": np.sqrt(squared.mean()), "mel_rmse_db_low": np.sqrt(low),
                    "mel_rmse_db_high": np.sqrt(high)}
            rows.append(row)
            results[None, name, horizon] = {"top1": rank < 1, "top5": rank < 5, "groups": groups}
    table = pd.DataFrame(rows)
    attach(table, PER_QUERY, results)
    return table


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


def per_query(table: pd.DataFrame, method: str, horizon: int, metric: str = "top1") -> tuple[np.ndarray, np.ndarray]:
    """``(values, utterances)``: one value of ``metric`` (``"top1"`` or ``"top5"`` hits) per query of ``method`` at
    ``horizon``, in the query order every method of the table shares.  A table with a ``set`` column must be cut to
    one set first."""
    results = stored(table, PER_QUERY, "retrieval_table")
    sets = list(dict.fromkeys(table["set"])) if "set" in table.columns else [None]
    assert len(sets) == 1, f"cut the table to one set first, it holds {sets}"
    key = (sets[0], method, horizon)
    assert key in results, f"no per-query results for {method!r} at horizon {horizon} (set {sets[0]!r})"
    return np.asarray(results[key][metric], float), results[key]["groups"]


def paired(table: pd.DataFrame, method: str, other: str, horizon: int, metric: str = "top1", n_boot: int = 1000,
           seed: int = 0) -> PairedDifference:
    """``method`` minus ``other`` on the same queries of a retrieval table (one set), with the paired interval over
    utterances (:func:`paired_difference`)."""
    mine, groups = per_query(table, method, horizon, metric)
    theirs, other_groups = per_query(table, other, horizon, metric)
    assert np.array_equal(groups, other_groups), f"{method!r} and {other!r} did not answer the same queries"
    return paired_difference(mine, theirs, groups, n_boot=n_boot, seed=seed)


def compare(table: pd.DataFrame, method: str, other: str, horizon: int, metric: str = "top1") -> str:
    """``"beats"``, ``"loses to"`` or ``"is not distinguishable from"``: ``method`` against ``other``, by their paired
    difference on the same queries (:func:`paired`), never by whether two intervals overlap."""
    return paired(table, method, other, horizon, metric).verb


def verdict_table(table: pd.DataFrame, method: str, baselines=("copy last token", "linear AR (4 tokens)"),
                  horizons=None, metric: str = "top1") -> pd.DataFrame:
    """``method`` against the strongest of ``baselines`` (the highest ``metric`` at that horizon and set), one row
    per (set, horizon): both numbers with their intervals, the paired difference with its interval, and the
    verdict.  A table with a ``set`` column gets a row per set."""
    sets = list(dict.fromkeys(table["set"])) if "set" in table.columns else [None]
    rows = []
    for set_name in sets:
        part = table if set_name is None else table[table["set"] == set_name]
        for horizon in horizons or sorted(part["horizon"].unique()):
            at = part[part["horizon"] == horizon].set_index("method")
            strongest = at.loc[list(baselines), metric].idxmax()
            result = paired(part, method, strongest, horizon, metric)
            row = {} if set_name is None else {"set": set_name}
            row |= {"horizon": horizon,
                    method: f"{at.loc[method, metric]:.3f} [{at.loc[method, f'{metric}_low']:.3f}, "
                            f"{at.loc[method, f'{metric}_high']:.3f}]",
                    "strongest baseline": strongest,
                    "its score": f"{at.loc[strongest, metric]:.3f} [{at.loc[strongest, f'{metric}_low']:.3f}, "
                                 f"{at.loc[strongest, f'{metric}_high']:.3f}]",
                    "paired difference": str(result), "verdict": result.verdict}
            rows.append(row)
    return pd.DataFrame(rows).set_index(["set", "horizon"] if sets != [None] else ["horizon"])


def findings(table: pd.DataFrame, method: str, baselines=("copy last token", "linear AR (4 tokens)")) -> list[str]:
    """Plain sentences about ``method`` against the baselines in a :func:`retrieval_table`, for the book's text
    (written from the numbers, so the text cannot drift from them)."""
    lines, behind = [], []
    horizons = sorted(table["horizon"].unique())
    top1 = table.pivot(index="method", columns="horizon", values="top1")
    for horizon in horizons:
        parts = []
        for baseline in baselines:
            result = paired(table, method, baseline, horizon)
            parts.append(f"{result.verb} {baseline} ({top1.loc[method, horizon]:.3f} vs "
                         f"{top1.loc[baseline, horizon]:.3f}, difference {result})")
            if result.verdict == "loses to":
                behind.append((horizon, baseline, result))
        lines.append(f"{horizon} token{'s' if horizon > 1 else ''} ahead, {method} " + " and ".join(parts) + ".")
    if behind:
        where = ", ".join(str(h) for h in dict.fromkeys(h for h, _, _ in behind))
        horizon, baseline, result = behind[0]
        lines.append(f"A baseline beats {method} {where} token{'s' if behind[-1][0] > 1 else ''} ahead (first: "
                     f"{baseline} at {horizon}, difference {result}).")
    else:
        lines.append(f"No baseline beats {method} at any horizon measured.")
    return lines
