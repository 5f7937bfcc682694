"""Dreams: shapes, the context boundary, determinism per seed, temperature 0 = the mode, the baselines' roll-outs,
the coherence measures on planted cases, and clear errors for bad requests."""
import numpy as np
import pytest
import torch

from wmlib.analysis import coherence
from wmlib.analysis.coherence import DreamStudy, beyond_copying, frechet_distance
from wmlib.analysis.dreams import (
    CandidateBank,
    DreamError,
    _transformer_states,
    copy_last_rollout,
    dream,
    dream_audio,
    linear_rollout,
)
from wmlib.model.evaluate import LinearAutoregression, Windows
from wmlib.model.models import ModelConfig, build_model


def tiny_model(dynamics: str, objective: str = "contrastive", seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig.preset("tiny", dynamics=dynamics, objective=objective)).eval()


@pytest.fixture(scope="module")
def transformer():
    return tiny_model("transformer")


@pytest.fixture(scope="module")
def bank(transformer, tiny_tokens):
    return CandidateBank.from_tokens(transformer, tiny_tokens, size=600, seed=0)


@pytest.fixture(scope="module")
def contexts(tiny_tokens):
    return Windows.from_tokens(tiny_tokens, "test", 24, max_windows=3).mel[:, :16]  # (3, 16, M, F)


def test_bank_is_drawn_from_the_training_split_only(bank):
    assert len(bank) == 600 and set(bank.labels["split"]) == {"train"}
    assert bank.keys.shape == (600, 32) and torch.allclose(bank.keys.norm(dim=-1), torch.ones(600))


@pytest.mark.parametrize("dynamics", ["transformer", "rssm"])
def test_dream_shapes_and_context_boundary(dynamics, transformer, bank, contexts):
    model = transformer if dynamics == "transformer" else tiny_model("rssm")
    dreams = dream(model, contexts, horizon=5, samples=2, bank=bank if dynamics == "transformer" else None)
    assert dreams.mel.shape == (3, 2, 5, 64, 4) and dreams.prediction.shape == (3, 2, 5, 32)
    assert dreams.feature.shape[:3] == (3, 2, 5) and np.isfinite(dreams.mel).all()
    sequence = dreams.sequence(1, 1)
    assert sequence.shape == (21, 64, 4)
    np.testing.assert_array_equal(sequence[:16], contexts[1])  # the context is kept as observed
    np.testing.assert_array_equal(sequence[16:], dreams.mel[1, 1])
    if dynamics == "transformer":  # a candidate dream is made of the bank's own tokens
        np.testing.assert_array_equal(dreams.mel[0, 0], bank.mel[dreams.picked[0, 0]])


@pytest.mark.parametrize("dynamics", ["transformer", "rssm"])
def test_same_seed_same_dream_and_samples_differ(dynamics, transformer, bank, contexts):
    model = transformer if dynamics == "transformer" else tiny_model("rssm")
    options = dict(horizon=6, temperature=1.0, samples=3, bank=bank if dynamics == "transformer" else None)
    first, again = dream(model, contexts, seed=4, **options), dream(model, contexts, seed=4, **options)
    np.testing.assert_array_equal(first.mel, again.mel)
    other = dream(model, contexts, seed=5, **options)
    assert not np.array_equal(first.mel, other.mel)
    assert not np.array_equal(first.mel[:, 0], first.mel[:, 1])  # samples of one context differ


def test_temperature_zero_is_the_mode(transformer, bank, contexts):
    rssm = tiny_model("rssm")
    modes = dream(rssm, contexts, horizon=5, temperature=0.0, samples=2)
    np.testing.assert_array_equal(modes.mel[:, 0], modes.mel[:, 1])
    with torch.no_grad():
        imagined = rssm.imagine(torch.as_tensor(contexts), 5, sample=False)  # the prior's mode, step by step
    np.testing.assert_allclose(modes.feature[:, 0], imagined["feature"].numpy(), atol=1e-5)
    # the transformer at temperature 0 takes the best-scoring candidate of its horizon-1 prediction
    best = dream(transformer, contexts, horizon=1, temperature=0.0, bank=bank)
    window = np.concatenate([contexts, contexts[:, :1]], 1)  # one token past the context, to ask for it
    prediction = transformer.predict_next_embeddings(torch.as_tensor(window), 1, positions=[15])[:, 0]  # (B, P)
    np.testing.assert_array_equal(best.picked[:, 0, 0], (prediction @ bank.keys.T).argmax(-1).numpy())


