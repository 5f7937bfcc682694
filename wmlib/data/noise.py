"""Noise textures: coloured noise with slowly moving level, band-pass filtered bursts, and impulsive events.

Noise is the corpus's control source: no pitch, no phones, only energy and spectral shape.  Bursts and impulses
are labelled as ``events`` with their start and end.

Used by :func:`wmlib.data.corpus.build_corpus`; chapter 1 plays and plots what it makes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal
from tqdm import tqdm

from .audio import SAMPLE_RATE, write_wav
from .profiles import Profile

RECIPE_VERSION = "noise-1"
SPECTRAL_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}  # power spectrum ~ 1 / f**exponent
TEXTURE_SECONDS = (4.0, 8.0)


def coloured_noise(rng: np.random.Generator, samples: int, exponent: float) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as ``1 / f**exponent``, scaled to unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples, d=1 / SAMPLE_RATE)
    frequencies[0] = frequencies[1]  # no division by zero at DC
    spectrum *= frequencies ** (-exponent / 2)
    noise = np.fft.irfft(spectrum, n=samples)
    return noise / np.sqrt(np.mean(noise**2))


def level_envelope(rng: np.random.Generator, samples: int, low_db: float = -30.0) -> np.ndarray:
    """A smooth random gain between ``low_db`` and 0 dB, changing over about half a second."""
    knots = max(2, int(samples / SAMPLE_RATE * 2) + 2)
    levels_db = rng.uniform(low_db, 0.0, size=knots)
    envelope_db = np.interp(np.arange(samples), np.linspace(0, samples - 1, knots), levels_db)
    return 10 ** (envelope_db / 20)


def bursts(rng: np.random.Generator, samples: int, kind: str) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Band-pass bursts (``filtered_bursts``) or decaying clicks (``impulses``) over a faint noise floor.

    Returns:
        The audio (unit peak before gain) and ``(start_s, end_s, event)`` labels.
    """
    audio = 0.003 * rng.standard_normal(samples)
    events, time = [], float(rng.uniform(0.1, 0.4))
    total = samples / SAMPLE_RATE
    while time < total - 0.3:
        if kind == "filtered_bursts":
            length = float(rng.uniform(0.08, 0.6))
            centre = float(np.exp(rng.uniform(np.log(200), np.log(5000))))
            sos = signal.butter(4, [centre / 1.4, min(centre * 1.4, 7900)], btype="bandpass", fs=SAMPLE_RATE,
                                output="sos")
            n = int(length * SAMPLE_RATE)
            burst = signal.sosfilt(sos, rng.standard_normal(n)) * signal.windows.tukey(n, 0.3)
            event = "burst"
        else:
            length = float(rng.uniform(0.02, 0.12))
            n = int(length * SAMPLE_RATE)
            burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 5))
            event = "impulse"
        start = int(time * SAMPLE_RATE)
        burst = burst / np.max(np.abs(burst)) * rng.uniform(0.2, 1.0)
        audio[start:start + n] += burst[: samples - start]
        events.append((time, min(time + length, total), event))
        time += length + float(rng.uniform(0.15, 1.0))
    return audio, events


def generate(profile: Profile, root: Path, seed: int, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Make the noise part of a profile's corpus under ``root/noise``; each kind gets an equal share.

    Returns:
        ``utterances`` and ``events`` tables (split still unassigned).
    """
    share = profile.seconds_noise / len(profile.noise_kinds)
    bar = tqdm(total=round(profile.seconds_noise), desc="noise (s of audio)", unit="s", disable=not progress)
    rows, event_rows = [], []
    for index, kind in enumerate(profile.noise_kinds):
        rng = np.random.default_rng([seed, index])
        made, count = 0.0, 0
        while made < share:
            samples = int(rng.uniform(*TEXTURE_SECONDS) * SAMPLE_RATE)
            if kind in SPECTRAL_EXPONENT:
                audio = coloured_noise(rng, samples, SPECTRAL_EXPONENT[kind]) * level_envelope(rng, samples)
                events = []
            else:
                audio, events = bursts(rng, samples, kind)
            audio = audio / np.max(np.abs(audio)) * rng.uniform(0.2, 0.9)
            utt_id = f"noise-{kind}-{count:04d}"
            write_wav(root / "noise" / f"{utt_id}.wav", audio)
            event_rows.append(pd.DataFrame(events, columns=["start_s", "end_s", "event"]).assign(utt_id=utt_id))
            duration = samples / SAMPLE_RATE
            rows.append({"utt_id": utt_id, "path": f"noise/{utt_id}.wav", "source": "noise", "voice": kind,
                         "duration_s": duration, "text": ""})
            made += duration
            count += 1
            bar.update(round(duration))
    bar.close()
    return {"utterances": pd.DataFrame(rows), "events": pd.concat(event_rows, ignore_index=True)}
