"""RSA and CKA: RDMs and comparisons against hand computations, the weighted bootstrap against explicit resampling,
invariances, label models, the token grid, and clear errors for mismatched inputs."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, rankdata, spearmanr

from wmlib.analysis import rsa
from wmlib.analysis.hear_api import GridError, check_timestamp_output, to_token_grid


def upper(matrix):
    return matrix[np.triu_indices(len(matrix), 1)]


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 8))
    return base, base @ rng.normal(size=(8, 6)) + 0.8 * rng.normal(size=(30, 6))


def linear_cka(x, y):
    """Kornblith et al.'s formula, by hand: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred features."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_rdm_is_one_minus_pearson_by_hand(features):
    x, _ = features
    assert np.allclose(rsa.rdm(x), 1 - np.corrcoef(x), atol=1e-10)
    with pytest.raises(rsa.RsaError, match="n_stimuli"):
        rsa.rdm(x[:2])


def test_spearman_with_unit_weights_is_spearman_and_matches_rsatoolbox(features):
    a, b = (rsa.rdm(f) for f in features)
    ours = rsa.weighted_spearman(a, b, np.ones((1, len(a))))[0]
    assert ours == pytest.approx(spearmanr(upper(a), upper(b))[0], abs=1e-10)
    assert ours == pytest.approx(rsa.compare_rsatoolbox(a, b, "spearman"), abs=1e-8)


def test_weighted_spearman_equals_explicit_resampling_of_clips(features):
    """A resample of clips, written out pair by pair (pairs between copies of one clip left out), with the full
    set's ranks: exactly what the weights compute; and close to re-ranking each resample as rsatoolbox would."""
    a, b = (rsa.rdm(f) for f in features)
    clips = np.repeat(np.arange(10), 3)  # 10 clips of 3 stimuli
    rng = np.random.default_rng(1)
    drawn = rng.integers(0, 10, 10)
    counts = np.bincount(drawn, minlength=10)
    weights = counts[clips][None].astype(float)
    ours = rsa.weighted_spearman(a, b, weights, clips)[0]
    mask = ~np.eye(len(a), dtype=bool)
    ranks_a, ranks_b = (rsa._ranks(m, mask) for m in (a, b))
    copies = [(c, k) for c in range(10) for k in range(counts[c])]  # (clip, copy)
    members = [(i, c, k) for c, k in copies for i in np.flatnonzero(clips == c)]
    pairs = [(s, t) for n, s in enumerate(members) for t in members[n + 1:] if not (s[1] == t[1] and s[2] != t[2])
             and s[0] != t[0]]
    x = np.array([ranks_a[s[0], t[0]] for s, t in pairs])
    y = np.array([ranks_b[s[0], t[0]] for s, t in pairs])
    assert ours == pytest.approx(pearsonr(x, y)[0], abs=1e-10)
    reranked = pearsonr(rankdata([a[s[0], t[0]] for s, t in pairs]), rankdata([b[s[0], t[0]] for s, t in pairs]))[0]
    assert abs(ours - reranked) < 0.05


def test_cka_matches_the_formula_and_explicit_resampling(features):
    x, y = features
    matrix = rsa.cka_matrix({"x": x, "y": y}, np.ones((1, len(x))))[0]
    assert matrix[0, 1] == pytest.approx(linear_cka(x, y), abs=1e-5)
    assert matrix[0, 0] == pytest.approx(1.0, abs=1e-5)
    index = np.random.default_rng(2).integers(0, len(x), len(x))
    weights = np.bincount(index, minlength=len(x))[None].astype(float)
    assert rsa.cka_matrix({"x": x, "y": y}, weights)[0, 0, 1] == pytest.approx(linear_cka(x[index], y[index]),
                                                                               abs=1e-4)


def test_linear_transforms_come_out_near_identical_under_cka_and_the_whitened_measure(features):
    x, unrelated = features
    rotation, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(8, 8)))
    moved = 3.0 * x @ rotation + 5.0  # rotated, scaled, shifted
    cka = rsa.cka_matrix({"x": x, "moved": moved, "other": np.random.default_rng(4).normal(size=x.shape)},
                         np.ones((1, len(x))))[0]
    assert cka[0, 1] > 0.999 and cka[0, 2] < 0.6
    euclidean = [np.linalg.norm(f[:, None] - f[None], axis=2) for f in (x, moved)]
    assert rsa.compare_rsatoolbox(*euclidean, "corr_cov") > 0.999
    assert rsa.compare_rsatoolbox(euclidean[0], rsa.rdm(unrelated), "corr_cov") < 0.9


