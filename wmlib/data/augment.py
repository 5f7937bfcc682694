"""Domain randomization: vary what the labels do not depend on, so that real recordings look like one more variation.

Robotics crossed from simulation to reality this way (Tobin et al. 2017); in audio, WavAugment (Kharitonov et al.
2021) made CPC's representations more robust with reverberation and additive noise.  A randomized utterance is a
copy of a clean generated one passed through a seeded chain of effects, each applied with a probability
(:data:`CHAIN`), built on ``audiomentations`` (filters, noise at an SNR, EQ, gain) and ``pyroomacoustics`` (rooms):

1. **room**: a random shoebox room (size, RT60, source–microphone distance) simulated by pyroomacoustics, its
   impulse response aligned on the direct path so that nothing moves in time;
2. **background**: another source of the corpus (music or noise behind speech, and so on) at a random SNR;
3. **colour noise**: white to brown noise at a random SNR;
4. **EQ**: a seven-band parametric equaliser;
5. **channel**: the 8 kHz telephone band (300–3400 Hz) through a codec, μ-law (G.711) or GSM 06.10, or else a
   random low-pass;
6. **gain**, then a peak limit at 0.99 so that nothing clips.

Every effect keeps the length and the timing of the audio, so the copy keeps the exact labels of its clean source
(phones, words, notes, events; energy is recomputed from the new audio).  What was applied, with its parameters,
is recorded per utterance (``utterances.augmentation``, JSON).

Used by :func:`wmlib.data.corpus.build_corpus` and the chapter "Real sound".
"""
from __future__ import annotations

import io
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .audio import SAMPLE_RATE, load_audio, write_wav

RECIPE_VERSION = "augment-1"
TELEPHONE_RATE = 8_000
CODECS = ("mulaw", "gsm")
#: effect -> probability of applying it to a randomized copy
CHAIN = {"room": 0.5, "background": 0.5, "colour_noise": 0.3, "eq": 0.5, "telephone": 0.5, "lowpass": 0.3,
         "gain": 1.0}


def _seeded(seed: int) -> None:
    """audiomentations draws from Python's and numpy's global generators, pyroomacoustics' ray tracing from its own
    (C++) one: seed all three before each effect."""
    import pyroomacoustics

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the library reads the legacy global generator)
    pyroomacoustics.random.seed(seed % 2**31)


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)[:length]
    return np.pad(audio, (0, length - len(audio)))


