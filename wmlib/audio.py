"""Reading audio safely and writing files atomically.

Every waveform that enters ``wmlib`` passes :func:`load_audio` (or :func:`check_waveform`), so bad input fails
here with a message that names the fix, instead of as a NaN deep inside a model.  Every file ``wmlib`` writes
goes through :func:`atomic_write`, so an interrupted run never leaves a half-written file in a cache.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """Audio that cannot be used; the message says why and what to do."""


class AudioConversionWarning(UserWarning):
    """Audio was usable but converted (stereo to mono, resampled)."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block finishes.

    Yields:
        The open temporary file (or, with ``mode=None``, its path, for writers that want a filename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a cache file should read like any other file
    try:
        if mode is None:
            yield Path(tmp)
        else:
            with open(tmp, mode) as handle:
                yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
        raise AudioError(f"{name}: the audio is empty (0 samples); remove the file from the corpus or re-export it")
    if not np.all(np.isfinite(audio)):
        bad = int(np.sum(~np.isfinite(audio)))
        raise AudioError(f"{name}: {bad} samples are NaN or infinite; the file is damaged, re-export or remove it")
    audio = audio.astype(np.float32, copy=False)
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0 and not allow_silent:
        raise AudioError(f"{name}: the audio is digital silence; there is nothing to learn from, remove it")
    if peak > 1.0:
        raise AudioError(f"{name}: samples reach {peak:.2f}, outside [-1, 1]; normalise float audio before use")
    if np.mean(np.abs(audio) >= 0.999) > 0.01:
        warnings.warn(f"{name}: more than 1% of samples are at full scale (clipped)", AudioConversionWarning)
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
        raise AudioError(f"{path}: no such file")
    try:
        audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors are RuntimeError / LibsndfileError
        raise AudioError(
            f"{path}: cannot be decoded as audio ({error}); the file is corrupt or not audio, re-export it as WAV/FLAC"
        ) from error
    audio = audio.T  # (channels, samples)
    if audio.shape[0] > 1:
        warnings.warn(f"{path}: {audio.shape[0]} channels averaged to mono", AudioConversionWarning)
    audio = audio.mean(axis=0)
    if file_rate != sample_rate and audio.size:
        import soxr

        warnings.warn(f"{path}: resampled from {file_rate} Hz to {sample_rate} Hz", AudioConversionWarning)
        audio = soxr.resample(audio, file_rate, sample_rate).astype(np.float32)
        audio = np.clip(audio, -1.0, 1.0)  # resampling overshoot of full-scale input
    return check_waveform(audio, name=str(path), allow_silent=allow_silent)
