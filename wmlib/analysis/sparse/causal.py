"""Causal tests of sparse features, decoder-free (AudioSAE's two): erasure and steering.

- **Erasure** (:func:`erasure_curve`): zero a concept's features (ranked on training tokens by how differently they
  fire on its classes), decode, train a linear probe of the concept on what is left and read it on held-out
  tokens; how many features must go before the probe falls to chance, against as many features drawn at random.
- **Steering** (:func:`steering_table`): add a feature's direction (its atom times a strong natural activation) to
  the model's state and read the model's own next-token distribution over a bank of real tokens
  (:func:`wmlib.analysis.interventions.expected_next`): how much more probability goes to tokens carrying the
  feature's label, against a random direction of the same norm, paired over windows.

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from wmlib.model.bootstrap import bootstrap_ci, bootstrap_weights, paired_difference

from .dictionary import SparseDictionary

#: The concepts erased: name -> (label column of :func:`wmlib.analysis.sparse.labelling.label_matrix` family,
#: classes). Tokens carrying none of the classes are left out of that concept's probe.
CONCEPTS = {
    "fricative vs vowel": ("phone class", ("fricative", "vowel")),
    "source": ("source", ("speech", "music", "noise")),
    "pitch register": ("register", ("low (below C3)", "middle (C3–B4)", "high (C5 and up)")),
}
#: Feature counts tried, as fractions of the dictionary (0: nothing erased; 1: everything, the mean state).
ERASE_FRACTIONS = (0, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)
#: Balanced accuracy within this of chance counts as chance.
CHANCE_MARGIN = 0.05


def concept_classes(labels: pd.DataFrame, concept: str) -> np.ndarray:
    """The class index of each token for ``concept`` (``-1``: none of its classes)."""
    family, classes = CONCEPTS[concept]
    out = np.full(len(labels), -1)
    for index, name in enumerate(classes):
        out[labels[f"{family}: {name}"].to_numpy(bool)] = index
    return out


def rank_features(codes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Features ordered by how differently they fire across the concept's classes (training tokens): the largest
    difference between one class's mean activation and the others', in units of the feature's spread."""
    keep = classes >= 0
    codes, classes = codes[keep], classes[keep]
    spread = codes.std(axis=0) + 1e-8
    score = np.zeros(codes.shape[1])
    for index in np.unique(classes):
        inside = classes == index
        score = np.maximum(score, np.abs(codes[inside].mean(axis=0) - codes[~inside].mean(axis=0)) / spread)
    return np.argsort(-score, kind="stable")


def _probe_accuracy(train_x, train_y, test_x, test_y, groups, n_boot, seed):
    """Balanced accuracy of the book's linear probe (:func:`wmlib.analysis.probes.make_probe`), fitted on
    ``train_x``, on the held-out rows: ``(1 + n_boot,)`` (row 0 observed, then resamples of utterances)."""
    from ..probes import fit_quietly, make_probe

    probe = fit_quietly(make_probe("linear", "classification"), train_x, train_y)
    correct = probe.predict(test_x) == test_y
    # balanced accuracy per resample: the mean over classes of the class's accuracy
    index, weights = bootstrap_weights(groups, n_boot, seed)
    per_class = []
    for value in np.unique(test_y):
        inside = test_y == value
        hits = weights @ np.bincount(index[inside], weights=correct[inside].astype(float), minlength=weights.shape[1])
        totals = weights @ np.bincount(index[inside], minlength=weights.shape[1])
        per_class.append(hits / np.maximum(totals, 1))
    return np.mean(per_class, axis=0)  # (1 + B,)


def erasure_curve(dictionary: SparseDictionary, train: tuple, test: tuple, concept: str, seed: int = 0,
                  n_boot: int = 500, random_draws: int = 2, max_train: int = 4000) -> pd.DataFrame:
    """Balanced accuracy of a linear probe of ``concept`` on the dictionary's reconstruction after zeroing the
    concept's top-ranked features, and after zeroing as many random features.

    Args:
        train, test: ``(codes, label_matrix, groups)`` of training and held-out tokens.

    Returns:
        One row per count of erased features: ``erased``, ``accuracy`` (+ ``_low``/``_high``), ``random``
        (+ interval; the mean of ``random_draws`` random sets), ``difference`` (concept − random, paired over
        held-out utterances, with its interval), ``chance``.
    """
    (train_codes, train_labels, _), (test_codes, test_labels, groups) = train, test
    train_y, test_y = concept_classes(train_labels, concept), concept_classes(test_labels, concept)
    rng = np.random.default_rng(seed)
    train_rows = np.flatnonzero(train_y >= 0)
    if len(train_rows) > max_train:
        train_rows = np.sort(rng.choice(train_rows, max_train, replace=False))
    test_rows = np.flatnonzero(test_y >= 0)
    if len(np.unique(train_y[train_rows])) < 2 or len(np.unique(test_y[test_rows])) < 2:
        raise ValueError(f"the concept {concept!r} needs tokens of at least two of its classes in both sets")
    order = rank_features(train_codes[train_rows], train_y[train_rows])
    features = dictionary.features
    chance = 1 / len(np.unique(test_y[test_rows]))
    rows = []
    for fraction in ERASE_FRACTIONS:
        count = int(round(fraction * features))

        def accuracy(erased):
            keep = np.ones(features, bool)
            keep[erased] = False
            return _probe_accuracy(dictionary.decode(train_codes[train_rows] * keep), train_y[train_rows],
                                   dictionary.decode(test_codes[test_rows] * keep), test_y[test_rows],
                                   groups[test_rows], n_boot, seed)

        concept_acc = accuracy(order[:count])
        random_acc = np.mean([accuracy(rng.choice(features, count, replace=False)) for _ in range(random_draws)],
                             axis=0) if 0 < count < features else concept_acc
        difference = concept_acc - random_acc
        rows.append({"concept": concept, "erased": count, "fraction": count / features,
                     "accuracy": concept_acc[0], "accuracy_low": np.quantile(concept_acc[1:], 0.025),
                     "accuracy_high": np.quantile(concept_acc[1:], 0.975),
                     "random": random_acc[0], "random_low": np.quantile(random_acc[1:], 0.025),
                     "random_high": np.quantile(random_acc[1:], 0.975),
                     "difference": difference[0], "difference_low": np.quantile(difference[1:], 0.025),
                     "difference_high": np.quantile(difference[1:], 0.975), "chance": chance})
    return pd.DataFrame(rows)