def test_decode_method_is_the_models_own_imagination(transformer, contexts):
    decoded = dream(transformer, contexts, horizon=4, method="decode")
    with torch.no_grad():
        imagined = transformer.imagine(torch.as_tensor(contexts), 4)
    np.testing.assert_allclose(decoded.feature[:, 0], imagined["feature"].numpy(), atol=1e-5)
    np.testing.assert_allclose(decoded.mel[:, 0], transformer.decode(imagined["feature"]).numpy(), atol=1e-4)


def test_cached_steps_equal_a_full_pass_and_the_window_slides(transformer, tiny_tokens):
    embeddings = transformer.encoder(torch.as_tensor(tiny_tokens.mel[:30])[None]).detach()
    with torch.no_grad():
        feed = _transformer_states(transformer.dynamics, window=100)
        feed(embeddings[:, :20])
        for i in range(20, 30):
            stepped = feed(embeddings[:, i:i + 1])
        np.testing.assert_allclose(stepped, transformer.dynamics._run(embeddings)[:, -1], atol=1e-5)
        feed = _transformer_states(transformer.dynamics, window=8)  # past the window: the last 8 only
        feed(embeddings[:, :20])
        np.testing.assert_allclose(feed(embeddings[:, 20:21]), transformer.dynamics._run(embeddings[:, 13:21])[:, -1],
                                   atol=1e-5)


def test_baseline_rollouts(tiny_tokens, contexts):
    copied = copy_last_rollout(contexts, 3)
    assert copied.shape == (3, 3, 64, 4) and (copied == contexts[:, -1:]).all()
    train = Windows.from_tokens(tiny_tokens, "train", 16, max_windows=40)
    autoregression = LinearAutoregression(order=4).fit(train, [1])
    rolled = linear_rollout(autoregression, contexts, 3)
    # step 1 is the one-step prediction; step 2 is the one-step prediction from a context ending in step 1
    first = autoregression.predict_mel(Windows(contexts, np.zeros(3)), 1, np.array([15]))[:, 0]
    np.testing.assert_allclose(rolled[:, 0], first, atol=1e-4)
    second_context = np.concatenate([contexts[:, -3:], first[:, None]], 1)
    second = autoregression.predict_mel(Windows(second_context, np.zeros(3)), 1, np.array([3]))[:, 0]
    np.testing.assert_allclose(rolled[:, 1], second, atol=1e-4)
    with pytest.raises(DreamError, match="needs 4 tokens"):
        linear_rollout(autoregression, contexts[:, :2], 3)


def test_bad_requests_are_clear_errors(transformer, bank, contexts):
    with pytest.raises(DreamError, match="at least one token"):
        dream(transformer, contexts, horizon=0, bank=bank)
    with pytest.raises(DreamError, match="at least one observed token"):
        dream(transformer, contexts[:, :0], horizon=3, bank=bank)
    with pytest.raises(DreamError, match="CandidateBank"):
        dream(transformer, contexts, horizon=3)
    with pytest.raises(DreamError, match="not one of this rssm"):
        dream(tiny_model("rssm"), contexts, horizon=3, method="candidates")
    with pytest.raises(DreamError, match="has none"):
        CandidateBank.from_tokens(tiny_model("transformer", "reconstruction"), None)
    with pytest.raises(DreamError, match="temperature"):
        dream(transformer, contexts, horizon=3, temperature=-1, bank=bank)


