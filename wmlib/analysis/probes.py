"""Probes: how well a simple read-out recovers a target from a representation, with the controls of the field.

The pieces, each a plain function on arrays (one row per token):

- :func:`make_probe`: the estimators (scikit-learn's interface): ``linear`` (ridge regression / multinomial
  logistic regression, :class:`SoftmaxProbe`), ``mlp`` (one hidden layer of 256, as CPC's second phone column)
  and ``supervised`` (two hidden layers of 256: with log-mel as input it is the supervised upper bound).  Features
  are standardised first.
- :func:`grouped_cv_predict`: cross-validation grouped by utterance: no utterance has tokens in two folds.
- :func:`control_labels`: Hewitt & Liang's control task: a random label for each input *type*.  Audio tokens have
  no types, so the types are acoustic units (:func:`acoustic_types`: k-means clusters of the log-mel token, as
  HuBERT's units): a probe that scores well on the control task memorises fine acoustic identity rather than
  reading the target.  *Selectivity* = task accuracy - control accuracy.
- :func:`online_code_length`: Voita & Titov's MDL probe: the bits needed to transmit the labels block by block,
  each block coded by a probe trained on the blocks before it.
- :func:`utterance_bootstrap`: 95% confidence intervals by resampling whole utterances.
- :func:`probe_target`: all of it for one representation and one target: several seeds, in-distribution (grouped
  CV) and held-out (voices and instruments never in the probe's training data), control or shuffled labels,
  chance and majority levels; one tidy row per setting.

Used by the chapters "Pitch and energy" and "Phones, sources and voices" through :mod:`wmlib.analysis.probing`.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from wmlib.model.bootstrap import PairedDifference, attach, bootstrap_weights, stored

from .targets import Target, get_target

PROBES = ("linear", "mlp", "supervised")


class ProbeInputError(ValueError):
    """Features or targets a probe cannot read: NaN, mismatched lengths, a single class, too few utterances."""


# ----------------------------------------------------------------------------------------------------------------
# Estimators


class SoftmaxProbe(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression with an L2 penalty, fitted by full-batch L-BFGS in torch; a scikit-learn
    classifier (``fit``, ``predict``, ``predict_proba``, ``classes_``, ``score``).

    The objective is scikit-learn's ``LogisticRegression(C=C)`` (mean cross-entropy + ``||W||² / (2 C n)``); only the
    solver differs.  On the book's probes it reaches the same held-out accuracy 5-20x faster on this 2-core CPU
    (stacked log-mel, 40 phones, 1,300 tokens: 0.38 s against 7.4 s, accuracy 0.563 both), which is what makes
    three seeds of grouped cross-validation for every row and target fit the book's time budget.
    ``tests/analysis/test_probes.py`` checks that it agrees with scikit-learn's estimator.
    """

    def __init__(self, C: float = 0.05, max_iter: int = 100):
        self.C = C
        self.max_iter = max_iter

    def fit(self, features, targets):
        import torch
        import torch.nn.functional as F

        self.classes_, index = np.unique(np.asarray(targets), return_inverse=True)
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)  # (N, D)
        y = torch.as_tensor(index)
        weight = torch.zeros(x.shape[1], len(self.classes_), requires_grad=True)  # (D, K)
        bias = torch.zeros(len(self.classes_), requires_grad=True)  # (K,)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=self.max_iter, history_size=10,
                                      tolerance_grad=1e-4, tolerance_change=1e-7, line_search_fn="strong_wolfe")
        penalty = 0.5 / (self.C * len(y))

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, y) + penalty * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.coef_, self.intercept_ = weight.detach().numpy().T, bias.detach().numpy()  # (K, D), (K,)
        return self

    def decision_function(self, features) -> np.ndarray:
        return np.asarray(features, dtype=np.float32) @ self.coef_.T + self.intercept_  # (N, K)

    def predict_proba(self, features) -> np.ndarray:
        scores = self.decision_function(features)
        scores = np.exp(scores - scores.max(1, keepdims=True))
        return scores / scores.sum(1, keepdims=True)

    def predict(self, features) -> np.ndarray:
        return self.classes_[self.decision_function(features).argmax(1)]