def erasure_count(curve: pd.DataFrame, column: str = "accuracy") -> int:
    """The fewest features erased (of the counts tried) that bring ``column`` within :data:`CHANCE_MARGIN` of
    chance."""
    reached = curve[curve[column] <= curve["chance"] + CHANCE_MARGIN]
    return int(reached["erased"].min()) if len(reached) else int(curve["erased"].max())


def erasure_summary(curves: pd.DataFrame, features: int) -> pd.DataFrame:
    """Per concept of :func:`erasure_curve`'s rows: the fewest features that bring the probe to chance
    (:func:`erasure_count`), their share of the dictionary, the probe's balanced accuracy then and after as many random
    features, and the paired difference of the two (95% interval over held-out utterances)."""
    rows = []
    for concept, curve in curves.groupby("concept", sort=False):
        count = erasure_count(curve)
        at = curve[curve["erased"] == count].iloc[0]
        rows.append({"concept": concept, "features zeroed to reach chance": count,
                     "share of the dictionary": count / features, "probe after zeroing them": at["accuracy"],
                     "after as many random features": at["random"],
                     "paired difference": f"{at['difference']:+.3f} [{at['difference_low']:+.3f}, "
                                          f"{at['difference_high']:+.3f}]"})
    return pd.DataFrame(rows)


def steering_table(model, dictionary: SparseDictionary, chosen: pd.DataFrame, windows, bank, bank_labels: pd.DataFrame,
                   train_codes: np.ndarray, first: int = 8, every: int = 4, quantile: float = 0.9, seed: int = 0,
                   n_boot: int = 1000) -> pd.DataFrame:
    """Steer the model's state with each chosen feature and with a random direction of the same norm.

    Args:
        chosen: rows of :func:`wmlib.analysis.sparse.labelling.label_features` (``feature``, ``label``).
        windows: :class:`wmlib.model.evaluate.Windows` of held-out tokens; the states after tokens ``first,
            first + every, …`` are steered and their shifts averaged per window.
        bank: a :class:`wmlib.analysis.dreams.CandidateBank`; bank_labels: :func:`label_matrix` of its tokens.
        train_codes: the dictionary's codes of training tokens (the step is the feature's ``quantile`` activation
            there: a strong, natural amount of it).

    Returns:
        One row per feature: the probability the model gives next tokens carrying the label before steering, its
        shift under the feature and under the random direction (95% intervals over utterances), their paired
        difference and verdict.
    """
    from .. import interventions

    states = interventions.observe_features(model, windows.mel)[:, first::every]  # (W, N, d)
    groups = windows.utt_ids
    rows = []
    for offset, row in enumerate(chosen.itertuples(index=False)):
        active = train_codes[:, row.feature][train_codes[:, row.feature] > 0]
        step = float(np.quantile(active, quantile)) if len(active) else 0.0
        direction = interventions.Direction(dictionary.direction(row.feature), f"feature {row.feature}", "")
        control = interventions.random_direction(direction, seed + offset)
        values = bank_labels[row.label].to_numpy(float)
        mask = np.ones(len(values), bool)
        base = interventions.expected_next(model, states, bank, values, mask)  # (W, N)
        moved = interventions.expected_next(model, interventions.move(states, direction, step), bank, values, mask)
        random = interventions.expected_next(model, interventions.move(states, control, step), bank, values, mask)
        shift, random_shift = (moved - base).mean(axis=1), (random - base).mean(axis=1)  # (W,)
        result = paired_difference(shift, random_shift, groups, n_boot=n_boot, seed=seed)
        low, high = bootstrap_ci(shift, groups, n_boot=n_boot, seed=seed)
        random_low, random_high = bootstrap_ci(random_shift, groups, n_boot=n_boot, seed=seed)
        rows.append({"feature": row.feature, "label": row.label, "f1": getattr(row, "f1", np.nan), "step": step,
                     "before": float(base.mean()), "shift": float(shift.mean()), "shift_low": low,
                     "shift_high": high, "random": float(random_shift.mean()), "random_low": random_low,
                     "random_high": random_high, "difference": result.difference,
                     "difference_low": result.low, "difference_high": result.high, "verdict": result.verdict,
                     "windows": len(shift), "utterances": len(np.unique(groups))})
    return pd.DataFrame(rows)
