"""Audio of one's own through a model: ``wmlib.encode`` and ``python -m wmlib encode`` on a minute of audio, and
every kind of bad input answered with one line and exit status 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wmlib import cli
from wmlib.data.audio import AudioConversionWarning, AudioError
from wmlib.model.checkpoints import save_weights
from wmlib.model.encode import Encoding, audio_tokens, encode
from wmlib.model.models import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[2]
RATE = 16_000


def a_minute(rate: int = RATE, channels: int = 1, seconds: float = 60.0) -> np.ndarray:
    """A gliding tone over noise, ``(samples,)`` or ``(samples, channels)``."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * (200 + 100 * np.sin(0.5 * t)) * t) + 0.01 * rng.standard_normal(len(t))
    return mono.astype(np.float32) if channels == 1 else np.stack([mono] * channels, 1).astype(np.float32)


def make_run(directory: Path, seq_len: int | None = None, **overrides) -> Path:
    """A run directory holding an untrained tiny model (the plumbing is what is tested here), trained on windows
    of ``seq_len`` tokens as its config.json says (none: no training section)."""
    config = ModelConfig.preset("tiny", **overrides)
    torch.manual_seed(0)
    save_weights(directory / "model.safetensors", build_model(config), config, step=0)
    record = {"model": config.to_dict()} | ({"train": {"seq_len": seq_len}} if seq_len else {})
    (directory / "config.json").write_text(json.dumps(record))
    return directory


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "tiny-transformer", dynamics="transformer")


@pytest.mark.parametrize("overrides", [{"dynamics": "transformer"}, {"dynamics": "rssm"},
                                       {"architecture": "masked_autoencoder"}])
def test_encode_a_minute(overrides, tmp_path):
    """60 s (1,500 tokens, past the tiny transformer's max_len of 128): one row per token in every part, the
    timestamps at token centres, the same latents as the model's own ``features`` of the same tokens."""
    run = make_run(tmp_path / "run", **overrides)
    audio = a_minute()
    encoding = encode(audio, RATE, model=str(run))
    assert np.allclose(encoding.timestamps_ms, 20.0 + 40.0 * np.arange(1500))
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", **overrides)).eval()
    expected = model.features(torch.as_tensor(audio_tokens(audio))[None])
    assert set(encoding.latents) <= set(expected) and "embedding" in encoding.latents
    if overrides.get("architecture") != "masked_autoencoder":  # every world model: the parts the README names
        assert {"embedding", "feature", "prior_feature", "prior"} <= set(encoding.latents)
        assert ("deter" in encoding.latents) == (overrides["dynamics"] == "rssm")  # the transformer's is its feature
    for part, latent in encoding.latents.items():
        assert latent.shape == (1500, expected[part].shape[-1]) and np.isfinite(latent).all()
        np.testing.assert_allclose(latent, expected[part][0].numpy(), atol=1e-5)
    assert encoding.info["duration_s"] == pytest.approx(60.0) and encoding.info["step"] == 0
    saved = Encoding.load(encoding.save(tmp_path / "out.npz"))
    assert saved.info == encoding.info and saved.latents.keys() == encoding.latents.keys()


@pytest.mark.parametrize("overrides", [{"dynamics": "transformer"}, {"architecture": "masked_autoencoder"},
                                       {"dynamics": "rssm"}])
def test_encode_reads_windows_of_the_training_length(overrides, tmp_path):
    """By default a recording is read in windows of the length the model was trained on; ``context`` overrides it
    within the positions the model has; the RSSM reads everything at once."""
    run = make_run(tmp_path / "run", seq_len=16, **overrides)
    audio = a_minute(seconds=4.0)  # 100 tokens
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", **overrides)).eval()
    tokens = torch.as_tensor(audio_tokens(audio))[None]
    rssm = overrides.get("dynamics") == "rssm"
    for context, expected_context in ((None, 16), (40, 40)):
        encoding = encode(audio, RATE, model=str(run), context=context)
        assert encoding.info["context_tokens"] == (None if rssm else expected_context)
        expected = model.features(tokens, context=None if rssm else expected_context)
        np.testing.assert_allclose(encoding.latents["embedding"], expected["embedding"][0].numpy(), atol=1e-5)
        key = "feature" if "feature" in encoding.latents else "layer_1"
        np.testing.assert_allclose(encoding.latents[key], expected[key][0].numpy(), atol=1e-5)
    if not rssm:  # the window makes a difference (all 100 tokens at once differ), and one too long is refused
        whole = model.features(tokens)
        assert not np.allclose(encoding.latents[key], whole[key][0].numpy(), atol=1e-5)
        with pytest.raises(ValueError, match="out of range"):
            encode(audio, RATE, model=str(run), context=1000)