def test_dream_audio_errors_name_the_problem(tiny_tokens):
    from wmlib.model import runs

    audio = 0.5 * np.sin(np.arange(16_000) * 2 * np.pi * 220 / 16_000).astype(np.float32)  # 1 s
    with pytest.raises(runs.UnknownModelError, match="unknown model"):
        dream_audio(audio, 16_000, 0.5, 0.5, model="no-such-model", profile="tiny")
    with pytest.raises(DreamError, match="shorter than one token"):
        dream_audio(audio, 16_000, 0.5, 0.0, profile="tiny")
    runs.train_book_models("tiny", progress=False)  # found, not retrained, once the book's tests trained them
    with pytest.raises(DreamError, match="less than the 2.0 s of context"):
        dream_audio(audio, 16_000, 2.0, 0.5, profile="tiny")
    dreams, info = dream_audio(audio, 16_000, 0.5, 0.4, profile="tiny", samples=2)
    assert dreams.mel.shape[:3] == (1, 2, 10) and dreams.context.shape[1] == 12 and info["method"] == "candidates"


def test_sound_speed_and_the_temperature_criterion(transformer, bank, tiny_tokens):
    from wmlib.model.evaluate import flatten_tokens

    context = np.zeros((2, 3, 4, 2))
    still = np.zeros((2, 1, 5, 4, 2))
    assert np.allclose(coherence.sound_speed(context, still), 0)
    moving = still.copy()
    moving[:, :, ::2] = 10.0  # every step moves between 0 and 10 dB in every bin
    step = np.linalg.norm(flatten_tokens(np.full((4, 2), 10.0)) - flatten_tokens(np.zeros((4, 2))))
    assert np.allclose(coherence.sound_speed(context, moving), step)
    windows = Windows.from_tokens(tiny_tokens, "test", 24, where={"domain": "generated"}, max_windows=6)
    table = coherence.temperature_criterion(transformer, windows, 16, (0.0, 1.0, 5.0), bank)
    assert table["chosen"].sum() == 1 and table["real speed"].nunique() == 1
    assert table.loc[table["chosen"], "gap"].item() == table["gap"].min()
    assert (table["dream speed"] > 0).all() and np.isfinite(table["gap"]).all()


def test_melody_baselines_hold_and_walk():
    context = np.array([[60, np.nan, 62, 62, 64, 64], [np.nan] * 6, [67, 67, 67, 67, 67, 67]], dtype=float)
    held, walked = coherence.hold_and_walk(context, 50, np.random.default_rng(0))
    assert (held[0] == 64).all() and np.isnan(held[1]).all() and (held[2] == 67).all()
    assert walked[0, 0] in (62, 63, 64, 65, 66) and np.isnan(walked[1]).all()
    assert (walked[2] == 67).all()  # a context that never changes note: neither does its walk
    steps = np.abs(np.diff(walked[0]))
    assert set(steps) <= {0, 1, 2} and 0.2 < np.mean(steps > 0) < 0.8  # the context changed 2 times in 4


def test_frechet_distance_on_planted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, rng.normal(size=(4000, 3))) < 0.02
    shifted = rng.normal(size=(4000, 3)) + [2.0, 0.0, 0.0]  # mean moved by 2: distance 4
    assert frechet_distance(a, shifted) == pytest.approx(4.0, abs=0.15)
    wider = rng.normal(size=(4000, 3)) * [3.0, 1.0, 1.0]  # one variance 9: (3 - 1)^2 = 4
    assert frechet_distance(a, wider) == pytest.approx(4.0, abs=0.3)


