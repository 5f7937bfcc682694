"""Real recordings that Debian ships: telephone prompts of real speakers and real recorded music.

The generated corpus has exact labels but only knows Festival voices and General MIDI synths.  These packages
bring real sound into the corpus (the book command installs them like the other Debian packages):

- speech: Asterisk's prompts in French, Spanish, Italian and Russian, each package one real speaker, recorded for
  the telephone at 8 kHz (:data:`wmlib.data.profiles.REAL_SPEAKERS`).  Prompts are short (1–5 s), so the prompts of
  one speaker are chained, in a seeded order, into utterances of about :data:`UTTERANCE_SECONDS`; every prompt file
  belongs to exactly one utterance (splits are by file).  ``text`` joins the prompts' transcripts where the package
  ships them (Italian ``it_carlo``, Russian).
- speech: KTuberling's spoken words (``ktuberling-data``), real people reading single words in thirteen
  languages, mostly wideband; chained like the prompts, the voice label is the language's folder (``kt_fr``, ...).
- music: Asterisk's music on hold, five real recorded tracks at 8 kHz (:data:`wmlib.data.profiles.REAL_TRACKS`),
  cut into segments of :data:`SEGMENT_SECONDS` spread evenly over each track.

Everything is resampled to 16 kHz (its upper half-band stays empty: that is what the telephone band looks like).
Labels come later, from the audio (:mod:`wmlib.data.features`): source, voice (speaker or track), language,
energy, and for speech an F0 estimated by pYIN and marked as estimated.  There are no phone labels: no aligner for
these languages is installed, so the phone probes stay on the generated corpus.

Used by :func:`wmlib.data.corpus.build_corpus` and the chapter "Real sound".
"""
from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .audio import SAMPLE_RATE, write_wav
from .profiles import REAL_SPEAKERS, REAL_TRACKS, Profile
from .speech import MissingToolError

RECIPE_VERSION = "real-2"
UTTERANCE_SECONDS = 12.0  # chained prompts per utterance (the model trains on 2.56 s windows inside one)
SEGMENT_SECONDS = 15.0  # music segments
# Prompt files that are not speech: beeps, tones and digital silence.
NOT_SPEECH = re.compile(r"(^|/)(silence/|beep|.*tone)", re.IGNORECASE)


class MissingPackageError(MissingToolError):
    """A Debian package of real recordings is not installed; the message names it and the command."""


def debian_share() -> Path:
    """Where Debian installs shared data: ``$WMLIB_DEBIAN_SHARE`` or ``/usr/share`` (Asterisk's sounds are in
    ``asterisk/``, the transcripts in ``doc/``).  The tests point it at small files they write in that layout."""
    return Path(os.environ.get("WMLIB_DEBIAN_SHARE", "/usr/share"))


def packages(profile: Profile | None = None) -> list[str]:
    """The Debian packages of the real recordings (of ``profile``, or all of them)."""
    speakers = profile.real_speakers if profile is not None else tuple(REAL_SPEAKERS)
    tracks = profile.real_tracks if profile is not None else tuple(REAL_TRACKS)
    return sorted({REAL_SPEAKERS[s]["package"] for s in speakers} | {REAL_TRACKS[t]["package"] for t in tracks})


def speaker_folder(name: str, root: Path | None = None) -> Path:
    """Where one real speaker's files are: ``asterisk/sounds/<files>`` or the speaker's ``folder`` under the share."""
    speaker = REAL_SPEAKERS[name]
    relative = speaker.get("folder") or f"asterisk/sounds/{speaker['files']}"
    return (root or debian_share()) / relative


def speaker_files(name: str, root: Path | None = None) -> list[Path]:
    """The prompt files of one real speaker, sorted by path, beeps, tones and silence left out.

    Raises:
        MissingPackageError: the speaker's package is not installed (no files where it installs them).
    """
    speaker = REAL_SPEAKERS[name]
    folder = speaker_folder(name, root)
    formats = (speaker["format"],) if isinstance(speaker["format"], str) else tuple(speaker["format"])
    files = sorted(path for extension in formats for path in folder.rglob(f"*.{extension}")
                   if not NOT_SPEECH.search(path.relative_to(folder).as_posix()))
    if not files:
        kinds = "/".join(f".{extension}" for extension in formats)
        raise MissingPackageError(
            f"real speaker {name!r}: no {kinds} files under {folder}; install the Debian package "
            f"`{speaker['package']}` (`apt-get install {speaker['package']}`, or `make setup`)")
    return files


def track_file(name: str, root: Path | None = None) -> Path:
    """The file of one real music track.

    Raises:
        MissingPackageError: its package is not installed.
    """
    track = REAL_TRACKS[name]
    path = (root or debian_share()) / "asterisk" / "moh" / track["file"]
    if not path.is_file():
        raise MissingPackageError(
            f"real music track {name!r}: {path} is missing; install the Debian package `{track['package']}` "
            f"(`apt-get install {track['package']}`, or `make setup`)")
    return path


def check_packages(profile: Profile, root: Path | None = None) -> None:
    """Raise :class:`MissingPackageError` naming every missing package of ``profile``'s real recordings."""
    missing = []
    for name in profile.real_speakers if profile.seconds_real_speech > 0 else ():
        try:
            speaker_files(name, root)
        except MissingPackageError:
            missing.append(REAL_SPEAKERS[name]["package"])
    for name in profile.real_tracks if profile.seconds_real_music > 0 else ():
        try:
            track_file(name, root)
        except MissingPackageError:
            missing.append(REAL_TRACKS[name]["package"])
    if missing:
        names = " ".join(sorted(set(missing)))
        raise MissingPackageError(f"the real recordings of profile {profile.name!r} need Debian packages that are "
                                  f"not installed: {names}; `apt-get install {names}` (or `make setup`)")


