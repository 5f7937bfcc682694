"""Log-mel spectrograms cut into fixed 40 ms tokens, with one row of labels per token.

A token is ``frames_per_token`` consecutive mel frames (default 4 × 10 ms = 40 ms, 25 tokens per second, as
Dasheng's 64×4 patches).  Token ``i`` of an utterance covers samples ``[i * hop * frames_per_token, (i + 1) * ...)``.

Labels per token (columns of :attr:`TokenSet.labels`):

- ``utt_id, token, start_s, end_s, source, voice, split, domain, language``;
- ``f0_hz`` and ``voiced``: exact from the MIDI notes for generated music (a note covering at least half the
  token); estimated by pYIN for speech (generated and real), and marked so by ``f0_estimated``; noise and real
  music (polyphonic: no single F0) are unvoiced.  A randomized copy takes its clean source's F0 (the pitch did not
  change; a noisy copy would only make pYIN worse);
- ``midi_pitch``: ``f0_hz`` in MIDI units (NaN when unvoiced);
- ``energy_db``: RMS of the token's samples in dB re full scale;
- ``phone`` and ``phone_class``: the phone overlapping the token most (``""`` outside speech);
- ``word``: likewise for words; ``event``: likewise for noise events (``""`` when none).

Used by chapter 1 (spectrograms and corpus statistics) and every chapter after it.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .corpus import Corpus, build_corpus, corpus_dir, profile_fingerprint
from .files import atomic_write
from .phones import SILENCE, phone_class
from .profiles import Profile, get_profile

FEATURES_VERSION = "features-2"
STRING_COLUMNS = ("utt_id", "source", "voice", "split", "domain", "language", "phone", "phone_class", "word",
                  "event")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel and token settings.  Defaults: 16 kHz, 64 mels, 25 ms window, 10 ms hop, 4 frames per token."""

    sample_rate: int = 16_000
    n_mels: int = 64
    window_ms: float = 25.0
    hop_ms: float = 10.0
    frames_per_token: int = 4
    n_fft: int = 512
    fmin: float = 0.0
    fmax: float = 8_000.0
    f0_min_hz: float = 60.0  # pYIN search range for speech
    f0_max_hz: float = 500.0
    f0_frames_per_token: int = 2  # pYIN estimates per token (hop = token / 2; finer costs 2x time)

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def token_samples(self) -> int:
        return self.hop_length * self.frames_per_token

    @property
    def tokens_per_second(self) -> float:
        return self.sample_rate / self.token_samples


@dataclass
class TokenSet:
    """Tokens of many utterances: ``mel`` is ``(N, n_mels, frames_per_token)`` log-mel in dB; ``labels`` has N rows."""

    mel: np.ndarray
    labels: pd.DataFrame
    config: FeatureConfig

    def __post_init__(self):
        assert self.mel.ndim == 3 and self.mel.shape[1:] == (self.config.n_mels, self.config.frames_per_token), (
            f"mel must be (N, {self.config.n_mels}, {self.config.frames_per_token}), got {self.mel.shape}")
        assert len(self.mel) == len(self.labels), f"{len(self.mel)} tokens but {len(self.labels)} label rows"

    def select(self, mask) -> TokenSet:
        """The tokens where ``mask`` (boolean array or Series over ``labels``) is true."""
        mask = np.asarray(mask, dtype=bool)
        return TokenSet(self.mel[mask], self.labels[mask].reset_index(drop=True), self.config)

    def utterance(self, utt_id: str) -> TokenSet:
        """The tokens of one utterance, in time order."""
        return self.select(self.labels["utt_id"].to_numpy() == utt_id)

    def save(self, path: Path) -> None:
        """Write mel, labels and config into one ``.npz`` that loads without pickle."""
        columns = {f"label_{c}": (self.labels[c].to_numpy(dtype=str) if c in STRING_COLUMNS
                                  else self.labels[c].to_numpy()) for c in self.labels.columns}
        with atomic_write(path) as handle:
            np.savez(handle, mel=self.mel, config=json.dumps(asdict(self.config)), **columns)

    @classmethod
    def load(cls, path: Path) -> TokenSet:
        with np.load(path, allow_pickle=False) as data:
            labels = pd.DataFrame({k[len("label_"):]: data[k] for k in data.files if k.startswith("label_")})
            for column in STRING_COLUMNS:
                labels[column] = labels[column].astype(str)
            return cls(data["mel"], labels, FeatureConfig(**json.loads(str(data["config"]))))