def test_mismatched_stimulus_sets_raise_clear_errors(features):
    a, b = (rsa.rdm(f) for f in features)
    with pytest.raises(rsa.RsaError, match="stimuli"):
        rsa.weighted_spearman(a, b[:-1, :-1], np.ones((1, len(a))))
    with pytest.raises(rsa.RsaError, match="stimuli"):
        rsa.cka_matrix({"x": features[0], "y": features[1][:-1]}, np.ones((1, len(a))))


def test_label_models_by_hand():
    labels = pd.DataFrame({"semitone": [60.0, 64.0, np.nan], "phone": ["aa", "sil", "aa"],
                           "phone_class": ["vowel", "sil", "vowel"], "source": ["music", "speech", "speech"],
                           "voice": ["piano", "slt", "slt"], "energy_db": [-20.0, -30.0, -25.0]})
    models = rsa.label_rdms(labels)
    assert models["pitch"][0, 1] == 4 and np.isnan(models["pitch"][0, 2])
    assert np.isnan(models["phone"][0, 2])  # music has no phone
    assert np.isnan(models["phone"][1, 2])  # silence is no phone
    assert models["source"][1, 2] == 0 and models["source"][0, 1] == 1
    assert models["energy"][0, 2] == 5 and models["voice"][0, 1] == 1
    assert all(np.all(np.diag(m) == 0) for m in models.values())


def test_summarise_percentile_and_median_centred_intervals():
    values = np.r_[0.5, np.linspace(0.6, 0.8, 101)]
    assert rsa.summarise(values) == pytest.approx((0.5, 0.605, 0.795))
    assert rsa.summarise(values, centre="median") == pytest.approx((0.5, 0.405, 0.595))


def test_half_weights_take_half_the_clips_of_each_kind_without_repeats():
    clips = pd.DataFrame({"clip": range(10), "domain": ["generated"] * 10, "source": ["speech"] * 6 + ["music"] * 4})
    labels = pd.DataFrame({"clip": np.repeat(np.arange(10), 3)})
    stimuli = rsa.StimulusSet(clips, labels, np.zeros((10, 4), np.float32), 4)
    weights = rsa.half_weights(stimuli, n_boot=20, seed=0)
    assert weights.shape == (21, 30) and (weights[0] == 1).all() and set(np.unique(weights[1:])) == {0.0, 1.0}
    per_clip = weights[1:, ::3]
    assert (per_clip[:, :6].sum(1) == 3).all() and (per_clip[:, 6:].sum(1) == 2).all()


def test_permutation_null_is_centred_on_zero(features):
    a, b = (rsa.rdm(f) for f in features)
    null = rsa.permutation_null(a, b, n_perm=50)
    assert abs(null.mean()) < 0.1 and rsa.weighted_spearman(a, b, np.ones((1, len(a))))[0] > null.max()


def test_token_grid_averages_frames_inside_each_token():
    stamps = np.arange(0, 120, 10) + 5.0  # 10 ms frames, centres 5..115 ms: 3 tokens
    values = np.arange(12, dtype=float)[:, None]
    grid = to_token_grid(values, stamps, 3)
    assert grid[:, 0].tolist() == [1.5, 5.5, 9.5]
    sparse = to_token_grid(np.array([[1.0], [2.0]]), np.array([20.0, 100.0]), 3)  # frames every 80 ms
    assert sparse[:, 0].tolist() == [1.0, 1.0, 2.0]  # the empty middle token takes the nearest frame (t=20 ms)
    with pytest.raises(GridError, match="milliseconds"):
        to_token_grid(values, stamps / 1000, 3)  # seconds, not ms
    with pytest.raises(GridError):
        to_token_grid(values, stamps[:-1], 3)


def test_hear_output_checks():
    check_timestamp_output(np.zeros((2, 5, 3)), np.tile(np.arange(5.0), (2, 1)), 2)
    with pytest.raises(GridError, match="disagree"):
        check_timestamp_output(np.zeros((2, 5, 3)), np.zeros((2, 4)), 2)
    with pytest.raises(GridError, match="increase"):
        check_timestamp_output(np.zeros((1, 3, 3)), np.array([[0.0, 0.0, 1.0]]), 1)
