"""Applications: the inpainting baselines and the model's choice by the right side, melody variations, and the
few-shot sampler (never a test utterance in the support set)."""
import numpy as np
import pandas as pd
import pytest
import torch

from wmlib.analysis import applications
from wmlib.analysis.dreams import CandidateBank, DreamError
from wmlib.model.evaluate import Windows
from wmlib.model.models import ModelConfig, build_model


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    return build_model(ModelConfig.preset("tiny", dynamics="transformer", objective="contrastive")).eval()


def test_interpolation_runs_in_straight_lines_between_the_sides():
    before = np.zeros((2, 3, 64, 4), np.float32) - 60.0
    after = np.zeros((2, 2, 64, 4), np.float32) - 20.0
    filled = applications.interpolate_gap(before, after, gap=3)
    assert filled.shape == (2, 3, 64, 4)
    np.testing.assert_allclose(filled[0, :, 0, 0], [-50.0, -40.0, -30.0])  # strictly between -60 and -20


def test_inpaint_gives_every_method_and_picks_the_dream_the_right_side_favours(transformer, tiny_tokens):
    bank = CandidateBank.from_tokens(transformer, tiny_tokens, size=400)
    windows = Windows.from_tokens(tiny_tokens, "test", 20, max_windows=3).mel
    before, truth, after = windows[:, :10], windows[:, 10:14], windows[:, 14:]
    filled = applications.inpaint(transformer, before, after, 4, bank, samples=5, seed=1)
    assert set(filled) == {"copy last token", "linear interpolation", "dream forward (T=0)",
                           "best of 5 dreams by the right side"}
    assert all(value.shape == truth.shape for value in filled.values())
    np.testing.assert_array_equal(filled["copy last token"], np.repeat(before[:, -1:], 4, 1))
    # the chosen dream is the sample with the highest right-side score, recomputed here
    from wmlib.analysis.dreams import DEFAULT_TEMPERATURE, dream

    samples = dream(transformer, before, 4, DEFAULT_TEMPERATURE, 5, 1, bank).mel
    scores = np.stack([applications.right_side_score(transformer, before, samples[:, s], after) for s in range(5)], 1)
    np.testing.assert_array_equal(filled["best of 5 dreams by the right side"],
                                  samples[np.arange(3), scores.argmax(1)])
    assert scores.shape == (3, 5) and np.isfinite(scores).all() and (np.abs(scores) <= 1 + 1e-6).all()  # cosines
    with pytest.raises(DreamError, match="a gap of 0 tokens"):
        applications.inpaint(transformer, before, after, 0, bank)


def test_inpainting_table_has_every_source_gap_and_method(transformer, tiny_tokens):
    table = applications.inpainting_table(transformer, tiny_tokens, "tiny", CandidateBank.from_tokens(
        transformer, tiny_tokens, size=300), max_windows=4, samples=2, n_boot=20)
    gaps = applications.GAPS["tiny"][0]
    assert set(table["gap_ms"]) == {40 * g for g in gaps} and set(table["source"]) == {"music", "speech"}
    assert ((table["mel_rmse_db_low"] <= table["mel_rmse_db"] + 1e-9)
            & (table["mel_rmse_db"] <= table["mel_rmse_db_high"] + 1e-9)).all()
    assert all(isinstance(line, str) for line in applications.inpainting_findings(table))


def labels_for_sampling() -> pd.DataFrame:
    rows = []
    for split, count in (("train", 6), ("test", 3), ("heldout", 2)):
        for source in ("speech", "music", "noise"):
            for u in range(count):
                rows += [{"utt_id": f"{split}-{source}-{u}", "split": split, "source": source, "domain": "generated"}
                         for _ in range(5)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shots", [1, 4, 6, 12])
def test_few_shot_support_never_holds_a_test_utterance(shots):
    labels = labels_for_sampling()
    support = applications.few_shot_support(labels, shots, seed=3)
    chosen = labels.iloc[support]
    assert (chosen["split"] == "train").all()
    assert chosen["source"].value_counts().to_dict() == {"speech": shots, "music": shots, "noise": shots}
    assert len(set(support)) == len(support)
    if shots <= 6:  # one token per utterance while there are utterances enough
        assert chosen.groupby("source")["utt_id"].nunique().eq(shots).all()
    np.testing.assert_array_equal(support, applications.few_shot_support(labels, shots, seed=3))  # seeded
    assert not np.array_equal(support, applications.few_shot_support(labels, shots, seed=4)) or shots == 6


def test_few_shot_curve_separates_planted_classes():
    labels = labels_for_sampling()
    rng = np.random.default_rng(0)
    centres = {"speech": 0.0, "music": 3.0, "noise": -3.0}
    informative = np.stack([rng.normal(centres[s], 0.3, 8) for s in labels["source"]])
    noise_only = rng.normal(size=(len(labels), 8))
    test_sets = {"test": (labels["split"] == "test").to_numpy()}
    curve = applications.few_shot_curve({"informative": informative, "noise": noise_only}, labels, shots=(1, 4),
                                        draws=5, test_sets=test_sets, dims=4)
    scores = curve.set_index(["representation", "shots"])["balanced_accuracy"]
    assert scores["informative", 4] > 0.95 and scores["noise", 4] < 0.7


def test_few_shot_findings_follow_the_paired_draws():
    rows, store = [], {}
    rng = np.random.default_rng(0)
    spread = rng.uniform(-0.1, 0.1, 10)  # what a support draw does to every representation alike
    spread -= spread.mean()
    for name, level in (("model", 0.9), ("log-mel", 0.5), ("MFCC", 0.5), ("random init", 0.4)):
        for k in (1, 4, 16):
            values = (level if k > 1 else 0.45) + spread  # with 1 example per class, all alike
            rows.append({"representation": name, "test set": "test", "shots": k, "balanced_accuracy": values.mean(),
                         "balanced_accuracy_low": values.min(), "balanced_accuracy_high": values.max()})
            store[name, "test", k] = values
    table = pd.DataFrame(rows)
    table.attrs[applications.PER_DRAW] = store
    line, = applications.few_shot_findings(table, "model")
    assert "model 0.90 against log-mel 0.50" in line and "from 4 examples per class on" in line, line
    assert "a baseline beats it" not in line