def sequence_lengths(seconds: float, config: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """How long a sequence ``seconds`` of audio is as samples, mel frames and tokens, and what attention costs.

    Self-attention compares every position with every other, so its cost grows with the square of the length.
    Used by chapter 1 ("why tokens").
    """
    rows = [("waveform samples", config.sample_rate), ("mel frames (10 ms)", config.sample_rate / config.hop_length),
            (f"tokens ({1000 / config.tokens_per_second:.0f} ms)", config.tokens_per_second)]
    return pd.DataFrame([
        {"representation": name, "per second": rate, f"positions in {seconds:g} s": int(rate * seconds),
         "attention pairs": int(rate * seconds) ** 2}
        for name, rate in rows
    ])


def log_mel(audio: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel spectrogram in dB re full scale, ``(n_mels, frames)``; frame ``j`` is centred on sample ``j * hop``."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio, sr=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
        hop_length=config.hop_length, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, power=2.0)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


def to_tokens(mel: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Cut ``(n_mels, frames)`` into ``(tokens, n_mels, frames_per_token)``, dropping a last partial token."""
    n_mels, frames = mel.shape
    count = frames // config.frames_per_token
    tokens = mel[:, : count * config.frames_per_token].reshape(n_mels, count, config.frames_per_token)
    return np.ascontiguousarray(tokens.transpose(1, 0, 2))  # (T, n_mels, frames_per_token)


def from_tokens(tokens: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_tokens`: ``(T, n_mels, frames_per_token)`` -> ``(n_mels, T * frames_per_token)``."""
    tokens = np.asarray(tokens)
    assert tokens.ndim == 3, f"tokens must be (T, n_mels, frames_per_token), got {tokens.shape}"
    return np.concatenate(list(tokens), axis=1)


def tokens_to_audio(tokens_db: np.ndarray, config: FeatureConfig = FeatureConfig(), n_iter: int = 32) -> np.ndarray:
    """Listen to tokens: ``(T, n_mels, frames_per_token)`` dB -> a waveform, by Griffin-Lim phase reconstruction.

    The log-mel keeps no phase and blurs fine frequency detail, so this is an approximation of the sound (voices
    come out buzzy); it is how the book plays predicted and decoded spectrograms, and it plays original tokens the
    same way so that the comparison is fair.
    """
    import librosa

    tokens_db = np.asarray(tokens_db, dtype=np.float32)
    assert tokens_db.ndim == 3 and tokens_db.shape[1:] == (config.n_mels, config.frames_per_token), (
        f"tokens must be (T, {config.n_mels}, {config.frames_per_token}) dB, got {tokens_db.shape}")
    power = librosa.db_to_power(from_tokens(tokens_db))  # (n_mels, T * frames)
    with warnings.catch_warnings():  # librosa's inversion imports tqdm.auto, which complains in a bare kernel
        warnings.filterwarnings("ignore", message="IProgress not found")
        audio = librosa.feature.inverse.mel_to_audio(
            power, sr=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
            hop_length=config.hop_length, fmin=config.fmin, fmax=config.fmax, power=2.0, n_iter=n_iter)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def token_count(audio_samples: int, config: FeatureConfig = FeatureConfig()) -> int:
    """Whole tokens in an utterance: only tokens whose samples all lie inside the audio."""
    return audio_samples // config.token_samples


def waveform_tokens(audio: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """A mono waveform at ``config.sample_rate`` -> its whole tokens ``(T, n_mels, frames_per_token)`` in dB.

    The one tokenization of ``wmlib``: the corpus (:func:`tokenize_utterance`) and a reader's own audio
    (:func:`wmlib.model.encode.encode`) both pass through it.
    """
    return to_tokens(log_mel(audio, config), config)[: token_count(len(audio), config)]


def energy_db(audio: np.ndarray, count: int, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """RMS energy of each token's samples, in dB re full scale (floor -100 dB)."""
    import librosa

    rms = librosa.feature.rms(y=audio[: count * config.token_samples], frame_length=config.token_samples,
                              hop_length=config.token_samples, center=False)[0]
    return (20 * np.log10(np.maximum(rms, 1e-5))).astype(np.float32)


def majority_label(segments: pd.DataFrame, column: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each window ``[starts[i], ends[i])``, the ``column`` of the segment overlapping it most ("" if none)."""
    labels = np.full(len(starts), "", dtype=object)
    if segments.empty:
        return labels
    seg_start = segments["start_s"].to_numpy()[None, :]
    seg_end = segments["end_s"].to_numpy()[None, :]
    overlap = np.clip(np.minimum(ends[:, None], seg_end) - np.maximum(starts[:, None], seg_start), 0, None)
    best = overlap.argmax(axis=1)
    has = overlap.max(axis=1) > 0
    labels[has] = segments[column].to_numpy()[best[has]]
    return labels


def note_pitch(notes: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """MIDI pitch sounding over at least half of each window (the highest, if several); NaN otherwise."""
    pitch = np.full(len(starts), np.nan)
    for row in notes.itertuples():
        overlap = np.clip(np.minimum(ends, row.end_s) - np.maximum(starts, row.start_s), 0, None)
        covered = overlap >= 0.5 * (ends - starts)
        pitch[covered] = np.fmax(pitch[covered], row.pitch)
    return pitch


def speech_f0(audio: np.ndarray, count: int, config: FeatureConfig = FeatureConfig()) -> tuple[np.ndarray, np.ndarray]:
    """pYIN F0 per token: median over the token's voiced estimates; voiced if at least half of them are.

    Estimates sit at the centres of ``f0_frames_per_token`` equal sub-windows of each token.

    Returns:
        ``(f0_hz, voiced)`` arrays of length ``count``; ``f0_hz`` is NaN where unvoiced.
    """
    import librosa

    step = config.token_samples // config.f0_frames_per_token
    shifted = audio[step // 2:]  # so frame k (centred on k * step) lands in the middle of its sub-window
    f0, voiced_frames, _ = librosa.pyin(
        shifted, fmin=config.f0_min_hz, fmax=config.f0_max_hz, sr=config.sample_rate, frame_length=1024,
        hop_length=step, resolution=0.25, fill_na=np.nan)
    needed = count * config.f0_frames_per_token
    f0 = np.pad(f0, (0, max(0, needed - len(f0))), constant_values=np.nan)[:needed]
    voiced_frames = np.pad(voiced_frames, (0, max(0, needed - len(voiced_frames))))[:needed]
    f0 = f0.reshape(count, config.f0_frames_per_token)
    voiced = voiced_frames.reshape(count, config.f0_frames_per_token).mean(axis=1) >= 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are unvoiced tokens
        token_f0 = np.nanmedian(f0, axis=1)
    token_f0[~voiced] = np.nan
    voiced &= np.isfinite(token_f0)
    return token_f0, voiced


def tokenize_utterance(corpus: Corpus, utterance: pd.Series, config: FeatureConfig = FeatureConfig(),
                       clean: pd.DataFrame | None = None):
    """Tokens and labels of one utterance of ``corpus``; returns ``(mel_tokens, labels)``.

    ``clean``: the labels of the clean source of a randomized copy, whose F0 the copy takes.
    """
    import librosa

    audio = corpus.audio(utterance["utt_id"])
    tokens = waveform_tokens(audio, config)
    count = len(tokens)
    starts = np.arange(count) * config.token_samples / config.sample_rate
    ends = starts + config.token_samples / config.sample_rate
    utt_id = utterance["utt_id"]
    phones = corpus.segments("phones", utt_id)
    labels = pd.DataFrame({
        "utt_id": utt_id, "token": np.arange(count), "start_s": starts, "end_s": ends,
        "source": utterance["source"], "voice": utterance["voice"], "split": utterance["split"],
        "domain": utterance.get("domain", "real"), "language": utterance.get("language", ""),
        "energy_db": energy_db(audio, count, config),
        "phone": majority_label(phones, "phone", starts, ends),
        "word": majority_label(corpus.segments("words", utt_id), "word", starts, ends),
        "event": majority_label(corpus.segments("events", utt_id), "event", starts, ends),
    })
    labels["phone_class"] = [phone_class(p) if p else "" for p in labels["phone"]]
    notes = corpus.segments("notes", utt_id)
    if clean is not None:
        assert len(clean) == count, f"{utt_id}: {count} tokens but its clean source has {len(clean)}"
        for column in ("f0_hz", "voiced", "f0_estimated"):
            labels[column] = clean[column].to_numpy()
    elif utterance["source"] == "music" or not notes.empty:
        pitch = note_pitch(notes, starts, ends)
        labels["f0_hz"] = librosa.midi_to_hz(pitch)
        labels["voiced"] = np.isfinite(pitch)
        labels["f0_estimated"] = False
    elif utterance["source"] == "speech":
        f0, voiced = speech_f0(audio, count, config)
        labels["f0_hz"], labels["voiced"], labels["f0_estimated"] = f0, voiced, True
        if not phones.empty:  # a voiced silence is an estimator error, not a pitch
            labels.loc[labels["phone"] == SILENCE, ["voiced", "f0_hz"]] = [False, np.nan]
    else:
        labels["f0_hz"], labels["voiced"], labels["f0_estimated"] = np.nan, False, False
    labels["midi_pitch"] = np.where(labels["voiced"], librosa.hz_to_midi(labels["f0_hz"].fillna(1.0)), np.nan)
    return tokens, labels


def tokenize(corpus: Corpus, config: FeatureConfig = FeatureConfig(), progress: bool = True) -> TokenSet:
    """Tokens and labels of every utterance of a corpus (embedded or real), in utterance order.

    One process: tokenising in two worker processes was tried and dropped.  It was only about 20% faster, and in
    one fresh-clone build a worker segfaulted, probably while two fresh processes compiled librosa's numba
    functions into the same on-disk cache (not proven).
    """
    mels, tables, done = [], [], {}
    utterances = corpus.utterances
    if "clean_id" in utterances:  # clean sources first, so that a randomized copy can take their F0
        utterances = utterances.iloc[np.argsort(utterances["clean_id"].fillna("").ne("").to_numpy(), kind="stable")]
    rows = list(utterances.iterrows())
    for _, utterance in tqdm(rows, desc=f"tokens ({corpus.name})", unit="utt", disable=not progress):
        clean = done.get(utterance.get("clean_id") or None)
        tokens, labels = tokenize_utterance(corpus, utterance, config, clean=clean)
        done[utterance["utt_id"]] = labels
        mels.append(tokens)
        tables.append(labels)
    return TokenSet(np.concatenate(mels), pd.concat(tables, ignore_index=True), config)


def load_tokens(profile: str | Profile | None = None, config: FeatureConfig = FeatureConfig(),
                progress: bool = True) -> TokenSet:
    """Tokens of a profile's embedded corpus, built (corpus included) on first use and cached.

    The cache file's name hashes the corpus recipe, the feature config and :data:`FEATURES_VERSION`, so any
    change recomputes instead of reusing stale tokens.
    """
    profile = get_profile(profile)
    key = json.dumps([profile_fingerprint(profile), asdict(config), FEATURES_VERSION], sort_keys=True)
    path = corpus_dir(profile).parent / f"tokens-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        return TokenSet.load(path)
    tokens = tokenize(build_corpus(profile, progress=progress), config, progress=progress)
    tokens.save(path)
    return tokens
