"""The book's named models: their settings, training them for the book, and replacing a stale run safely."""
import json

import pytest

from wmlib.data.profiles import data_root
from wmlib.model import runs
from wmlib.model.checkpoints import read_metrics
from wmlib.model.train import train


def test_run_configs():
    default = runs.run_config(runs.DEFAULT_MODEL, "tiny")
    comparison = runs.run_config("rssm-reconstruction", "tiny")
    assert default.preset == comparison.preset == "tiny"
    assert default.steps == runs.TRAINING["tiny"]["steps"] and comparison.steps == runs.COMPARISON_STEPS["tiny"]
    assert comparison.model_config().objective == "reconstruction" and comparison.model_config().dynamics == "rssm"
    assert {0, runs.COMPARISON_STEPS["tiny"]} <= set(default.keep_checkpoints_at)  # the controls the book reads
    assert runs.run_dir("rssm-contrastive", "tiny") == data_root() / "tiny" / "runs" / "rssm-contrastive"
    assert runs.equal_training_checkpoint("tiny") == runs.run_dir(runs.TWIN_MODEL, "tiny")
    for profile in runs.TRAINING:  # every named model builds under every profile; a profile regularises all alike
        for name in runs.MODELS:
            config = runs.run_config(name, profile)
            regularised = config.model_config().dropout == 0.1 and config.augment is not None
            plain = config.model_config().dropout == 0.0 and config.augment is None
            assert regularised if runs.REGULARISED[profile] else plain, (profile, name)
    assert runs.REGULARISED["large"] and not runs.REGULARISED["default"]  # long schedules only (bench/README.md)
    mine = runs.custom_run_config("mine", "tiny", {"dropout": 0.1}, augment={})
    assert mine.model_config().dropout == 0.1 and mine.augment is not None


def test_every_model_compared_at_equal_training_ends_the_same_schedule():
    """Same steps *and* schedule: no row of an "equal training" table is a checkpoint in the middle of a longer
    schedule, under every profile; the twin differs from the default model in its schedule only."""
    fields = ("steps", "stop_at", "batch_size", "seq_len", "lr", "warmup", "schedule", "min_lr_fraction",
              "weight_decay", "augment")
    for profile in runs.TRAINING:
        schedules = {name: repr(tuple(getattr(runs.run_config(name, profile), field) for field in fields))
                     for name in runs.EQUAL_TRAINING}
        assert len(set(schedules.values())) == 1, (profile, schedules)
        twin, default = runs.run_config(runs.TWIN_MODEL, profile), runs.run_config(runs.DEFAULT_MODEL, profile)
        assert twin.steps == runs.COMPARISON_STEPS[profile] and twin.stop_at is None
        assert twin.model_config() == default.model_config() and twin.seed == default.seed
        assert twin.domains == default.domains
        assert str(runs.equal_training_checkpoint(profile)).endswith(runs.TWIN_MODEL)
    assert runs.TWIN_MODEL in runs.book_models() and set(runs.EQUAL_TRAINING) <= set(runs.book_models())
    assert "250 steps of 16 windows, 100-step warm-up" in runs.schedule(runs.TWIN_MODEL, "default")


def test_book_models_replace_a_stale_run_and_lose_nothing(tmp_path, monkeypatch, tiny_tokens):
    """A run left by other settings is renamed, not deleted, and the model is trained again in its place."""
    (tmp_path / "tiny").mkdir()
    for item in (data_root() / "tiny").iterdir():  # the tiny corpus and tokens, without the runs
        if item.name != "runs":
            (tmp_path / "tiny" / item.name).symlink_to(item)
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path))
    monkeypatch.setattr(runs, "BOOK_MODELS", ("rssm-contrastive",))
    monkeypatch.setattr(runs, "CONTROL_MODELS", ())
    monkeypatch.setattr(runs, "ABLATION_MODELS", ())
    monkeypatch.setattr(runs, "SEED_MODELS", {})
    monkeypatch.setattr(runs, "book_models", lambda: ("rssm-contrastive",))
    stale = train(runs.run_config("rssm-contrastive", "tiny", lr=0.5, steps=2), progress=False)
    with pytest.warns(UserWarning, match="trained again"):
        found = runs.train_book_models("tiny", progress=False)
    assert found == {"rssm-contrastive": stale}
    kept = list((tmp_path / "tiny" / "runs").glob("rssm-contrastive.replaced-*"))
    assert len(kept) == 1 and json.loads((kept[0] / "config.json").read_text())["train"]["lr"] == 0.5
    assert read_metrics(stale)["step"].iloc[-1] == runs.COMPARISON_STEPS["tiny"]
    assert runs.train_book_models("tiny", progress=False) == found  # trained: found, not retrained
    summary = runs.training_summary("tiny")
    assert summary.loc["rssm-contrastive", "steps"] == runs.COMPARISON_STEPS["tiny"]
    assert summary.loc["rssm-contrastive", "tokens/s"] > 0