def test_encode_converts_channels_and_rate_with_a_warning(transformer_run):
    with pytest.warns(AudioConversionWarning) as caught:
        encoding = encode(a_minute(44_100, channels=2, seconds=2.0), 44_100, model=str(transformer_run))
    messages = " ".join(str(w.message) for w in caught)
    assert "channels averaged to mono" in messages and "resampled from 44100 Hz" in messages
    assert len(encoding.timestamps_ms) == 50


def write(path: Path, audio, rate=RATE, subtype="PCM_16") -> Path:
    sf.write(path, audio, rate, subtype=subtype)
    return path


BAD_INPUTS = {
    "missing file": (lambda d: d / "nowhere.wav", "no such file"),
    "corrupt": (lambda d: (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 50) and d / "corrupt.wav",
                "cannot be decoded"),
    "empty": (lambda d: write(d / "empty.wav", np.zeros(0, np.float32)), "empty"),
    "silent": (lambda d: write(d / "silent.wav", np.zeros(RATE, np.float32)), "silence"),
    "NaN": (lambda d: write(d / "nan.wav", np.full(RATE, np.nan, np.float32), subtype="FLOAT"), "NaN"),
    "shorter than a token": (lambda d: write(d / "short.wav", a_minute(seconds=0.02)), "shorter than one token"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_audio_gets_one_line_and_status_2(case, tmp_path, transformer_run, capsys):
    make_path, message = BAD_INPUTS[case]
    status = cli.main(["encode", str(make_path(tmp_path)), "--model", str(transformer_run)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("error: ") and message in err and "\n" not in err, err


def test_unknown_and_untrained_models_name_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path / "data"))
    audio = write(tmp_path / "tone.wav", a_minute(seconds=1.0))
    assert cli.main(["encode", str(audio), "--model", "no-such-model", "--profile", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "transformer-contrastive" in err
    assert cli.main(["encode", str(audio), "--profile", "tiny"]) == 2  # the default model, not trained here
    err = capsys.readouterr().err
    assert "not trained yet" in err and "python -m wmlib train --model transformer-contrastive --profile tiny" in err
    assert cli.main(["encode", str(audio), "--profile", "huge"]) == 2
    assert "huge" in capsys.readouterr().err
    with pytest.raises(AudioError, match="NaN"):  # in Python, the same checks raise
        encode(np.full(RATE, np.nan, np.float32), RATE, model=str(make_run(tmp_path / "run")))


def test_the_command_on_a_minute_of_stereo_audio(tmp_path, transformer_run):
    """As a reader runs it: a 60 s stereo file at 22.05 kHz -> an .npz of 1,500 tokens, one summary line; a bad
    file -> one line on stderr, status 2, no traceback."""
    audio = write(tmp_path / "minute.flac", a_minute(22_050, channels=2), rate=22_050)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "wmlib", "encode", str(audio), "--model", str(transformer_run)]
    result = subprocess.run([*command, "-o", str(tmp_path / "out.npz")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1500 tokens (60.0 s)" in result.stdout and len(result.stdout.strip().splitlines()) == 1
    assert "resampled from 22050 Hz" in result.stderr and "Traceback" not in result.stderr
    encoding = Encoding.load(tmp_path / "out.npz")
    assert all(len(latent) == 1500 for latent in encoding.latents.values())
    broken = subprocess.run([*command[:4], str(tmp_path / "missing.wav")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert broken.stderr.strip().startswith("error:") and len(broken.stderr.strip().splitlines()) == 1