def read_recording(path: Path) -> np.ndarray:
    """A prompt or track as mono float32 at 16 kHz; ``.gsm`` files are raw GSM 06.10 at 8 kHz (libsndfile)."""
    import soundfile as sf
    import soxr

    if path.suffix == ".gsm":
        audio, rate = sf.read(path, format="RAW", subtype="GSM610", samplerate=8000, channels=1, dtype="float32")
    else:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE and audio.size:
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)


def read_transcripts(path: str | Path | None) -> dict[str, str]:
    """A package's ``name: text`` transcript list (gzipped) as ``{prompt name: text}``; ``{}`` when absent."""
    if path is None or not Path(path).is_file():
        return {}
    texts = {}
    with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if ":" in line and not line.lstrip().startswith(";"):
                name, text = line.split(":", 1)
                texts[name.strip()] = text.strip()
    return texts


def _speech(profile: Profile, out: Path, seed: int, root: Path | None, bar) -> list[dict]:
    rows = []
    quota = profile.seconds_real_speech / len(profile.real_speakers)
    for index, name in enumerate(profile.real_speakers):
        speaker = REAL_SPEAKERS[name]
        files = speaker_files(name, root)
        share = root or debian_share()
        texts = read_transcripts(share / speaker["transcripts"] if "transcripts" in speaker else None)
        order = np.random.default_rng([seed, index]).permutation(len(files))
        folder = speaker_folder(name, root)
        spoken, pieces, names, prompts = 0.0, [], [], []
        for file_index in order:
            if spoken >= quota:
                break
            path = files[file_index]
            audio = read_recording(path)
            if audio.size < SAMPLE_RATE // 4 or not np.any(audio):
                continue  # empty or silent prompt
            pieces.append(audio)
            names.append(path.relative_to(folder).as_posix())
            prompts.append(texts.get(path.relative_to(folder).with_suffix("").as_posix(), ""))
            spoken += len(audio) / SAMPLE_RATE
            bar.update(len(audio) / SAMPLE_RATE)
            if sum(len(p) for p in pieces) >= UTTERANCE_SECONDS * SAMPLE_RATE or spoken >= quota:
                rows.append(_write_utterance(out, f"real-speech-{name}-{len(rows):04d}", "speech", name,
                                             speaker["language"], np.concatenate(pieces), names, prompts))
                pieces, names, prompts = [], [], []
        if pieces:
            rows.append(_write_utterance(out, f"real-speech-{name}-{len(rows):04d}", "speech", name,
                                         speaker["language"], np.concatenate(pieces), names, prompts))
    return rows


def _write_utterance(out: Path, utt_id: str, source: str, voice: str, language: str, audio: np.ndarray,
                     origins: list[str], texts: list[str]) -> dict:
    write_wav(out / f"real/{source}" / f"{utt_id}.wav", audio)
    return {"utt_id": utt_id, "path": f"real/{source}/{utt_id}.wav", "source": source, "voice": voice,
            "duration_s": len(audio) / SAMPLE_RATE, "text": " | ".join(t for t in texts if t), "domain": "real",
            "language": language, "origin": ";".join(origins)}


def _music(profile: Profile, out: Path, root: Path | None, bar) -> list[dict]:
    rows = []
    share = profile.seconds_real_music / len(profile.real_tracks)
    for name in profile.real_tracks:
        path = track_file(name, root)
        audio = read_recording(path)
        duration = len(audio) / SAMPLE_RATE
        length = min(SEGMENT_SECONDS, share, duration)
        count = max(1, min(int(round(share / length)), int(duration // length)))
        starts = np.linspace(0.0, duration - length, count)  # spread over the whole track
        for start in starts:
            first = int(round(start * SAMPLE_RATE))
            segment = audio[first:first + int(length * SAMPLE_RATE)]
            if not np.any(segment):
                continue
            rows.append(_write_utterance(out, f"real-music-{name}-{len(rows):03d}", "music", name, "", segment,
                                         [f"{path.name}@{start:.2f}-{start + length:.2f}s"], []))
            bar.update(length)
    return rows


def generate(profile: Profile, out: Path, seed: int, progress: bool = True,
             root: Path | None = None) -> dict[str, pd.DataFrame]:
    """Copy the profile's share of the real recordings into the corpus under ``out/real`` (16 kHz WAV).

    Args:
        profile: how many seconds of real speech and music, which speakers and tracks.
        out: the corpus folder.
        seed: orders each speaker's prompts before they are chained.
        root: the Debian share folder the packages install into (default :func:`debian_share`).

    Returns:
        ``{"utterances": ...}`` (split still unassigned): ``utt_id, path, source, voice, duration_s, text, domain,
        language, origin`` (the prompt files, or the track and time span, each utterance is made of).

    Raises:
        MissingPackageError: naming the packages to install.
    """
    total = profile.seconds_real_speech + profile.seconds_real_music
    if total <= 0:
        return {}
    check_packages(profile, root)
    bar = tqdm(total=round(total), desc="real recordings (s of audio)", unit="s", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s")
    rows = _speech(profile, out, seed, root, bar) if profile.seconds_real_speech > 0 else []
    rows += _music(profile, out, root, bar) if profile.seconds_real_music > 0 else []
    bar.close()
    return {"utterances": pd.DataFrame(rows)}
