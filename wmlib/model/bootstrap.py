"""Intervals over whole utterances, and the paired difference that every verdict of the book goes through.

Tokens, queries and clips of one utterance are not independent, so every interval resamples whole utterances
(or clips, or support draws: the *units*).  :func:`bootstrap_weights` draws the resamples once, as how often each
unit is drawn; any statistic that is a function of per-unit sums is then computed for the observed sample and
every resample in one matrix product.

Two methods that answer the same units are compared by their **paired difference**: the statistic of one minus
that of the other on the *same* resample, so that what the two share (an easy utterance, a hard clip) cancels.
Whether two separate intervals overlap says nothing reliable about that difference (it errs both ways), and the
book never decides a verdict by it.  :class:`PairedDifference` carries the verdict: "beats" / "loses to" when the
difference's 95% interval excludes 0, otherwise "not distinguishable from" — never "ties": the interval says how
large a difference the data still allow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bootstrap_weights(groups: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Resampling whole units as weights: ``(index, weights)`` with ``index`` the unit number of each value and
    ``weights`` ``(1 + n_boot, U)`` how often each unit is drawn — row 0 the observed sample (all ones), then one
    row per resample.  A weighted statistic per row (``weights @ per-unit sums``) gives the point estimate and its
    bootstrap distribution at once."""
    names, index = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), (n_boot, len(names))) + len(names) * np.arange(n_boot)[:, None]
    resampled = np.bincount(picks.ravel(), minlength=n_boot * len(names)).reshape(n_boot, len(names))  # (B, U)
    return index, np.vstack([np.ones(len(names)), resampled])  # (1 + B, U)


def weighted_means(values: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``(1 + n_boot,)`` the mean of ``values`` on the observed sample (row 0) and on each resample of the units."""
    index, weights = bootstrap_weights(groups, n_boot, seed)
    return (weights @ np.bincount(index, weights=np.asarray(values, float))) / (weights @ np.bincount(index))


def bootstrap_ci(values: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``, resampling whole units (``groups``)."""
    means = weighted_means(values, groups, n_boot, seed)[1:]
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """A statistic of method a minus that of method b on the same units, its percentile interval and what it
    says (positive: a is better, for a statistic where higher is better)."""

    difference: float
    low: float
    high: float

    @classmethod
    def from_resamples(cls, values: np.ndarray, level: float = 0.95) -> PairedDifference:
        """From ``(1 + B,)`` differences: row 0 on the observed sample, then one per resample
        (:func:`bootstrap_weights`)."""
        values = np.asarray(values, float)
        low, high = np.quantile(values[1:], [(1 - level) / 2, (1 + level) / 2])
        return cls(float(values[0]), float(low), float(high))

    @property
    def verdict(self) -> str:
        """``"beats"`` / ``"loses to"`` when the interval excludes 0, else ``"not distinguishable from"``."""
        return "beats" if self.low > 0 else "loses to" if self.high < 0 else "not distinguishable from"

    @property
    def verb(self) -> str:
        """The verdict as a sentence's verb: ``"beats"``, ``"loses to"``, ``"is not distinguishable from"``."""
        return "is not distinguishable from" if self.verdict == "not distinguishable from" else self.verdict

    def flipped(self) -> PairedDifference:
        """The same comparison read the other way round (b minus a), or for a statistic where lower is better."""
        return PairedDifference(-self.difference, -self.high, -self.low)

    def __str__(self) -> str:
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def paired_difference(a: np.ndarray, b: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> PairedDifference:
    """The difference of two methods' means on the same values' units (queries, tokens, clips), with a bootstrap
    interval that resamples whole units once for both.

    Args:
        a, b: one value per query (hits, errors), the same queries in the same order.
        groups: the unit each query belongs to (its utterance).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape == np.shape(groups), (
        f"a, b and groups must hold one value per query each, got {a.shape}, {b.shape}, {np.shape(groups)}")
    # one sum over the queries of a unit, then one division per row: an interval collapsed on one value (a single
    # utterance, or every resample alike) holds the point estimate exactly
    return PairedDifference.from_resamples(weighted_means(a - b, groups, n_boot, seed), level)


class UnitStore(dict):
    """Per-unit values (hits per query, scores per token, values per resample) riding along in a table's ``attrs``,
    so that any two of its rows can be compared by a paired difference later.

    pandas carries ``attrs`` through filtering, compares them with ``==`` when it merges or concatenates tables and
    deep-copies them each time; a dict of arrays would make ``==`` fail and be copied over and over.  A store is
    treated as immutable: it equals only itself and is never copied."""

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __copy__(self) -> UnitStore:
        return self

    def __deepcopy__(self, memo) -> UnitStore:
        return self


def attach(table, key: str, values: dict):
    """Put ``values`` on ``table.attrs[key]`` as a :class:`UnitStore`; returns the table."""
    table.attrs[key] = UnitStore(values)
    return table


def stored(table, key: str, made_by: str) -> UnitStore:
    """The per-unit values :func:`attach` put on ``table`` under ``key``.

    Raises:
        AssertionError: the table has none (made elsewhere, or concatenated / merged, which drops them); paired
            verdicts need them, so none is given from intervals instead.
    """
    store = table.attrs.get(key)
    assert store is not None, (f"this table carries no per-unit values (they ride along in .attrs from {made_by}; "
                               "pd.concat and merges of different tables drop them): paired verdicts need them")
    return store
