"""Representations of the tiny corpus: every part of each model, baselines aligned with the past, the cache, the
prediction states along the horizon, and the study's tables."""
import numpy as np
import pytest

from wmlib.analysis import probing, representations, targets
from wmlib.analysis.representations import (
    PART_NAMES,
    baseline_representations,
    horizon_representations,
    model_representations,
    select_utterances,
    stack_past,
    utterance_slices,
)
from wmlib.model import runs
from wmlib.model.checkpoints import list_checkpoints


@pytest.fixture(scope="module")
def tiny_models(tiny_tokens):
    return runs.train_book_models("tiny", progress=False)


@pytest.fixture(scope="module")
def probe_tokens(tiny_tokens):
    return select_utterances(tiny_tokens, per_group=3, seed=0)


def test_select_utterances_takes_whole_utterances_per_group(tiny_tokens, probe_tokens):
    labels = probe_tokens.labels
    per_utterance = labels.groupby("utt_id").size()
    full = tiny_tokens.labels.groupby("utt_id").size()
    assert (per_utterance == full[per_utterance.index]).all()  # whole utterances
    groups = labels.groupby("utt_id").first().groupby(["source", labels.groupby("utt_id").first()["split"]
                                                       .eq("heldout")]).size()
    assert groups.max() <= 3 and len(groups) == 5  # speech, music (each in and held out), noise
    again = select_utterances(tiny_tokens, per_group=3, seed=0)
    assert again.labels["utt_id"].tolist() == labels["utt_id"].tolist()
    assert select_utterances(tiny_tokens, 3, seed=1).labels["utt_id"].tolist() != labels["utt_id"].tolist()


def test_stacked_baselines_look_back_within_the_utterance(probe_tokens):
    flat = probe_tokens.mel.reshape(len(probe_tokens.mel), -1)
    stacked = stack_past(flat, probe_tokens.labels, context=3)
    size = flat.shape[1]
    for _, rows in utterance_slices(probe_tokens.labels)[:3]:
        t = rows.start + 5
        assert np.array_equal(stacked[t, 2 * size:], flat[t])  # the token itself last
        assert np.array_equal(stacked[t, :size], flat[t - 2])
        assert np.array_equal(stacked[rows.start, :size], flat[rows.start])  # no past: the first token repeated
    base = baseline_representations(probe_tokens)
    assert base["log-mel"].shape == (len(flat), 4 * size) and base["MFCC"].shape == (len(flat), 4 * 20 * 4)


def test_every_part_of_every_model_and_the_cache(tiny_models, probe_tokens):
    for name in ("transformer-contrastive", "rssm-contrastive", "masked-autoencoder"):
        first = model_representations(tiny_models[name], probe_tokens, "tiny")
        dynamics = first.info["dynamics"] if first.info["architecture"] == "world_model" else None
        expected = set(PART_NAMES[dynamics].values()) if dynamics else {"layer_1", "layer_2"}
        assert set(first.parts) == expected, name
        for part, array in first.parts.items():
            assert array.shape[0] == len(probe_tokens.mel) and np.isfinite(array).all(), (name, part)
        again = model_representations(tiny_models[name], probe_tokens, "tiny")
        fresh = model_representations(tiny_models[name], probe_tokens, "tiny", cache=False)
        for part in first.parts:
            assert np.array_equal(first[part], again[part])
            np.testing.assert_allclose(first[part], fresh[part], atol=1e-5)
    with pytest.raises(KeyError, match="no part 'stochastic'"):
        first["stochastic"]


def test_long_utterances_are_read_in_windows_of_the_training_length(tiny_models, probe_tokens):
    directory = tiny_models["transformer-contrastive"]
    context = representations.model_context(directory)
    assert context == runs.run_config("transformer-contrastive", "tiny").seq_len
    lengths = [rows.stop - rows.start for _, rows in utterance_slices(probe_tokens.labels)]
    assert max(lengths) > context  # the tiny corpus has utterances longer than the window
    parts = model_representations(directory, probe_tokens, "tiny")
    for _, rows in utterance_slices(probe_tokens.labels):
        if rows.stop - rows.start > context:  # the first window's tokens equal a run over that window alone
            from wmlib.model.checkpoints import load_model

            model, config = load_model(directory)
            alone = representations.named_parts(model, config, probe_tokens.mel[rows][:context], None)
            np.testing.assert_allclose(parts["feature"][rows][:context], alone["feature"], atol=1e-5)
            break


