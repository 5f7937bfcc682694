"""Interventions: the arithmetic of moving along a probe direction on a planted linear case, class directions, and
the RSSM's resyntheses (shapes, what is kept)."""
import numpy as np
import pytest
import torch

from wmlib.analysis import interventions
from wmlib.model.models import ModelConfig, build_model


def planted(seed: int = 0):
    """Latents whose first direction carries 'pitch' exactly (plus noise in other directions)."""
    rng = np.random.default_rng(seed)
    latents = rng.normal(size=(2000, 6))
    pitch = 60 + 5 * latents[:, 0] - 2 * latents[:, 3]
    energy = -30 + 4 * latents[:, 1]
    return latents, pitch, energy


def test_moving_along_a_probe_direction_changes_its_reading_by_the_step():
    latents, pitch, energy = planted()
    pitch_probe = interventions.fit_linear_probe(latents, pitch, alpha=1e-3)
    np.testing.assert_allclose(pitch_probe(latents), pitch, atol=1e-2)  # the planted relation is recovered
    direction = pitch_probe.direction("pitch", "semitones")
    moved = interventions.move(latents, direction, 4.0)
    np.testing.assert_allclose(pitch_probe(moved) - pitch_probe(latents), 4.0, atol=1e-6)
    energy_probe = interventions.fit_linear_probe(latents, energy, alpha=1e-3)
    np.testing.assert_allclose(energy_probe(moved), energy_probe(latents), atol=1e-2)  # orthogonal: untouched
    assert np.allclose(interventions.move(latents, direction, 0.0), latents)


def test_a_class_direction_moves_one_class_mean_onto_the_other():
    rng = np.random.default_rng(1)
    classes = np.array(["vowel"] * 50 + ["fricative"] * 50 + ["stop"] * 20)
    latents = rng.normal(size=(120, 4)) + np.where(classes[:, None] == "fricative", [3.0, 0, 0, 1.0], 0)
    direction = interventions.class_direction(latents, classes, "vowel", "fricative")
    moved = interventions.move(latents[classes == "vowel"], direction, 1.0)
    np.testing.assert_allclose(moved.mean(0), latents[classes == "fricative"].mean(0), atol=1e-9)
    assert direction.name == "vowel → fricative"


def test_mel_energy_counts_power():
    mel = np.full((2, 64, 4), -40.0)
    np.testing.assert_allclose(interventions.mel_energy_db(mel), -40.0)
    np.testing.assert_allclose(interventions.mel_energy_db(mel + 10.0), -30.0)


@pytest.fixture(scope="module")
def rssm():
    torch.manual_seed(0)
    return build_model(ModelConfig.preset("tiny", dynamics="rssm", objective="contrastive")).eval()


def test_resyntheses_keep_what_they_say_they_keep(rssm, tiny_tokens):
    mel = np.stack([tiny_tokens.mel[:12], tiny_tokens.mel[20:32]])
    base, resampled = interventions.resample_stochastic(rssm, mel, seed=0)
    assert base.shape == resampled.shape == mel.shape and not np.allclose(base, resampled)
    np.testing.assert_array_equal(resampled, interventions.resample_stochastic(rssm, mel, seed=0)[1])  # seeded
    base_again, shuffled = interventions.shuffle_timing(rssm, mel, seed=0)
    np.testing.assert_allclose(base_again, base, atol=1e-5)
    # keeping the order instead of shuffling it reproduces the observed decoding exactly
    with torch.no_grad():
        observed = rssm.observe(torch.as_tensor(mel), sample=False)
        rolled = interventions._rssm_roll(rssm, observed["deter"][:, 0], observed["stoch"])
    np.testing.assert_allclose(rolled.numpy(), observed["feature"].numpy(), atol=1e-5)
    own, swapped = interventions.swap_context(rssm, mel[::-1], mel, context=6)
    assert own.shape == swapped.shape == (2, 6, 64, 4) and not np.allclose(own, swapped)
    with pytest.raises(ValueError, match="needs the RSSM"):
        interventions.resample_stochastic(build_model(ModelConfig.preset("tiny", dynamics="transformer")), mel)


def test_the_causal_test_sees_a_direction_the_model_uses_and_not_a_random_one(tiny_tokens):
    """Decoder-free: the direction that raises the model's own expected next pitch fastest (its gradient, planted
    here by autograd) shifts the prediction more than a random direction of the same norm, paired over windows."""
    from wmlib.analysis.dreams import CandidateBank
    from wmlib.model.evaluate import Windows

    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", dynamics="transformer", objective="contrastive")).eval()
    bank = CandidateBank.from_tokens(model, tiny_tokens, size=1024)
    windows = Windows.from_tokens(tiny_tokens, "test", 24, stride=4, where={"source": "music"})
    assert len(windows.mel) >= 10
    values, mask = interventions.bank_values(bank, "midi_pitch", "voiced music")
    assert mask.any() and np.isfinite(values[mask]).all()
    states = torch.tensor(interventions.observe_features(model, windows.mel)[:, 8::4], requires_grad=True)
    keys, target = bank.keys[torch.as_tensor(np.flatnonzero(mask))], torch.as_tensor(values[mask]).float()
    prediction = torch.nn.functional.normalize(model.prediction_heads[0](states), dim=-1)
    expected = torch.softmax(prediction @ keys.T / model.config.temperature, -1) @ target
    expected.sum().backward()
    gradient = states.grad.reshape(-1, states.shape[-1]).mean(0).numpy()
    direction = interventions.Direction(gradient / np.linalg.norm(gradient), "pitch", "units")
    before = interventions.expected_next(model, states.detach().numpy(), bank, values, mask)
    np.testing.assert_allclose(before, expected.detach().numpy(), rtol=1e-4)  # the same expectation, by hand
    table, shifts = interventions.causal_table(model, {"pitch": windows}, {"pitch": direction}, {"pitch": 0.5}, bank,
                                               n_boot=200)
    row = table.iloc[0]
    assert row["shift"] > 0 and row["verdict"] == "beats", row
    assert row["conclusion"] == "the model uses the pitch direction to predict the next token's pitch"
    moved, random, groups = shifts["pitch"]
    assert len(moved) == len(random) == len(groups) == len(windows.mel)
    control = interventions.random_direction(direction, seed=3)
    assert np.isclose(np.linalg.norm(control.vector), 1.0) and abs(control.vector @ direction.vector) < 0.5
    rssm = build_model(ModelConfig.preset("tiny", dynamics="rssm", objective="contrastive"))
    with pytest.raises(ValueError, match="contrastive transformer"):
        interventions.expected_next(rssm, states.detach().numpy(), bank, values, mask)