def make_probe(probe: str, kind: str, seed: int = 0):
    """A fresh scikit-learn estimator: ``probe`` in :data:`PROBES`, ``kind`` ``"regression"`` or ``"classification"``.

    - ``linear``: ``RidgeCV`` (alpha chosen by efficient leave-one-out among 1e-2..1e4) or :class:`SoftmaxProbe`
      (multinomial logistic regression, L2 with C = 0.05: on the book's representations C in 0.03..0.1 gave the
      best grouped-CV accuracy for phones and voices; less regularisation overfits the 1,024 log-mel dimensions);
    - ``mlp``: one hidden layer of 256 ReLUs, Adam, early stopping on 10% of the training tokens;
    - ``supervised``: two hidden layers of 256, otherwise as ``mlp``.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if probe not in PROBES:
        raise ProbeInputError(f"unknown probe {probe!r}; choose one of {PROBES}")
    if probe == "linear":
        estimator = (RidgeCV(alphas=np.logspace(-2, 4, 7)) if kind == "regression"
                     else SoftmaxProbe(C=0.05))
    else:
        hidden = (256,) if probe == "mlp" else (256, 256)
        options = dict(hidden_layer_sizes=hidden, early_stopping=True, validation_fraction=0.1, max_iter=60,
                       n_iter_no_change=5, batch_size=256, learning_rate_init=1e-3, alpha=1e-4, random_state=seed)
        estimator = (TransformedTargetRegressor(MLPRegressor(**options), transformer=StandardScaler())
                     if kind == "regression" else MLPClassifier(**options))
    return make_pipeline(StandardScaler(), estimator)


def fit_quietly(estimator, features: np.ndarray, targets: np.ndarray):
    """``estimator.fit`` with scikit-learn's convergence warnings silenced (the iteration caps are stated in
    :func:`make_probe`; a probe that stops at its cap is part of its definition)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs.*")
        return estimator.fit(features, targets)


# ----------------------------------------------------------------------------------------------------------------
# Checks


