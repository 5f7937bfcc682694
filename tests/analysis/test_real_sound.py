"""The chapter "Real sound": its statistics on hand-made cases, its token choices and the ablation's training data."""
import numpy as np
import pandas as pd
import pytest

from wmlib.analysis import real_sound


def test_balanced_accuracy_by_hand():
    truth = np.array(["speech"] * 8 + ["music"] * 2)
    predicted = np.array(["speech"] * 6 + ["noise"] * 2 + ["music", "speech"])
    groups = np.arange(10)
    value, low, high = real_sound.balanced_accuracy_ci(truth, predicted, groups, n_boot=500)
    assert value == pytest.approx((6 / 8 + 1 / 2) / 2)  # mean recall over the true classes; "noise" is an error
    assert low <= value <= high
    assert real_sound.balanced_accuracy_ci(truth, truth, groups, n_boot=50)[:3] == (1.0, 1.0, 1.0)


def test_balanced_accuracy_resamples_whole_utterances():
    utterances = np.repeat(np.arange(40), 10)  # 40 utterances of 10 tokens, half speech, half music
    truth = np.where(utterances % 2 == 0, "speech", "music")
    predicted = truth.copy()
    predicted[utterances < 8] = "noise"  # 8 whole utterances wrong
    by_utterance = real_sound.balanced_accuracy_ci(truth, predicted, utterances, n_boot=400)
    by_token = real_sound.balanced_accuracy_ci(truth, predicted, np.arange(400), n_boot=400)
    assert by_utterance[0] == by_token[0] == pytest.approx(0.8)
    assert by_utterance[2] - by_utterance[1] > 2 * (by_token[2] - by_token[1])  # errors come in whole utterances


def test_source_probe_tokens_train_on_the_training_split_and_test_on_held_out_real(tiny_tokens):
    chosen = real_sound.source_probe_tokens(tiny_tokens, per_group=2)
    labels = chosen.labels
    assert set(labels["split"]) == {"train", "heldout"}
    held = labels[labels["split"] == "heldout"]
    assert set(held["domain"]) == {"real"}
    every = tiny_tokens.labels
    assert len(held) == ((every["split"] == "heldout") & (every["domain"] == "real")).sum()
    train = labels[labels["split"] == "train"]
    assert train.groupby(["domain", "source"])["utt_id"].nunique().le(2).all()
    assert set(train["domain"]) == {"generated", "randomized", "real"}


def test_source_transfer_finds_a_planted_source_signal(tiny_tokens):
    chosen = real_sound.source_probe_tokens(tiny_tokens, per_group=3)
    labels = chosen.labels
    rng = np.random.default_rng(0)
    codes = labels["source"].map({"speech": 0, "music": 1, "noise": 2}).to_numpy()
    planted = np.eye(3)[codes] * 3 + rng.normal(size=(len(labels), 3))
    noise = rng.normal(size=(len(labels), 3))
    table = real_sound.source_transfer({"planted": planted, "noise": noise}, labels, n_boot=200)
    assert table.loc["planted", "balanced accuracy"] > 0.9
    assert table.loc["noise", "balanced accuracy"] < 0.7
    assert table.loc["planted", "low"] <= table.loc["planted", "balanced accuracy"] <= table.loc["planted", "high"]


def test_the_verdict_table_pairs_the_model_with_the_strongest_baseline_of_each_set():
    from wmlib.model.evaluate import PER_QUERY, verdict_table

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 20)
    rows, store = [], {}
    for set_name, levels in (("speech", (0.3, 0.4, 0.6)), ("music", (0.6, 0.5, 0.4))):
        for method, level in zip(("copy last token", "linear AR (4 tokens)", "model"), levels):
            hits = rng.uniform(size=groups.size) < level
            rows.append({"set": set_name, "method": method, "horizon": 1, "top1": hits.mean(), "top1_low": 0.0,
                         "top1_high": 1.0})
            store[set_name, method, 1] = {"top1": hits, "top5": hits, "groups": groups}
    table = pd.DataFrame(rows)
    table.attrs[PER_QUERY] = store
    verdicts = verdict_table(table, "model")
    assert verdicts.loc[("speech", 1), "strongest baseline"] == "linear AR (4 tokens)"
    assert verdicts.loc[("speech", 1), "verdict"] == "beats"
    assert verdicts.loc[("music", 1), "strongest baseline"] == "copy last token"
    assert verdicts.loc[("music", 1), "verdict"] == "loses to"