def room(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE,
         max_rt60: float = 0.7) -> tuple[np.ndarray, dict]:
    """Reverberate ``audio`` in a random room; the impulse response starts at its direct path (no delay).

    The room, absorption and positions are drawn by ``audiomentations.RoomSimulator``; pyroomacoustics computes
    the response by its image source model up to order 10 (without its ray tracing, which took 6× longer).  The
    response is cut at its direct-path peak before convolving, so a phone boundary stays where
    it was and only the reverberant tail spills over it.
    """
    from audiomentations import RoomSimulator
    from scipy.signal import fftconvolve

    simulator = RoomSimulator(min_size_x=3.0, max_size_x=9.0, min_size_y=3.0, max_size_y=8.0, min_size_z=2.4,
                              max_size_z=3.5, calculation_mode="rt60", min_target_rt60=0.15,
                              max_target_rt60=max_rt60, min_source_x=0.5, min_source_y=0.5, min_source_z=1.0,
                              max_source_x=3.0, max_source_y=3.0, max_source_z=2.0, min_mic_distance=0.3,
                              max_mic_distance=2.5, max_order=10, use_ray_tracing=False, p=1.0)
    _seeded(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyroomacoustics' notes on the image-source order
        simulator.randomize_parameters(audio, sample_rate)
    response = np.asarray(simulator.room.rir[0][0], dtype=np.float64)
    response = response[int(np.argmax(np.abs(response))):]  # the direct path at time 0
    response /= np.abs(response[0])  # the direct sound keeps its level
    wet = fftconvolve(audio, response)[: len(audio)]
    parameters = {name: round(float(simulator.parameters[name]), 3)
                  for name in ("size_x", "size_y", "size_z", "target_rt60", "mic_radius")}
    return wet.astype(np.float32), parameters


def mix_at_snr(audio: np.ndarray, background_paths: list[str], snr_db: float, seed: int,
               sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """Add a random stretch of one of ``background_paths`` at ``snr_db`` (RMS over the whole utterance;
    ``audiomentations.AddBackgroundNoise``)."""
    from audiomentations import AddBackgroundNoise

    transform = AddBackgroundNoise(sounds_path=background_paths, min_snr_db=snr_db, max_snr_db=snr_db, p=1.0)
    _seeded(seed)
    mixed = transform(audio, sample_rate=sample_rate)
    return mixed, {"snr_db": round(float(snr_db), 2),
                   "file": Path(transform.parameters["noise_file_path"]).name}


def colour_noise(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """White to brown noise (−6 to +6 dB per octave) at 10–40 dB SNR (``audiomentations.AddColorNoise``)."""
    from audiomentations import AddColorNoise

    snr = float(np.random.default_rng(seed).uniform(10.0, 40.0))
    transform = AddColorNoise(min_snr_db=snr, max_snr_db=snr, p=1.0)
    _seeded(seed)
    out = transform(audio, sample_rate=sample_rate)
    return out, {"snr_db": round(snr, 2),
                 "f_decay_db_per_octave": round(float(transform.parameters["f_decay"]), 2)}


def equalize(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """A seven-band parametric EQ, each band −8 to +8 dB (``audiomentations.SevenBandParametricEQ``)."""
    from audiomentations import SevenBandParametricEQ

    transform = SevenBandParametricEQ(min_gain_db=-8.0, max_gain_db=8.0, p=1.0)
    _seeded(seed)
    out = transform(audio, sample_rate=sample_rate)
    bands = [transform.low_shelf_filter, *transform.peaking_filters, transform.high_shelf_filter]
    gains = [round(float(band.parameters["gain_db"]), 1) for band in bands]
    return out, {"band_gains_db": gains}


def telephone(audio: np.ndarray, codec: str, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """The telephone channel: 300–3400 Hz band-pass, down to 8 kHz, through ``codec`` (``"mulaw"``: G.711 μ-law,
    8 bits; ``"gsm"``: GSM 06.10 full rate, by libsndfile), and back up to ``sample_rate``.  Same length out."""
    import librosa
    import soundfile as sf
    import soxr
    from audiomentations import HighPassFilter, LowPassFilter

    assert codec in CODECS, f"codec must be one of {CODECS}, got {codec!r}"
    _seeded(0)  # the filters have fixed cut-offs; nothing random is drawn
    band = HighPassFilter(min_cutoff_freq=300.0, max_cutoff_freq=300.0, min_rolloff=24, max_rolloff=24,
                          zero_phase=True, p=1.0)(audio, sample_rate=sample_rate)
    band = LowPassFilter(min_cutoff_freq=3400.0, max_cutoff_freq=3400.0, min_rolloff=24, max_rolloff=24,
                         zero_phase=True, p=1.0)(band, sample_rate=sample_rate)
    narrow = np.clip(soxr.resample(band, sample_rate, TELEPHONE_RATE), -1.0, 1.0).astype(np.float32)
    if codec == "mulaw":
        coded = librosa.mu_expand(librosa.mu_compress(narrow, mu=255, quantize=True), mu=255, quantize=True)
    else:
        buffer = io.BytesIO()
        sf.write(buffer, narrow, TELEPHONE_RATE, format="WAV", subtype="GSM610")
        buffer.seek(0)
        coded, _ = sf.read(buffer, dtype="float32")
    wide = soxr.resample(np.asarray(coded, dtype=np.float32), TELEPHONE_RATE, sample_rate)
    return _fit_length(wide, len(audio)), {"codec": codec, "band_hz": [300, 3400]}


def lowpass(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """A random low-pass at 2–6 kHz, 12–36 dB per octave (``audiomentations.LowPassFilter``), zero phase."""
    from audiomentations import LowPassFilter

    transform = LowPassFilter(min_cutoff_freq=2000.0, max_cutoff_freq=6000.0, min_rolloff=12, max_rolloff=36,
                              zero_phase=True, p=1.0)
    _seeded(seed)
    out = transform(audio, sample_rate=sample_rate)
    return out, {"cutoff_hz": round(float(transform.parameters["cutoff_freq"])),
                 "rolloff_db_per_octave": int(transform.parameters["rolloff"])}


def gain(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """−18 to +6 dB (``audiomentations.Gain``), then scaled down if the peak passes 0.99 (no clipping)."""
    from audiomentations import Gain

    transform = Gain(min_gain_db=-18.0, max_gain_db=6.0, p=1.0)
    _seeded(seed)
    out = transform(audio, sample_rate=sample_rate)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    limit = 0.99 / peak if peak > 0.99 else 1.0
    ratio = float(transform.parameters["amplitude_ratio"]) * limit
    return (out * limit).astype(np.float32), {"gain_db": round(float(20 * np.log10(ratio)), 2)}


def randomize(audio: np.ndarray, seed: int, backgrounds: list[str], sample_rate: int = SAMPLE_RATE,
              chain: dict | None = None) -> tuple[np.ndarray, dict]:
    """One randomized copy of ``audio``: the effects of ``chain`` (default :data:`CHAIN`), each drawn with its
    probability from ``seed``.

    Args:
        audio: mono float32.
        seed: decides which effects apply and their parameters (same seed, same copy, bit for bit).
        backgrounds: audio files that may be mixed in (other sources of the corpus); empty: no background.

    Returns:
        ``(audio, record)``: the copy (same length) and ``{effect: parameters}`` of the effects applied, in order.
    """
    chain = CHAIN if chain is None else chain
    rng = np.random.default_rng(seed)
    draws = {name: rng.random() < probability for name, probability in chain.items()}  # all drawn, always
    seeds = {name: int(rng.integers(2**31 - 1)) for name in chain}
    out, record = np.asarray(audio, dtype=np.float32), {}
    if draws.get("room"):
        out, record["room"] = room(out, seeds["room"], sample_rate)
    if draws.get("background") and backgrounds:
        snr = float(np.random.default_rng(seeds["background"]).uniform(0.0, 25.0))
        out, record["background"] = mix_at_snr(out, backgrounds, snr, seeds["background"], sample_rate)
    if draws.get("colour_noise"):
        out, record["colour_noise"] = colour_noise(out, seeds["colour_noise"], sample_rate)
    if draws.get("eq"):
        out, record["eq"] = equalize(out, seeds["eq"], sample_rate)
    if draws.get("telephone"):
        codec = CODECS[seeds["telephone"] % len(CODECS)]
        out, record["telephone"] = telephone(out, codec, sample_rate)
    elif draws.get("lowpass"):
        out, record["lowpass"] = lowpass(out, seeds["lowpass"], sample_rate)
    if draws.get("gain"):
        out, record["gain"] = gain(out, seeds["gain"], sample_rate)
    out = np.clip(np.nan_to_num(out), -1.0, 1.0).astype(np.float32)
    return _fit_length(out, len(audio)), record


def generate(corpus_root: Path, utterances: pd.DataFrame, tables: dict[str, pd.DataFrame], fraction: float,
             seed: int, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Randomized copies of a seeded ``fraction`` of the generated train/valid/test utterances.

    A copy ``<utt_id>-r`` keeps its source's split, voice and every segment label (rows of ``tables`` copied
    under the new id); its audio goes to ``randomized/<source>/``.  Backgrounds are train-split utterances of the
    *other* generated sources (no test audio leaks into training).

    Returns:
        ``utterances`` (with ``domain="randomized"``, ``clean_id`` and ``augmentation``) and the copied segment
        tables.
    """
    generated = utterances[(utterances["domain"] == "generated") & utterances["split"].isin(["train", "valid",
                                                                                              "test"])]
    rng = np.random.default_rng(seed)
    chosen = generated[rng.random(len(generated)) < fraction]
    train = utterances[(utterances["domain"] == "generated") & (utterances["split"] == "train")]
    rows = []
    for row in tqdm(list(chosen.itertuples()), desc="randomized copies", unit="utt", disable=not progress):
        utt_id = f"{row.utt_id}-r"
        backgrounds = [str(corpus_root / path) for path in train.loc[train["source"] != row.source, "path"]]
        audio = load_audio(corpus_root / row.path)
        copy, record = randomize(audio, int(rng.integers(2**31 - 1)), backgrounds)
        path = f"randomized/{row.source}/{utt_id}.wav"
        write_wav(corpus_root / path, copy)
        rows.append({"utt_id": utt_id, "path": path, "source": row.source, "voice": row.voice,
                     "split": row.split, "duration_s": row.duration_s, "text": row.text, "domain": "randomized",
                     "language": row.language, "clean_id": row.utt_id, "augmentation": json.dumps(record),
                     "origin": ""})
    copies = {}
    ids = dict(zip(chosen["utt_id"], chosen["utt_id"] + "-r"))
    for name, table in tables.items():
        part = table[table["utt_id"].isin(ids)].copy()
        part["utt_id"] = part["utt_id"].map(ids)
        copies[name] = part
    return {"utterances": pd.DataFrame(rows), **copies}