def test_dream_study_measures_and_references(transformer, bank, tiny_tokens):
    test = Windows.from_tokens(tiny_tokens, "test", 24, where={"domain": "generated"})
    train = Windows.from_tokens(tiny_tokens, "train", 24, max_windows=60)
    study = DreamStudy(transformer, test, tiny_tokens, train, context=16, samples=2, bank=bank, temperatures=(1.0,))
    curves = study.horizon_curves(n_boot=50)
    assert set(curves["method"]) == {"dream (T=1)", "dream (T=0)", "copy last token", "linear AR rolled out"}
    assert sorted(curves["horizon"].unique()) == list(range(1, 9))
    assert ((curves["top1_low"] <= curves["top1"]) & (curves["top1"] <= curves["top1_high"])).all()
    copy = curves[curves["method"] == "copy last token"]
    assert (copy["mel_rmse_db"].diff().dropna() > -5).all()  # copying drifts away from the truth, not towards it
    assert isinstance(beyond_copying(curves), str)
    frechet = study.frechet_table(dims=6, n_boot=10).set_index(["space", "continuation"])["frechet"]
    assert (frechet > -1e-6).all()
    # segments measure order: real segments elsewhere in the same windows are closer to the continuation than its
    # own tokens shuffled into new segments
    assert frechet["log-mel", "real, other utterances"] < frechet["log-mel", "real, shuffled tokens"]
    durations = study.phone_durations()
    assert (durations["duration_ms"] % 40 == 0).all() and "truth" in set(durations["continuation"])
    melody = study.melody_table(n_boot=50).set_index("continuation")
    assert {"truth", "hold the last note", "random walk", "dream (T=1)"} <= set(melody.index)
    held = melody.loc["hold the last note"]
    assert held["in_key"] == held["in_register"] == 1.0 and held["note_changes_per_s"] == 0.0
    result = coherence.melody_difference(study.melody_table(n_boot=50), "truth", "hold the last note",
                                         "note_changes_per_s")
    assert result.difference == pytest.approx(melody.loc["truth", "note_changes_per_s"])  # same windows here
    probes = study.dream_probe_curves(train, targets=("source", "energy"), n_boot=50)
    assert {"observed truth", "copy last token", "dream (T=1)"} <= set(probes["method"])
    assert set(probes["metric"]) == {"accuracy", "mae_dB"}


def test_the_dream_command_writes_context_and_dream(tmp_path, tiny_tokens, capsys):
    import soundfile as sf

    from wmlib import cli
    from wmlib.model import runs

    runs.train_book_models("tiny", progress=False)
    audio = tmp_path / "tone.wav"
    sf.write(audio, (0.3 * np.sin(np.arange(22_050) * 2 * np.pi * 440 / 22_050)).astype(np.float32), 22_050)
    out = tmp_path / "dreamed.wav"
    status = cli.main(["dream", str(audio), "--profile", "tiny", "--context-seconds", "0.5", "--seconds", "0.4",
                       "--samples", "2", "--seed", "3", "-o", str(out)])
    assert status == 0, capsys.readouterr().err
    for path in (out, tmp_path / "dreamed-2.wav"):
        written, rate = sf.read(path)
        assert rate == 16_000 and abs(len(written) / rate - 0.9) < 0.05  # 12 + 10 tokens of 40 ms
    assert "12 tokens observed, 10 dreamed" in capsys.readouterr().out
    assert cli.main(["dream", str(audio), "--profile", "tiny", "--context-seconds", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # a note on the resampling, then the error: no traceback
    assert err[-1].startswith("error:") and "less than the 3.0 s of context" in err[-1]
    assert err[0].startswith("note:") and len(err) == 2
    assert cli.main(["dream", str(audio), "--profile", "tiny", "--seconds", "0"]) == 2
    assert "shorter than one token" in capsys.readouterr().err
    assert cli.main(["dream", str(audio), "--profile", "tiny", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_note_changes_are_compared_in_words_that_do_not_rank():
    from wmlib.model.bootstrap import PairedDifference

    assert coherence.note_change_words(PairedDifference(2.0, 1.5, 2.5), "the truth").startswith(
        "changes note more often than the truth")
    assert coherence.note_change_words(PairedDifference(-1.0, -1.5, -0.5), "x").startswith("changes note less often")
    assert "not distinguishable" in coherence.note_change_words(PairedDifference(0.1, -0.5, 0.6), "x")
