"""Bad audio fails with a clear message; usable-but-odd audio is converted with a note."""
import numpy as np
import pytest
import soundfile as sf

from wmlib.data.audio import AudioConversionWarning, AudioError, check_waveform, load_audio, write_wav
from wmlib.data.files import atomic_write

TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)


def test_reads_a_good_file(tmp_path):
    write_wav(tmp_path / "a.wav", TONE)
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.shape == (16000,)
    np.testing.assert_allclose(audio, TONE, atol=1e-4)


def test_corrupt_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    with pytest.raises(AudioError, match="corrupt"):
        load_audio(tmp_path / "bad.wav")


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")


def test_silent_file(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silence"):
        load_audio(tmp_path / "silent.wav")
    assert load_audio(tmp_path / "silent.wav", allow_silent=True).shape == (16000,)


def test_nan_file(tmp_path):
    audio = TONE.copy()
    audio[100:110] = np.nan
    sf.write(tmp_path / "nan.wav", audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_stereo_is_downmixed_with_a_note(tmp_path):
    sf.write(tmp_path / "stereo.wav", np.stack([TONE, 0 * TONE], axis=1), 16000)
    with pytest.warns(AudioConversionWarning, match="mono"):
        audio = load_audio(tmp_path / "stereo.wav")
    np.testing.assert_allclose(audio, TONE / 2, atol=1e-4)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_with_a_note(tmp_path, rate):
    t = np.arange(rate) / rate
    sf.write(tmp_path / "r.wav", 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    with pytest.warns(AudioConversionWarning, match="resampled"):
        audio = load_audio(tmp_path / "r.wav")
    assert abs(len(audio) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 2


def test_clipped_audio_warns(tmp_path):
    sf.write(tmp_path / "clip.wav", np.clip(5 * TONE, -1, 1), 16000)
    with pytest.warns(AudioConversionWarning, match="clipped"):
        load_audio(tmp_path / "clip.wav")


def test_out_of_range_and_multichannel_arrays():
    with pytest.raises(AudioError, match="outside"):
        check_waveform(2 * TONE / np.max(TONE))
    with pytest.raises(AudioError, match="mono"):
        check_waveform(np.stack([TONE, TONE]))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_write(target, mode="w") as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target, mode="w") as handle:
        handle.write("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]
