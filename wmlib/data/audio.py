"""Reading and writing audio safely.

Every waveform that enters ``wmlib`` passes :func:`load_audio` (or :func:`check_waveform`), so bad input fails
here with a message that names the fix, instead of as a NaN deep inside a model.  WAV files are written
atomically (:func:`wmlib.data.files.atomic_write`).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .files import atomic_write

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """Audio that cannot be used; the message says why and what to do."""


class AudioConversionWarning(UserWarning):
    """Audio was usable but converted (stereo to mono, resampled)."""


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM WAV, atomically."""
    import soundfile as sf

    with atomic_write(path, mode=None) as tmp:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")


def check_waveform(audio: np.ndarray, name: str = "audio", allow_silent: bool = False) -> np.ndarray:
    """Validate a mono float waveform: not empty, finite, not silent, within [-1, 1] (clipping is a warning).

    Args:
        audio: 1-D array.
        name: how the message names the input (a path, an utterance id).
        allow_silent: accept all-zero audio (silence is a legitimate token, not a legitimate utterance).

    Returns:
        The waveform as float32.

    Raises:
        AudioError: empty, NaN/inf, silent or multi-dimensional input.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(f"{name}: expected mono 1-D audio, got shape {audio.shape}; use load_audio() to downmix")
    if audio.size == 0:
        raise AudioError(f"{name}: the audio is empty (0 samples); re-export it, or leave it out")
    if not np.all(np.isfinite(audio)):
        bad = int(np.sum(~np.isfinite(audio)))
        raise AudioError(f"{name}: {bad} samples are NaN or infinite; the file is damaged, re-export or remove it")
    audio = audio.astype(np.float32, copy=False)
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0 and not allow_silent:
        raise AudioError(f"{name}: the audio is digital silence (every sample is 0); there is nothing to hear or "
                         "learn from: record or export it again, or leave it out")
    if peak > 1.0:
        raise AudioError(f"{name}: samples reach {peak:.2f}, outside [-1, 1]; normalise float audio before use")
    if np.mean(np.abs(audio) >= 0.999) > 0.01:
        warnings.warn(f"{name}: more than 1% of samples are at full scale (clipped)", AudioConversionWarning,
                      stacklevel=2)
    return audio


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, allow_silent: bool = False) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate``.

    Stereo is averaged to mono and other rates are resampled (soxr), each with an
    :class:`AudioConversionWarning` saying so.

    Raises:
        AudioError: missing, unreadable (corrupt), empty, NaN or silent audio, with the fix in the message.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    try:
        audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors are RuntimeError / LibsndfileError
        raise AudioError(
            f"{path}: cannot be decoded as audio ({error}); the file is corrupt or not audio, re-export it as WAV/FLAC"
        ) from error
    audio = to_mono(audio.T, str(path))  # (channels, samples) -> (samples,)
    audio = resample(audio, file_rate, sample_rate, str(path))
    return check_waveform(audio, name=str(path), allow_silent=allow_silent)


def to_mono(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    """``(samples,)`` as it is; ``(channels, samples)`` averaged to mono, with an :class:`AudioConversionWarning`."""
    audio = np.asarray(audio)
    if audio.ndim == 2 and audio.shape[0] == 1:
        return audio[0]
    if audio.ndim == 2:
        warnings.warn(f"{name}: {audio.shape[0]} channels averaged to mono", AudioConversionWarning, stacklevel=2)
        return audio.mean(axis=0)
    if audio.ndim != 1:
        raise AudioError(f"{name}: expected (samples,) or (channels, samples) audio, got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """``audio`` at ``rate`` Hz resampled to ``sample_rate`` (soxr), with an :class:`AudioConversionWarning`;
    as it is when the rates agree."""
    if rate == sample_rate or not audio.size:
        return audio
    if not rate or rate <= 0:
        raise AudioError(f"{name}: sample rate {rate!r} Hz is not a rate; pass the rate the audio was recorded at")
    import soxr

    warnings.warn(f"{name}: resampled from {rate} Hz to {sample_rate} Hz", AudioConversionWarning, stacklevel=2)
    audio = soxr.resample(np.asarray(audio, dtype=np.float32), rate, sample_rate).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)  # resampling overshoot of full-scale input
