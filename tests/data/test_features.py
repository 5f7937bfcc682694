"""Features and per-token labels, checked against the audio rather than against themselves."""
import librosa
import numpy as np
import pandas as pd
import pytest

from wmlib.data.features import (
    FeatureConfig,
    TokenSet,
    energy_db,
    from_tokens,
    log_mel,
    speech_f0,
    to_tokens,
    token_count,
    tokens_to_audio,
)

CONFIG = FeatureConfig()


def test_token_geometry():
    assert CONFIG.hop_length == 160 and CONFIG.win_length == 400 and CONFIG.token_samples == 640
    assert CONFIG.tokens_per_second == 25
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    tokens = to_tokens(log_mel(audio))
    assert tokens.shape == (25, 64, 4)
    assert token_count(16000 + 639) == 25 and token_count(16000 + 640) == 26


def test_tokens_are_consecutive_frames():
    mel = np.arange(64 * 10, dtype=np.float32).reshape(64, 10)
    tokens = to_tokens(mel)
    assert tokens.shape == (2, 64, 4)  # the 2 leftover frames are dropped
    np.testing.assert_array_equal(tokens[1], mel[:, 4:8])


def test_mel_peak_follows_a_sine():
    t = np.arange(16000) / 16000
    for frequency in (300.0, 1000.0, 4000.0):
        mel = log_mel((0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32))
        centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=0, fmax=8000)[1:-1]
        peak = centres[np.argmax(mel[:, 50])]
        assert abs(np.log2(peak / frequency)) < 0.2, (frequency, peak)


def test_energy_token_boundary():
    """A tone that starts exactly at token 10 raises the energy of token 10, not of token 9."""
    audio = np.zeros(640 * 20, dtype=np.float32)
    audio[640 * 10:] = 0.1 * np.sin(2 * np.pi * 440 * np.arange(640 * 10) / 16000)
    energy = energy_db(audio, 20)
    assert energy[9] == pytest.approx(-100, abs=1e-3)
    assert energy[10] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.1)


def test_speech_f0_on_a_harmonic_tone():
    t = np.arange(16000) / 16000
    tone = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 6)).astype(np.float32)
    f0, voiced = speech_f0(tone, 25)
    assert voiced[2:-2].all()
    assert np.nanmax(np.abs(1200 * np.log2(f0[2:-2] / 150))) < 50


def test_tokenset_roundtrip_without_pickle(tmp_path, tiny_tokens):
    part = tiny_tokens.select(tiny_tokens.labels["split"] == "test")
    part.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        assert "mel" in data.files
    loaded = TokenSet.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded.mel, part.mel)
    pd.testing.assert_frame_equal(loaded.labels, part.labels, check_dtype=False)


def test_labels_cover_every_token(tiny_corpus, tiny_tokens):
    labels = tiny_tokens.labels
    assert tiny_tokens.mel.shape[1:] == (64, 4) and np.isfinite(tiny_tokens.mel).all()
    for utt in tiny_corpus.utterances.itertuples():
        count = (labels["utt_id"] == utt.utt_id).sum()
        assert count == int(utt.duration_s * 16000) // 640, utt.utt_id
    speech = labels[labels["source"] == "speech"]
    assert speech["f0_estimated"].all() and (speech["domain"] == "real").any()
    assert ((speech["phone"] != "") == (speech["domain"] != "real")).all()  # real speech has no phone labels
    music = labels[labels["source"] == "music"]
    assert not music["f0_estimated"].any() and music.loc[music["domain"] != "real", "voiced"].mean() > 0.5
    assert not music.loc[music["domain"] == "real", "voiced"].any()  # polyphonic: no single F0
    assert set(labels["domain"]) == {"generated", "randomized", "real"}
    assert not labels.loc[labels["source"] == "noise", "voiced"].any()
    assert set(labels["split"]) == {"train", "valid", "test", "heldout"}


def test_music_pitch_agrees_with_an_independent_estimate(tiny_corpus, tiny_tokens):
    """On >= 95% of voiced music tokens, pYIN on the rendered audio is within 50 cents of the MIDI label."""
    labels = tiny_tokens.labels
    agree = []
    for utt_id in tiny_corpus.utterances.query("source == 'music' and domain == 'generated'")["utt_id"]:
        f0, _, _ = librosa.pyin(tiny_corpus.audio(utt_id), fmin=librosa.midi_to_hz(30),
                                fmax=librosa.midi_to_hz(100), sr=16000, frame_length=2048, hop_length=160,
                                resolution=0.2)  # 20-cent bins: 4x faster, well inside the 50-cent tolerance
        tokens = labels[(labels["utt_id"] == utt_id) & labels["voiced"]]
        for token in tokens.itertuples():
            frames = f0[4 * token.token: 4 * token.token + 4]  # frame j is centred on sample 160 j
            estimate = np.nanmedian(frames) if np.isfinite(frames).any() else np.nan
            agree.append(bool(np.isfinite(estimate) and abs(librosa.hz_to_midi(estimate) - token.midi_pitch) <= 0.5))
    assert len(agree) > 1000
    assert np.mean(agree) >= 0.95, f"only {np.mean(agree):.1%} of voiced music tokens agree within 50 cents"


def test_speech_f0_tracks_the_voices(tiny_tokens):
    """The estimated F0 separates the female and F0-shifted voices from the low male voices."""
    speech = tiny_tokens.labels.query("source == 'speech' and voiced")
    median = speech.groupby("voice")["f0_hz"].median()
    assert median["slt"] > 150 and median["kal"] < 130 and median["kal_high"] > median["kal"] + 30


def test_tokens_to_audio_keeps_the_spectrum():
    """Griffin-Lim from tokens gives audio whose tokens match the originals (pitch and loudness survive)."""
    config = FeatureConfig()
    time_s = np.arange(config.sample_rate) / config.sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * time_s) * (time_s < 0.6)  # a tone, then silence
    tokens = to_tokens(log_mel(tone.astype(np.float32), config), config)  # (25, 64, 4)
    audio = tokens_to_audio(tokens, config)
    assert audio.dtype == np.float32 and abs(len(audio) - len(tone)) <= config.hop_length * 4
    np.testing.assert_array_equal(from_tokens(tokens), log_mel(tone.astype(np.float32), config)[:, : 4 * len(tokens)])
    again = to_tokens(log_mel(audio, config), config)[: len(tokens)]
    peak_bin = tokens[2].mean(-1).argmax()
    assert abs(int(again[2].mean(-1).argmax()) - int(peak_bin)) <= 1  # the 440 Hz band stays the loudest
    assert again[20].max() < again[2].max() - 40  # and the silence stays silent
    with pytest.raises(AssertionError, match="tokens must be"):
        tokens_to_audio(np.zeros((3, 64)), config)