def check_probe_inputs(features: np.ndarray, values: np.ndarray, groups: np.ndarray, kind: str,
                       name: str = "representation") -> None:
    """Raise :class:`ProbeInputError` with a clear message for features or targets a probe cannot use."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ProbeInputError(f"{name}: features must be (tokens, dims), got shape {features.shape}")
    if not (len(features) == len(values) == len(groups)):
        raise ProbeInputError(f"{name}: {len(features)} feature rows, {len(values)} targets and {len(groups)} "
                              "utterance ids: they must match, one per token")
    if len(features) == 0:
        raise ProbeInputError(f"{name}: no tokens to probe")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise ProbeInputError(f"{name}: {bad.sum()} of {len(features)} tokens have NaN or infinite features "
                              f"(first at row {np.flatnonzero(bad)[0]})")
    if kind == "classification" and len(np.unique(values)) < 2:
        raise ProbeInputError(f"{name}: the target has a single class ({np.unique(values)[0]!r}): nothing to probe")
    if kind == "regression" and not np.isfinite(np.asarray(values, dtype=float)).all():
        raise ProbeInputError(f"{name}: the regression target has NaN or infinite values")
    if len(np.unique(groups)) < 2:
        raise ProbeInputError(f"{name}: tokens of {len(np.unique(groups))} utterance(s); grouped cross-validation "
                              "needs at least 2")


# ----------------------------------------------------------------------------------------------------------------
# Cross-validation, controls, code length


def _stratum_of_groups(names: np.ndarray, index: np.ndarray, strata: np.ndarray | None) -> np.ndarray:
    """The stratum of each utterance (its first token's), or one stratum for all."""
    if strata is None:
        return np.zeros(len(names), dtype=int)
    first = np.zeros(len(names), dtype=int)
    first[index[::-1]] = np.arange(len(index))[::-1]  # the first token of each group
    return np.unique(np.asarray(strata)[first], return_inverse=True)[1]


def grouped_folds(groups: np.ndarray, folds: int, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """Fold index per token: whole utterances in folds, at random (``seed``).

    With ``strata`` (per token, constant within an utterance: the voice or instrument), the utterances of each
    stratum are dealt round the folds in turn, so that every voice and instrument with at least ``folds``
    utterances is in every fold (a probe is never tested on a voice it could not have met in training); each
    stratum's deal starts at the fold with the fewest tokens so far.
    """
    names, index = np.unique(groups, return_inverse=True)
    if len(names) < folds:
        raise ProbeInputError(f"{len(names)} utterances cannot fill {folds} folds")
    rng = np.random.default_rng(seed)
    sizes = np.bincount(index)
    stratum = _stratum_of_groups(names, index, strata)
    order = rng.permutation(len(names))
    order = order[np.argsort(stratum[order], kind="stable")]  # strata in turn, random order within each
    fold_of_group = np.empty(len(names), dtype=int)
    load = np.zeros(folds)
    start, previous = 0, None
    for position, group in enumerate(order):
        if stratum[group] != previous:
            start, previous, dealt = int(np.argmin(load)), stratum[group], position
        fold = (start + position - dealt) % folds
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    return fold_of_group[index]


def grouped_cv_predict(features: np.ndarray, values: np.ndarray, groups: np.ndarray, kind: str, probe: str = "linear",
                       folds: int = 3, seed: int = 0, strata: np.ndarray | None = None,
                       extra: np.ndarray | None = None):
    """Predictions for every token by a probe that never saw its utterance.

    Returns:
        ``(predictions, extra_predictions)``: one prediction per token; and, when ``extra`` features are given
        (held-out tokens), fold 0's probe's predictions for them (else ``None``).
    """
    fold = grouped_folds(groups, folds, seed, strata)
    predictions = np.empty(len(values), dtype=values.dtype if kind == "classification" else float)
    extra_predictions = None
    for k in range(folds):
        test = fold == k
        estimator = fit_quietly(make_probe(probe, kind, seed + k), features[~test], values[~test])
        predictions[test] = estimator.predict(features[test])
        if k == 0 and extra is not None and len(extra):
            extra_predictions = estimator.predict(extra)
    return predictions, extra_predictions


def acoustic_types(mel_features: np.ndarray, count: int = 100, seed: int = 0, fit_tokens: int = 5000) -> np.ndarray:
    """Acoustic units: the k-means cluster (``count`` clusters) of each token's log-mel.

    The input *types* of the control task (:func:`control_labels`): tokens of one type sound alike.  The clusters
    are fit on at most ``fit_tokens`` tokens (seeded), then every token is assigned to its nearest centre.
    """
    from sklearn.cluster import KMeans

    features = np.asarray(mel_features, dtype=np.float32)
    count = min(count, len(features))
    rng = np.random.default_rng(seed)
    fit = features[rng.permutation(len(features))[:fit_tokens]]
    return KMeans(n_clusters=count, random_state=seed, n_init=1, max_iter=50).fit(fit).predict(features)


def control_labels(values: np.ndarray, types: np.ndarray, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task: every type gets one label drawn from the target's label distribution, and
    every token of the type carries it.  A probe can only score above the majority level by recognising types."""
    rng = np.random.default_rng(seed)
    names, index = np.unique(types, return_inverse=True)
    classes, counts = np.unique(values, return_counts=True)
    drawn = rng.choice(classes, size=len(names), p=counts / counts.sum())
    return drawn[index]


def online_code_length(features: np.ndarray, values: np.ndarray, groups: np.ndarray, seed: int = 0,
                       fractions=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0),
                       smoothing: float = 1e-3) -> dict:
    """MDL by online code (Voita & Titov 2020) for a classification target, with the linear probe.

    Tokens are ordered by utterance (utterances in a random order, ``seed``); the first block is sent with a
    uniform code over the K classes, every later block with the probabilities of a probe trained on all tokens
    before it (mixed with ``smoothing`` of the uniform code, so that a class the probe has not met yet costs a
    finite number of bits).

    Returns:
        Dict: ``bits_per_token`` (online code length / tokens), ``uniform_bits_per_token`` (log2 K) and
        ``compression`` (uniform / online).
    """
    classes = np.unique(values)
    k = len(classes)
    names, index = np.unique(groups, return_inverse=True)
    rank = np.random.default_rng(seed).permutation(len(names))[index]
    order = np.lexsort((np.arange(len(values)), rank))
    features, values = features[order], values[order]
    ends = sorted({max(2, int(round(f * len(values)))) for f in fractions})
    bits = ends[0] * np.log2(k)
    for start, end in zip(ends[:-1], ends[1:]):
        seen = values[:start]
        if len(np.unique(seen)) < 2:  # nothing to fit yet: code this block uniformly too
            bits += (end - start) * np.log2(k)
            continue
        estimator = fit_quietly(make_probe("linear", "classification", seed), features[:start], seen)
        probabilities = np.full((end - start, k), smoothing / k)
        columns = np.searchsorted(classes, estimator.classes_)
        probabilities[:, columns] += (1 - smoothing) * estimator.predict_proba(features[start:end])
        truth = np.searchsorted(classes, values[start:end])
        bits += -np.log2(probabilities[np.arange(end - start), truth] / probabilities.sum(1)).sum()
    total = ends[-1]
    return {"bits_per_token": bits / total, "uniform_bits_per_token": float(np.log2(k)),
            "compression": float(np.log2(k)) * total / bits}


# ----------------------------------------------------------------------------------------------------------------
# Scores and intervals


def token_scores(kind: str, truth: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per token: 1/0 correct (classification) or the signed error (regression)."""
    if kind == "classification":
        return (np.asarray(truth) == np.asarray(predictions)).astype(float)
    return np.asarray(predictions, dtype=float) - np.asarray(truth, dtype=float)


def utterance_bootstrap(kind: str, scores: np.ndarray, truth: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict:
    """The metric and its percentile bootstrap CI, resampling whole utterances.

    Classification: ``accuracy``.  Regression: ``r2`` (1 - SSE / SST around the resample's own mean) and
    ``error_cents`` (mean absolute error x 100, for semitone targets; for dB it reads as centi-dB, so tables show
    it for pitch only).

    Returns:
        Dict ``metric -> (value, low, high)``.
    """
    index, weights = bootstrap_weights(groups, n_boot, seed)
    counts = np.bincount(index).astype(float)
    quantiles = [(1 - level) / 2, (1 + level) / 2]

    def summarise(values):
        if len(values) == 1:  # no resamples asked for: the point estimate only
            return float(values[0]), np.nan, np.nan
        return (float(values[0]), *map(float, np.quantile(values[1:], quantiles)))

    n = weights @ counts
    if kind == "classification":
        return {"accuracy": summarise(weights @ np.bincount(index, weights=scores) / n)}
    truth = np.asarray(truth, dtype=float)
    sse = weights @ np.bincount(index, weights=scores**2)
    total, total2 = weights @ np.bincount(index, weights=truth), weights @ np.bincount(index, weights=truth**2)
    sst = total2 - total**2 / n
    return {"r2": summarise(1 - sse / np.maximum(sst, 1e-12)),
            "error_cents": summarise(100 * (weights @ np.bincount(index, weights=np.abs(scores))) / n)}


#: the key of a probe table's ``attrs`` that holds each setting's per-token scores, for paired verdicts
#: (:func:`paired_probe_difference`): ``(representation, target, setting) -> {"kind", "scores", "truth", "groups"}``
PER_TOKEN = "per_token"


def paired_probe_difference(results: pd.DataFrame, row: str, other: str, target: str,
                            setting: str = "in-distribution", n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """``row`` minus ``other`` on the same tokens of one target and setting: accuracy (classification) or R²
    (regression), with one bootstrap over utterances for both (:mod:`wmlib.model.bootstrap`).

    Args:
        results: rows of :func:`probe_target` (one call or several, concatenated by
            :func:`wmlib.analysis.probing.run_probes`), which carry their per-token scores in ``attrs``.
    """
    store = stored(results, PER_TOKEN, "probe_target and run_probes")
    for name in (row, other):
        assert (name, target, setting) in store, f"no per-token scores for {name!r} / {target!r} / {setting!r}"
    mine, theirs = store[row, target, setting], store[other, target, setting]
    assert np.array_equal(mine["groups"], theirs["groups"]) and np.array_equal(mine["truth"], theirs["truth"]), (
        f"{row!r} and {other!r} were not scored on the same tokens of {target!r} ({setting})")
    index, weights = bootstrap_weights(mine["groups"], n_boot, seed)
    if mine["kind"] == "classification":
        difference = (weights @ np.bincount(index, weights=mine["scores"] - theirs["scores"])
                      / (weights @ np.bincount(index)))
    else:  # R² difference = (SSE_other - SSE_row) / SST, every resample around its own mean
        truth = np.asarray(mine["truth"], float)
        n = weights @ np.bincount(index)
        total, total2 = weights @ np.bincount(index, weights=truth), weights @ np.bincount(index, weights=truth**2)
        sst = np.maximum(total2 - total**2 / n, 1e-12)
        difference = (weights @ np.bincount(index, weights=theirs["scores"]**2 - mine["scores"]**2)) / sst
    return PairedDifference.from_resamples(difference)


def majority_accuracy(train_values: np.ndarray, test_values: np.ndarray) -> float:
    """Accuracy of always answering the training set's most frequent class."""
    classes, counts = np.unique(train_values, return_counts=True)
    return float(np.mean(np.asarray(test_values) == classes[np.argmax(counts)]))


# ----------------------------------------------------------------------------------------------------------------
# One representation, one target


def probe_target(features: np.ndarray, labels: pd.DataFrame, target: str | Target, probe: str = "linear",
                 seeds=(0, 1, 2), folds: int = 3, heldout: np.ndarray | None = None, control: bool = False,
                 control_types: np.ndarray | None = None, mdl: bool = False, max_tokens: int | None = None,
                 representation: str = "representation", n_boot: int = 1000) -> pd.DataFrame:
    """Probe one representation for one target; one row per setting and metric.

    Args:
        features: ``(N, D)`` one row per row of ``labels``.
        labels: the token label table (``utt_id``, ``split`` and the target's columns).
        target: a registered target name (:mod:`wmlib.analysis.targets`) or a :class:`Target`.
        probe: ``"linear"``, ``"mlp"`` or ``"supervised"`` (:func:`make_probe`).
        seeds: one grouped CV per seed (fold assignment and MLP initialisation); scores are averaged per token over
            seeds, and the spread of the per-seed metric is reported as ``seed_std``.
        folds: folds of the grouped CV.
        heldout: boolean per token (default ``labels["split"] == "heldout"``): never in a probe's training data;
            scored by each seed's fold-0 probe.  Identity targets (voice, instrument) have no held-out setting.
        control: add a control setting, with the first seed only: the control task for classification (needs
            ``control_types``), labels shuffled across tokens for regression.
        control_types: type per token for the control task, e.g. :func:`acoustic_types`.
        mdl: also compute the online code length (classification).
        max_tokens: use at most this many in-distribution tokens (whole utterances, chosen with seed 0, one voice
            or instrument after another).

    Folds and the ``max_tokens`` subsample are stratified by the target's ``strata`` column (the voice, instrument
    or noise kind; the source for ``source``) when the label table has it: every stratum in the sample has an
    utterance in every fold.  Otherwise a fold can hold every utterance of an instrument, and the probe is tested
    on an instrument it never met in training (pitch and identity probes then fail for that reason alone).
        representation: the name written in the rows.
        n_boot: bootstrap resamples.

    Returns:
        Rows: ``representation, target, probe, setting`` (``in-distribution``, ``held-out``, ``control``,
        ``chance``, ``majority``, ``mdl``), ``metric, value, low, high, seed_std, tokens, utterances``.
    """
    target = get_target(target)
    values, mask = target(labels)
    groups = labels["utt_id"].to_numpy()
    strata = labels[target.strata].to_numpy() if target.strata in labels else None
    heldout = labels["split"].to_numpy() == "heldout" if heldout is None else np.asarray(heldout, dtype=bool)
    features = np.asarray(features)
    if len(features) != len(labels):
        raise ProbeInputError(f"{representation}: {len(features)} feature rows for {len(labels)} label rows")
    inside = np.flatnonzero(mask & ~heldout)
    outside = np.flatnonzero(mask & heldout) if not target.identity else np.array([], dtype=int)
    if max_tokens is not None and len(inside) > max_tokens:
        inside = subsample_utterances(inside, groups, max_tokens, seed=0, strata=strata, per_turn=folds)
    x, y, g = features[inside], values[inside], groups[inside]
    s = strata[inside] if strata is not None else None
    check_probe_inputs(x, y, g, target.kind, f"{representation} / {target.name}")
    if len(outside):
        check_probe_inputs(features[outside], values[outside], groups[outside], target.kind,
                           f"{representation} / {target.name} (held-out)")
    base = {"representation": representation, "target": target.name, "probe": probe}
    rows, per_token = [], {}

    def add(setting, scores, truth, grp, per_seed):
        per_token[representation, target.name, setting] = {"kind": target.kind, "scores": scores, "truth": truth,
                                                           "groups": grp}
        for metric, (value, low, high) in utterance_bootstrap(target.kind, scores, truth, grp, n_boot).items():
            spread = float(np.std([m[metric] for m in per_seed])) if len(per_seed) > 1 else 0.0
            rows.append({**base, "setting": setting, "metric": metric, "value": value, "low": low, "high": high,
                         "seed_std": spread, "tokens": len(truth), "utterances": len(np.unique(grp))})

    def point(scores, truth, grp):
        return {metric: v[0] for metric, v in utterance_bootstrap(target.kind, scores, truth, grp, 0).items()}

    inside_scores, outside_scores, control_scores = [], [], []
    if control and target.kind == "classification" and control_types is None:
        raise ProbeInputError(f"{representation} / {target.name}: a control task needs control_types (a type per "
                              "token, e.g. acoustic_types)")
    if control:
        control_values = (control_labels(y, np.asarray(control_types)[inside], seed=seeds[0])
                          if target.kind == "classification" else np.random.default_rng(seeds[0]).permutation(y))
    for seed in seeds:
        predicted, transferred = grouped_cv_predict(x, y, g, target.kind, probe, folds, seed, s,
                                                    extra=features[outside] if len(outside) else None)
        inside_scores.append(token_scores(target.kind, y, predicted))
        if len(outside):
            outside_scores.append(token_scores(target.kind, values[outside], transferred))
        if control and seed == seeds[0]:  # one seed: it doubles the cost
            predicted_control, _ = grouped_cv_predict(x, control_values, g, target.kind, probe, folds, seed, s)
            control_scores.append(token_scores(target.kind, control_values, predicted_control))
    add("in-distribution", np.mean(inside_scores, 0), y, g, [point(s, y, g) for s in inside_scores])
    if outside_scores:
        truth = values[outside]
        add("held-out", np.mean(outside_scores, 0), truth, groups[outside],
            [point(s, truth, groups[outside]) for s in outside_scores])
    if control_scores:
        add("control", np.mean(control_scores, 0), control_values, g,
            [point(s, control_values, g) for s in control_scores])
    if target.kind == "classification":
        chance = 1 / len(np.unique(y))
        rows.append({**base, "setting": "chance", "metric": "accuracy", "value": chance, "low": chance,
                     "high": chance, "seed_std": 0.0, "tokens": len(y), "utterances": len(np.unique(g))})
        fold = grouped_folds(g, folds, seeds[0], s)
        majority = np.mean([majority_accuracy(y[fold != k], y[fold == k]) for k in range(folds)])
        rows.append({**base, "setting": "majority", "metric": "accuracy", "value": majority, "low": majority,
                     "high": majority, "seed_std": 0.0, "tokens": len(y), "utterances": len(np.unique(g))})
        if mdl:
            code = online_code_length(x, y, g, seed=seeds[0])
            rows.append({**base, "setting": "mdl", "metric": "bits_per_token", "value": code["bits_per_token"],
                         "low": np.nan, "high": np.nan, "seed_std": 0.0, "tokens": len(y),
                         "utterances": len(np.unique(g))})
            rows.append({**base, "setting": "mdl", "metric": "compression", "value": code["compression"],
                         "low": np.nan, "high": np.nan, "seed_std": 0.0, "tokens": len(y),
                         "utterances": len(np.unique(g))})
    table = pd.DataFrame(rows)
    attach(table, PER_TOKEN, per_token)
    return table


def subsample_utterances(index: np.ndarray, groups: np.ndarray, max_tokens: int, seed: int = 0,
                         strata: np.ndarray | None = None, per_turn: int = 1) -> np.ndarray:
    """Entries of ``index`` from whole utterances in a random order (``seed``) until ``max_tokens`` are reached;
    with ``strata`` (per token, like ``groups``), ``per_turn`` utterances of each stratum in turn (pass the number
    of folds, so that every stratum in the sample can be in every fold)."""
    names, inverse = np.unique(groups[index], return_inverse=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    if strata is not None:
        stratum = _stratum_of_groups(names, inverse, np.asarray(strata)[index])[order]
        position = np.zeros(len(order), dtype=int)  # the utterance's place within its stratum
        for value in np.unique(stratum):
            position[stratum == value] = np.arange((stratum == value).sum())
        stratum_order = rng.permutation(stratum.max() + 1)[stratum]  # strata take their turns in a random order
        order = order[np.lexsort((position, stratum_order, position // per_turn))]
    sizes = np.bincount(inverse)
    keep = order[: max(1, int(np.searchsorted(np.cumsum(sizes[order]), max_tokens)) + 1)]
    return index[np.isin(inverse, keep)]
