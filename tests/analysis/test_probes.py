"""Probes on planted signals: what must be found is found, what must not be is not, and bad input is refused."""
import numpy as np
import pandas as pd
import pytest

from wmlib.analysis import probes, targets
from wmlib.analysis.probes import ProbeInputError
from wmlib.analysis.targets import TargetError, get_target, register_target


def planted_labels(utterances=40, tokens=30, seed=0):
    """A label table of ``utterances`` x ``tokens``; a quarter of the utterances are held out."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(utterances):
        split = "heldout" if u % 4 == 3 else "train"
        for _ in range(tokens):
            rows.append({"utt_id": f"utt-{u:03d}", "split": split, "source": "music", "voice": f"v{u % 3}",
                         "voiced": True, "midi_pitch": 60 + 12 * rng.random(), "energy_db": -30 + 10 * rng.random(),
                         "phone": "", "phone_class": ""})
    return pd.DataFrame(rows)


def rows(table, setting, metric):
    return table[(table["setting"] == setting) & (table["metric"] == metric)].iloc[0]


def test_a_linearly_planted_variable_is_recovered_and_shuffled_labels_are_not():
    labels = planted_labels()
    rng = np.random.default_rng(1)
    direction = rng.normal(size=16)
    pitch = labels["midi_pitch"].to_numpy()
    features = rng.normal(size=(len(labels), 16)) + np.outer(pitch - pitch.mean(), direction) / 2
    table = probes.probe_target(features, labels, "pitch_music", seeds=(0, 1, 2), control=True, n_boot=200)
    inside, held = rows(table, "in-distribution", "r2"), rows(table, "held-out", "r2")
    assert inside["value"] > 0.9 and held["value"] > 0.9
    assert inside["low"] <= inside["value"] <= inside["high"]
    assert rows(table, "in-distribution", "error_cents")["value"] < 100
    shuffled = rows(table, "control", "r2")  # regression's control: labels shuffled across tokens
    assert shuffled["value"] < 0.05
    noise = probes.probe_target(rng.normal(size=features.shape), labels, "pitch_music", seeds=(0,), n_boot=200)
    assert rows(noise, "in-distribution", "r2")["value"] < 0.05


def test_shuffled_class_labels_give_chance():
    labels = planted_labels()
    rng = np.random.default_rng(2)
    classes = np.round(labels["midi_pitch"].to_numpy()).astype(int) % 12
    features = np.eye(12)[classes] * 3 + rng.normal(size=(len(labels), 12))
    table = probes.probe_target(features, labels, "pitch_class_music", seeds=(0,), n_boot=200)
    assert rows(table, "in-distribution", "accuracy")["value"] > 0.8
    chance = rows(table, "chance", "accuracy")["value"]
    assert chance == pytest.approx(1 / 12)
    shuffled = labels.assign(midi_pitch=rng.permutation(labels["midi_pitch"].to_numpy()))
    table = probes.probe_target(features, shuffled, "pitch_class_music", seeds=(0,), n_boot=200)
    accuracy = rows(table, "in-distribution", "accuracy")
    assert accuracy["low"] - 0.03 <= chance <= accuracy["high"] + 0.03 and accuracy["value"] < 0.15


def test_grouped_folds_never_split_an_utterance():
    groups = np.repeat([f"u{i}" for i in range(17)], np.arange(1, 18))
    for seed in range(3):
        fold = probes.grouped_folds(groups, 3, seed)
        for name in np.unique(groups):
            assert len(np.unique(fold[groups == name])) == 1
        assert set(fold) == {0, 1, 2}
    assert not np.array_equal(probes.grouped_folds(groups, 3, 0), probes.grouped_folds(groups, 3, 1))
    with pytest.raises(ProbeInputError, match="cannot fill"):
        probes.grouped_folds(groups[:3], 3, 0)


def test_selectivity_falls_for_a_memorising_representation():
    """Types recur across utterances.  One representation is a random vector per type (it can only be memorised);
    the other carries the label and nothing about the type.  Both read the task; only the first reads the control."""
    rng = np.random.default_rng(3)
    n_types, utterances, tokens = 60, 60, 40
    type_label = rng.integers(0, 4, n_types)
    types = rng.integers(0, n_types, utterances * tokens)
    labels = pd.DataFrame({"utt_id": np.repeat([f"u{i}" for i in range(utterances)], tokens), "split": "train",
                           "source": "speech", "phone_class": np.array(list("abcd"))[type_label[types]]})
    labels["phone"] = labels["phone_class"]
    memorising = rng.normal(size=(n_types, 64))[types] + 0.1 * rng.normal(size=(len(types), 64))
    structured = np.eye(4)[type_label[types]] * 2 + rng.normal(size=(len(types), 4))
    result = {}
    for name, features in {"memorising": memorising, "structured": structured}.items():
        table = probes.probe_target(features, labels, "phone_class", seeds=(0,), control=True, control_types=types,
                                     n_boot=100)
        task, control = rows(table, "in-distribution", "accuracy")["value"], rows(table, "control", "accuracy")["value"]
        result[name] = (task, control, task - control)
    assert result["memorising"][1] > 0.8  # it learns the random labels of the types
    assert result["structured"][1] < 0.6  # it cannot
    assert result["structured"][2] > result["memorising"][2] + 0.3


def test_mdl_is_shorter_for_a_planted_signal_than_for_noise():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(50), 40)
    y = rng.integers(0, 5, len(groups)).astype(str)
    signal = np.eye(5)[y.astype(int)] * 2 + rng.normal(size=(len(y), 5))
    noise = rng.normal(size=(len(y), 5))
    planted = probes.online_code_length(signal, y, groups)
    random = probes.online_code_length(noise, y, groups)
    assert planted["bits_per_token"] < 0.7 * random["bits_per_token"]
    assert planted["compression"] > 1.4 and 0.85 < random["compression"] < 1.1
    assert random["uniform_bits_per_token"] == pytest.approx(np.log2(5))


def test_bootstrap_interval_covers_the_value_and_narrows_with_data():
    rng = np.random.default_rng(5)
    small = probes.utterance_bootstrap("classification", rng.random(200) < 0.7, np.zeros(200),
                                       np.repeat(np.arange(10), 20))["accuracy"]
    large = probes.utterance_bootstrap("classification", rng.random(4000) < 0.7, np.zeros(4000),
                                       np.repeat(np.arange(200), 20))["accuracy"]
    assert small[1] <= small[0] <= small[2] and large[1] <= large[0] <= large[2]
    assert large[2] - large[1] < small[2] - small[1]


def test_bad_input_gets_a_clear_error():
    labels = planted_labels(utterances=8)
    good = np.random.default_rng(6).normal(size=(len(labels), 4))
    bad = good.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ProbeInputError, match="NaN or infinite features"):
        probes.probe_target(bad, labels, "energy", seeds=(0,))
    with pytest.raises(ProbeInputError, match="feature rows"):
        probes.probe_target(good[:-3], labels, "energy", seeds=(0,))
    with pytest.raises(ProbeInputError, match="single class"):
        probes.probe_target(good, labels, "source", seeds=(0,))  # every token is music
    with pytest.raises(TargetError, match="unknown target 'pitchh'.*pitch_music"):
        probes.probe_target(good, labels, "pitchh", seeds=(0,))
    with pytest.raises(ProbeInputError, match="needs control_types"):
        probes.probe_target(good, labels, "instrument", seeds=(0,), control=True)
    with pytest.raises(ProbeInputError, match="unknown probe"):
        probes.make_probe("deep", "regression")


def test_a_registered_target_is_probed_by_name():
    @register_target("loud", "classification", "is the token louder than -25 dB?")
    def loud(labels):
        return (labels["energy_db"] > -25).to_numpy().astype(int), np.ones(len(labels), bool)

    try:
        labels = planted_labels()
        features = labels[["energy_db"]].to_numpy() + np.random.default_rng(7).normal(0, 0.5, (len(labels), 1))
        table = probes.probe_target(features, labels, "loud", seeds=(0,), n_boot=100)
        assert rows(table, "in-distribution", "accuracy")["value"] > 0.8
        assert get_target("loud").kind == "classification"
    finally:
        targets.TARGETS.pop("loud")
    with pytest.raises(TargetError, match="kind"):
        register_target("x", "ranking", "?")

    @register_target("broken", "regression", "wrong length")
    def broken(labels):
        return np.zeros(3), np.ones(3, bool)

    try:
        with pytest.raises(TargetError, match="one entry per label row"):
            get_target("broken")(planted_labels(utterances=2))
    finally:
        targets.TARGETS.pop("broken")


def test_the_softmax_probe_agrees_with_scikit_learns_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(8)
    labels = rng.integers(0, 6, 1500)
    features = rng.normal(size=(1500, 20)) + np.eye(6, 20)[labels] * 1.5
    ours = probes.SoftmaxProbe(C=0.05).fit(features[:1000], labels[:1000].astype(str))
    theirs = LogisticRegression(C=0.05, max_iter=2000, tol=1e-8).fit(features[:1000], labels[:1000].astype(str))
    assert list(ours.classes_) == list(theirs.classes_)
    assert np.mean(ours.predict(features[1000:]) == theirs.predict(features[1000:])) > 0.97
    np.testing.assert_allclose(ours.predict_proba(features[1000:]), theirs.predict_proba(features[1000:]), atol=0.02)
    assert ours.score(features[1000:], labels[1000:].astype(str)) > 0.5  # chance: 1/6


def test_stratified_folds_put_every_voice_in_every_fold():
    groups = np.repeat([f"u{i}" for i in range(24)], 10)
    voices = np.repeat([f"v{i % 6}" for i in range(24)], 10)  # 4 utterances per voice
    for seed in range(3):
        fold = probes.grouped_folds(groups, 2, seed, strata=voices)
        for voice in np.unique(voices):
            assert set(fold[voices == voice]) == {0, 1}
        for name in np.unique(groups):
            assert len(set(fold[groups == name])) == 1
        assert abs((fold == 0).sum() - (fold == 1).sum()) <= 20
    picked = probes.subsample_utterances(np.arange(len(groups)), groups, 60, seed=0, strata=voices)
    assert len(np.unique(voices[picked])) == 6  # one utterance of each voice before a second of any
    pairs = probes.subsample_utterances(np.arange(len(groups)), groups, 120, seed=0, strata=voices, per_turn=2)
    assert (np.unique(voices[pairs], return_counts=True)[1] == 20).all()  # two utterances of each voice, whole
