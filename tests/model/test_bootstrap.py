"""One bootstrap for every interval, and the paired difference every verdict goes through."""
import numpy as np
import pytest

from wmlib.model.bootstrap import PairedDifference, bootstrap_ci, bootstrap_weights, paired_difference, weighted_means


def test_weights_resample_whole_units_and_row_zero_is_the_sample():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    index, weights = bootstrap_weights(groups, n_boot=50, seed=1)
    assert weights.shape == (51, 3) and (weights[0] == 1).all()
    assert (weights[1:].sum(1) == 3).all()  # each resample draws as many units as there are
    assert list(index) == [0, 0, 1, 2, 2, 2]
    values = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    means = weighted_means(values, groups, n_boot=50, seed=1)
    assert means[0] == pytest.approx(values.mean())
    by_hand = [np.repeat(values, weights[b, index].astype(int)).mean() for b in range(1, 51)]
    assert means[1:] == pytest.approx(by_hand)
    low, high = bootstrap_ci(values, groups, n_boot=50, seed=1)
    assert (low, high) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])))


def test_verdict_words_and_the_flip():
    assert PairedDifference(0.1, 0.02, 0.2).verdict == "beats"
    assert PairedDifference(-0.1, -0.2, -0.01).verb == "loses to"
    neither = PairedDifference(0.01, -0.05, 0.07)
    assert neither.verdict == "not distinguishable from" and neither.verb == "is not distinguishable from"
    assert PairedDifference(0.1, 0.02, 0.2).flipped() == PairedDifference(-0.1, -0.2, -0.02)
    assert str(PairedDifference(0.1, 0.02, 0.2)) == "+0.100 [+0.020, +0.200]"


def test_a_shared_difficulty_cancels_only_when_paired():
    """Same units, a small constant advantage, a large shared spread between units: paired beats, while the
    unpaired intervals overlap."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 10)
    base = np.repeat(rng.normal(0, 1, 40), 10) + rng.normal(0, 0.05, 400)
    a, b = base + 0.1, base
    low_a, high_a = bootstrap_ci(a, groups)
    low_b, high_b = bootstrap_ci(b, groups)
    assert low_a < high_b
    assert paired_difference(a, b, groups).verdict == "beats"


def test_a_unit_store_survives_what_pandas_does_to_attrs():
    """Filtering, merging and concatenating tables that carry per-unit arrays: no ambiguous-truth error, no copy."""
    import pandas as pd

    from wmlib.model.bootstrap import attach

    store = {("a", 1): np.arange(5)}
    left = attach(pd.DataFrame({"k": [1, 2], "x": [3, 4]}), "per_unit", store)
    right = attach(pd.DataFrame({"k": [1, 2], "y": [5, 6]}), "per_unit", {("b", 1): np.arange(3)})
    merged = left.merge(right, on="k")  # two different stores: pandas compares them, and keeps neither
    assert "per_unit" not in merged.attrs
    same = pd.concat([left, left[left["k"] == 1]])
    assert same.attrs["per_unit"] is left.attrs["per_unit"]  # the same store, not a deep copy
    assert left[left["k"] == 2].attrs["per_unit"][("a", 1)] is store[("a", 1)]
