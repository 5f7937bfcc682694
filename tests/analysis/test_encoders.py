"""The encoder registry, the world model as a HEAR module (hearvalidator's checks, run here without TensorFlow),
broken encoders reported rather than fatal, and the similarity study end to end on the tiny profile."""
import numpy as np
import pytest
import torch

from wmlib.analysis import encoders, rsa, similarity
from wmlib.analysis.encoders import EncoderUnavailable, load_encoder, load_encoders, register_encoder
from wmlib.analysis.hear_api import HearModel, get_scene_embeddings, get_timestamp_embeddings, load_hear_module
from wmlib.model import runs


@pytest.fixture(scope="module")
def tiny_models(tiny_tokens):
    return runs.train_book_models("tiny", progress=False)


@pytest.fixture
def tiny_profile(monkeypatch):
    monkeypatch.setenv("WMLIB_PROFILE", "tiny")


class Broken(HearModel):
    name, layers, timestamp_embedding_size, scene_embedding_size = "broken", ("embedding",), 4, 4

    def layer_embeddings(self, audio):
        raise RuntimeError("this encoder is broken on purpose")


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(encoders, "ENCODERS", dict(encoders.ENCODERS))
    def cannot_load(profile):
        raise OSError("no weights")

    register_encoder("cannot load", "fails in its factory")(cannot_load)
    register_encoder("broken", "fails when it runs")(lambda profile: Broken())


def test_log_mel_and_mfcc_layers_on_the_token_grid():
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 16_000)).astype(np.float32)  # 1 s: 25 tokens
    for encoder in (load_encoder("log-mel"), load_encoder("MFCC")):
        layers, timestamps = encoder.layer_embeddings(audio)
        assert set(layers) == set(encoder.layers) and timestamps.shape == (2, 25)
        assert layers[encoder.layers[0]].shape == (2, 25, encoder.timestamp_embedding_size)
        assert np.allclose(timestamps[0, :2], [20, 60])  # token centres, ms
        stacked, token = layers["stacked"][0], layers["token"][0]
        assert np.allclose(stacked[5, -token.shape[1]:], token[5]) and np.allclose(stacked[5, :token.shape[1]],
                                                                                    token[2])


def test_unknown_and_broken_encoders_are_reported_with_their_reason(registered):
    loaded, failed = load_encoders(["log-mel", "nonsense", "cannot load", "hear:no_such_module"])
    assert list(loaded) == ["log-mel"]
    reasons = dict(zip(failed["encoder"], failed["reason"]))
    assert "unknown encoder" in reasons["nonsense"] and "no weights" in reasons["cannot load"]
    assert "No module named" in reasons["hear:no_such_module"]
    with pytest.raises(EncoderUnavailable, match="registered"):
        load_encoder("nonsense")


def test_world_model_is_a_valid_hear_module(tiny_models, tiny_profile):
    """The checks of hearvalidator 2021.0.2 (torch path), which cannot be installed here (it imports TensorFlow)."""
    import wmlib.hear as module

    model = module.load_model()
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16000, 22050, 44100, 48000)
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    audio = torch.rand(16, 32_000) * 2 - 1  # hearvalidator: 16 sounds of 2 s of white noise
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and embeddings.shape[0] == 16
    assert embeddings.shape[:2] == timestamps.shape and embeddings.shape[2] == model.timestamp_embedding_size
    steps = torch.diff(timestamps)
    assert torch.all(torch.abs(steps - steps.float().mean()) < 1e-3) and steps.float().mean() <= 50.0
    assert timestamps[0, 0] == pytest.approx(20.0) and timestamps.shape[1] == 50  # 40 ms tokens, centres in ms
    scene = module.get_scene_embeddings(torch.rand(8, int(3.74 * 16_000)) * 2 - 1, model)
    assert scene.dtype == torch.float32 and scene.shape == (8, model.scene_embedding_size)
    # the adapter for any installed HEAR module takes it like any other
    adapter = load_hear_module("wmlib.hear")
    e, t = get_timestamp_embeddings(audio[:2], adapter)
    assert torch.allclose(e, embeddings[:2], atol=1e-5) and torch.allclose(t.float(), timestamps[:2])
    assert get_scene_embeddings(audio[:2], adapter).shape == (2, model.scene_embedding_size)


def test_permuted_weights_keep_the_values_and_change_the_embeddings(tiny_models, tiny_profile):
    plain = load_encoder("world model")
    permuted = load_encoder("permuted weights")
    for (name, a), b in zip(plain.model.state_dict().items(), permuted.model.state_dict().values()):
        if a.numel() > 1:
            assert torch.equal(torch.sort(a.flatten())[0], torch.sort(b.flatten())[0]), name
    audio = np.random.default_rng(1).uniform(-0.3, 0.3, (1, 16_000)).astype(np.float32)
    assert not np.allclose(plain.layer_embeddings(audio)[0]["feature"], permuted.layer_embeddings(audio)[0]["feature"])


def test_the_study_on_the_tiny_profile(tiny_models, tiny_profile, registered):
    study = similarity.run_study("tiny", encoders=("world model", "random init", "log-mel", "broken", "nonsense"),
                                 n_boot=100, progress=False)
    assert set(study.failures["encoder"]) == {"broken", "nonsense"}
    assert "broken on purpose" in study.failures.set_index("encoder").loc["broken", "reason"]
    stimuli = study.stimuli
    assert len(stimuli) == 8 * 6 and (stimuli.labels["position"] >= rsa.WARMUP_TOKENS).all()
    assert set(study.labels["encoder"]) == {"world model", "random init", "log-mel"}
    assert set(study.labels["label"]) == set(rsa.LABEL_MODELS)
    finite = study.labels.dropna(subset=["low", "high"])
    assert ((finite["low"] <= finite["spearman"] + 1e-9) & (finite["spearman"] <= finite["high"] + 1e-9)).mean() > 0.8
    pairs = study.pairs
    assert np.allclose(pairs[pairs["first"] == pairs["second"]]["cka"], 1.0, atol=1e-4)
    assert set(study.training["step"]) >= {0, 20} and (study.training["seed"] == 1).any()
    assert {"seed 0", "noise ceiling"} <= set(study.seeds["first"])
    table = similarity.seed_table(study.seeds)
    assert table.index[0] == "the other seed" and "log-mel" in table.index
    assert table.loc["the other seed", "seed 0: CKA"] == table.loc["the other seed", "seed 1: CKA"]
    summary = rsa.stimulus_summary(stimuli)
    assert summary["stimuli"].sum() == len(stimuli) and summary["clips"].sum() == len(stimuli.clips)
    both = similarity.label_table(study)
    assert list(both.columns.levels[0]) == ["Spearman", "whitened"] and len(both) == 3
    assert both.loc["log-mel", ("Spearman", "pitch")] == pytest.approx(
        study.labels.set_index(["encoder", "label"]).loc[("log-mel", "pitch"), "spearman"])
    agreement = similarity.measure_agreement(study)
    assert agreement["n_pairs"] == 3 and all(abs(v) <= 1 for k, v in agreement.items() if k != "n_pairs"
                                             and np.isfinite(v))
    found = similarity.findings(study)
    assert len(found["labels"]) == len(rsa.LABEL_MODELS) and found["training"] and found["seeds"]
    again = similarity.run_study("tiny", encoders=("log-mel",), n_boot=100, progress=False)  # cached, same numbers
    assert np.allclose(again.labels["spearman"], study.labels.query("encoder == 'log-mel'")["spearman"])