def test_one_token_ahead_the_imagined_state_is_the_observed_context(tiny_models, probe_tokens):
    directory = tiny_models["transformer-contrastive"]
    states = horizon_representations(directory, probe_tokens, horizons=(1, 3))
    context = model_representations(directory, probe_tokens, "tiny")["context"]
    window = representations.model_context(directory)
    for _, rows in utterance_slices(probe_tokens.labels):
        inside = np.arange(rows.start + 1, min(rows.stop, rows.start + window))  # the first window, past token 0
        np.testing.assert_allclose(states[1][inside], context[inside], atol=1e-4)
        assert np.isnan(states[3][rows.start : rows.start + 3]).all()  # no state without 3 tokens before
        assert np.isfinite(states[3][rows.start + 3 : rows.start + window]).all()


def test_the_study_runs_and_tabulates(tiny_models, tiny_tokens):
    study = probing.ProbeStudy.load("tiny")
    assert {"random init", "log-mel", "MFCC", "masked autoencoder", "world model: feature"} <= set(study.features)
    results = study.run(["energy", "phone_class"], rows=["log-mel", "world model: feature"], seeds=(0,),
                        supervised=True, control=["phone_class"], mdl=["phone_class"])
    table = probing.cpc_table(results)
    assert list(table.index[:3]) == ["log-mel", "world model: feature", "supervised"]
    assert "majority" in table.index and "chance" in table.index
    assert "energy (R²)" in probing.cpc_table(results, "held-out").columns
    cell = table.loc["log-mel", "energy (R²)"]
    value, low, high = (float(x) for x in cell.replace("[", "").replace("]", "").replace(",", "").split())
    assert low <= value <= high
    paired = table.loc["world model: feature − better baseline", "energy (R²)"]
    assert paired.endswith("vs log-mel") and paired.count("[") == 1  # the paired difference, not two intervals
    assert set(probing.selectivity(results)["target"]) == {"phone_class"}
    assert len(probing.verdicts(results, "world model: feature", ["energy", "phone_class"])) == 2
    matrix = probing.confusion(study, "log-mel", "phone_class")
    np.testing.assert_allclose(matrix.sum(axis=1).to_numpy(), 1.0)


def test_probes_give_the_same_numbers_however_many_run_at_once(tiny_models, monkeypatch):
    study = probing.ProbeStudy.load("tiny")
    tables = []
    for jobs in (1, 2):
        monkeypatch.setattr(probing, "PROBE_JOBS", jobs)
        tables.append(study.run(["phone_class", "energy"], rows=["MFCC", "world model: feature"], seeds=(0, 1),
                                supervised=False))
    columns = ["representation", "target", "setting", "metric", "value", "low", "high"]
    assert tables[0][columns].equals(tables[1][columns])

    @targets.register_target("loud", "classification", "louder than -30 dB")  # known to this process only
    def loud(labels):
        return (labels["energy_db"] > -30).to_numpy(), np.ones(len(labels), bool)

    try:  # the worker processes receive the target itself, not its name
        table = study.run(["loud"], rows=["MFCC"], seeds=(0,), supervised=False)
        assert set(table["target"]) == {"loud"} and (table["setting"] == "in-distribution").any()
    finally:
        targets.TARGETS.pop("loud")
    training = probing.along_training(study, ["energy"])
    steps = [step for step, _ in list_checkpoints(tiny_models[runs.DEFAULT_MODEL])]
    assert sorted(training["step"].unique()) == steps and steps[0] == 0
    horizon = probing.along_horizon(study, ["source"], horizons=(1, 2))
    assert set(horizon["horizon"]) == {1, 2}
    assert set(horizon["representation"]) == {"imagined", "observed at t-h", "log-mel at t-h"}