def test_the_ablation_trains_on_fewer_domains(tiny_tokens):
    from wmlib.model import runs
    from wmlib.model.train import TokenWindows

    clean = runs.run_config("clean-generated", "tiny")
    randomized = runs.run_config("randomized-generated", "tiny")
    default = runs.run_config(runs.DEFAULT_MODEL, "tiny")
    assert clean.domains == ("generated",) and randomized.domains == ("generated", "randomized")
    assert set(default.domains) == {"generated", "randomized", "real"}
    assert clean.steps == randomized.steps == runs.COMPARISON_STEPS["tiny"]
    assert clean.model_config() == default.model_config()
    windows = TokenWindows(tiny_tokens, 8, "train", clean.domains)
    domains = tiny_tokens.labels.drop_duplicates("utt_id").set_index("utt_id")["domain"]
    assert set(domains[np.unique(windows.utt_id)]) == {"generated"}
    assert len(TokenWindows(tiny_tokens, 8, "train", default.domains)) > len(windows)


def test_evaluation_windows_come_from_their_set_only(tiny_tokens):
    from wmlib.model.evaluate import Windows

    table = tiny_tokens.labels.drop_duplicates("utt_id").set_index("utt_id")
    for name, (split, where) in real_sound.EVALUATION_SETS.items():
        windows = Windows.from_tokens(tiny_tokens, split, 8, where=where)
        chosen = table.loc[np.unique(windows.utt_ids)]
        assert (chosen["split"] == split).all(), name
        for column, value in where.items():
            assert chosen[column].isin(value if isinstance(value, list) else [value]).all(), name
    # the telephone prompts and the spoken words of the held-out speakers are separate sets
    speech = {name: set(table.loc[np.unique(Windows.from_tokens(tiny_tokens, "heldout", 8, where=where).utt_ids),
                                  "voice"]) for name, (_, where) in real_sound.EVALUATION_SETS.items()}
    assert speech["real speech (held out)"] == {"ru_ivrvoice", "it_menardi"}
    assert speech["real words (held out)"] == {"kt_ru", "kt_en"}
    with pytest.raises(AssertionError, match="where"):
        Windows.from_tokens(tiny_tokens, "test", 8, where={"domain": "nowhere"})


def test_one_recording_set_per_held_out_real_speaker_and_track(tiny_corpus, tiny_tokens):
    from wmlib.data.profiles import PROFILES
    from wmlib.model.evaluate import Windows

    sets = real_sound.recording_sets(tiny_corpus)
    assert {name.split(" (")[0] for name in sets} == set(PROFILES["tiny"].heldout_real)
    for name, (split, where) in sets.items():
        windows = Windows.from_tokens(tiny_tokens, split, 8, where=where)
        voices = tiny_tokens.labels.drop_duplicates("utt_id").set_index("utt_id").loc[windows.utt_ids, "voice"]
        assert set(voices) == {where["voice"]}, name


def test_retrieval_along_training_labels_each_checkpoint_with_its_step(tiny_tokens):
    from wmlib.model import runs
    from wmlib.model.checkpoints import list_checkpoints

    run = runs.train_book_models("tiny", progress=False)[runs.DEFAULT_MODEL]
    table = real_sound.retrieval_along_training("tiny", run, min_step=20, tokens=tiny_tokens, max_windows=4)
    steps = [step for step, _ in list_checkpoints(run) if step >= 20]
    curve = table[table["step"].notna()]
    assert sorted(curve["step"].unique()) == steps
    assert (curve["method"] == "step " + curve["step"].astype(int).astype(str)).all()
    assert set(table.loc[table["step"].isna(), "method"]) == {"copy last token", "linear AR (4 tokens)"}
