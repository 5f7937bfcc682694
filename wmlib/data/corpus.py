"""The labelled corpus: a table of utterances plus tables of time-stamped segments.

The embedded corpus (speech from Festival, music from FluidSynth, noise from numpy) and the loaders of real
corpora (:mod:`wmlib.data.loaders`) all produce one :class:`Corpus`, so features, probes and chapters never care where
the audio came from.

Tables (all times in seconds from the start of the utterance's audio file):

- ``utterances``: ``utt_id, path, source, voice, split, duration_s, text, domain, language, clean_id,
  augmentation, origin`` (``voice`` is the speaker, the instrument, the noise kind or the real track; ``split`` is
  ``train | valid | test | heldout``; ``path`` is relative to ``root``; ``domain`` is ``generated`` (clean),
  ``randomized`` (a copy of ``clean_id`` through the effects recorded in ``augmentation``, JSON) or ``real``
  (``origin`` names the recordings it was made of); ``language`` for speech).
- ``phones``: ``utt_id, start_s, end_s, phone``.
- ``words``: ``utt_id, start_s, end_s, word``.
- ``notes``: ``utt_id, start_s, end_s, pitch, velocity`` (MIDI pitch and velocity).
- ``events``: ``utt_id, start_s, end_s, event`` (noise bursts and impulses).

Used by chapter 1 (corpus tour and statistics) and by every later chapter through :mod:`wmlib.data.features`.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import load_audio
from .files import atomic_write
from .profiles import Profile, data_root, get_profile

SPLITS_VERSION = "splits-3"  # bump when assign_splits changes: the cache fingerprint includes it
SOURCES = ("speech", "music", "noise")
SPLITS = ("train", "valid", "test", "heldout")
DOMAINS = ("generated", "randomized", "real")

COLUMNS = {
    "utterances": ["utt_id", "path", "source", "voice", "split", "duration_s", "text", "domain", "language",
                   "clean_id", "augmentation", "origin"],
    "phones": ["utt_id", "start_s", "end_s", "phone"],
    "words": ["utt_id", "start_s", "end_s", "word"],
    "notes": ["utt_id", "start_s", "end_s", "pitch", "velocity"],
    "events": ["utt_id", "start_s", "end_s", "event"],
}
#: Columns a corpus may leave out (real corpora from :mod:`wmlib.data.loaders`): their default values.
OPTIONAL = {"domain": "real", "language": "", "clean_id": "", "augmentation": "", "origin": ""}


def empty_table(name: str) -> pd.DataFrame:
    """An empty table with the columns of ``name`` (one of :data:`COLUMNS`)."""
    return pd.DataFrame({column: [] for column in COLUMNS[name]})


@dataclass
class Corpus:
    """Audio files with their labels.  ``root`` is the folder that ``utterances.path`` is relative to."""

    root: Path
    utterances: pd.DataFrame
    phones: pd.DataFrame
    words: pd.DataFrame
    notes: pd.DataFrame
    events: pd.DataFrame
    name: str = "corpus"

    def __post_init__(self):
        self.root = Path(self.root)
        for column, default in OPTIONAL.items():
            if column not in self.utterances.columns:
                self.utterances = self.utterances.assign(**{column: default})
        for table in COLUMNS:
            frame = getattr(self, table)
            missing = [c for c in COLUMNS[table] if c not in frame.columns]
            assert not missing, f"{self.name}: table {table} lacks columns {missing}"
            extra = [c for c in frame.columns if c not in COLUMNS[table]]
            setattr(self, table, frame[COLUMNS[table] + extra].reset_index(drop=True))
        bad = set(self.utterances["source"]) - set(SOURCES)
        assert not bad, f"{self.name}: unknown sources {bad}; expected {SOURCES}"
        bad = set(self.utterances["domain"]) - set(DOMAINS)
        assert not bad, f"{self.name}: unknown domains {bad}; expected {DOMAINS}"
        bad = set(self.utterances["split"]) - set(SPLITS)
        assert not bad, f"{self.name}: unknown splits {bad}; expected {SPLITS}"
        assert self.utterances["utt_id"].is_unique, f"{self.name}: utterance ids repeat"

    def audio(self, utt_id: str) -> np.ndarray:
        """The utterance's waveform, mono float32 at 16 kHz."""
        row = self.utterances.set_index("utt_id").loc[utt_id]
        return load_audio(self.root / row["path"])

    def segments(self, table: str, utt_id: str) -> pd.DataFrame:
        """Rows of ``table`` (``phones``, ``words``, ``notes``, ``events``) for one utterance, in time order."""
        frame = getattr(self, table)
        return frame[frame["utt_id"] == utt_id].sort_values("start_s").reset_index(drop=True)

    def save(self) -> None:
        """Write every table as CSV under ``root``, atomically."""
        for table in COLUMNS:
            with atomic_write(self.root / f"{table}.csv", mode="w") as handle:
                getattr(self, table)[COLUMNS[table]].to_csv(handle, index=False)

    @classmethod
    def load(cls, root: str | Path, name: str | None = None) -> Corpus:
        """Read a corpus written by :meth:`save`."""
        root = Path(root)
        if not (root / "utterances.csv").exists():
            raise FileNotFoundError(
                f"no corpus at {root}; build one with `python -m wmlib corpus --profile NAME`"
            )
        tables = {
            table: pd.read_csv(root / f"{table}.csv", keep_default_na=False, na_values=[""],
                               dtype={"utt_id": str, "text": str, "phone": str, "word": str, "event": str,
                                      "clean_id": str, "augmentation": str, "origin": str, "language": str})
            for table in COLUMNS
        }
        for column in ("text", "language", "clean_id", "augmentation", "origin"):
            tables["utterances"][column] = tables["utterances"][column].fillna("")
        return cls(root=root, name=name or root.name, **tables)

    def summary(self) -> pd.DataFrame:
        """Minutes of audio and utterance counts per domain, source and split."""
        return (
            self.utterances.groupby(["domain", "source", "split"])
            .agg(utterances=("utt_id", "size"), minutes=("duration_s", lambda s: s.sum() / 60))
            .reset_index()
        )

    def voice_table(self) -> pd.DataFrame:
        """Per voice / instrument / noise kind: its source, the splits it appears in, minutes of audio.

        Chapter 1 shows it to make the held-out voices and instruments visible.
        """
        return (
            self.utterances.groupby(["domain", "source", "voice"])
            .agg(splits=("split", lambda s: ", ".join(sorted(set(s)))), utterances=("utt_id", "size"),
                 minutes=("duration_s", lambda s: round(s.sum() / 60, 2)))
            .reset_index()
        )


def assign_splits(utterances: pd.DataFrame, profile: Profile) -> pd.Series:
    """Split by utterance: held-out voices/instruments get ``heldout``; the rest train/valid/test by a seeded draw.

    The draw is stratified by voice (so every trained voice and instrument is also tested, where it has enough
    utterances) and each source of each domain gets at least one valid and one test utterance even in ``tiny``.
    """
    heldout = set(profile.heldout_voices) | set(profile.heldout_instruments) | set(profile.heldout_real)
    splits = pd.Series("train", index=utterances.index, dtype=object)
    rng = np.random.default_rng(profile.seed + 17)
    kept = utterances[~utterances["voice"].isin(heldout)]
    for _, group in kept.groupby(["source", "voice"], sort=True):
        order = rng.permutation(group.index.to_numpy())
        n_valid = round(len(order) * profile.valid_fraction)
        n_test = round(len(order) * profile.test_fraction)
        splits.loc[order[:n_valid]] = "valid"
        splits.loc[order[n_valid:n_valid + n_test]] = "test"
    # small profiles: make sure each source of each domain is evaluated (real speech in test must not stand in for
    # generated speech, whose phone labels the dream and probe chapters read)
    for _, group in kept.groupby(["domain", "source"] if "domain" in kept else "source", sort=True):
        for split in ("valid", "test"):
            if not (splits.loc[group.index] == split).any():
                candidates = group.index[splits.loc[group.index] == "train"].to_numpy()
                if len(candidates) > 1:
                    splits.loc[rng.choice(candidates)] = split
    splits[utterances["voice"].isin(heldout)] = "heldout"
    return splits


def corpus_dir(profile: Profile) -> Path:
    return data_root() / profile.name / "corpus"


def profile_fingerprint(profile: Profile) -> str:
    """A hash of everything that determines the corpus, so a changed profile rebuilds instead of reusing."""
    from . import augment, music, noise, real, speech

    recipe = {f.name: getattr(profile, f.name) for f in fields(profile)}
    recipe["generators"] = [module.RECIPE_VERSION for module in (speech, music, noise, real, augment)] + [
        SPLITS_VERSION]
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_corpus(profile: str | Profile | None = None, force: bool = False, progress: bool = True) -> Corpus:
    """Generate (or load from cache) the embedded corpus of a profile.

    The corpus is cached under ``data/generated/<profile>/corpus`` with a ``build.json`` that records the
    profile's fingerprint and the build time; a cache from another recipe is rebuilt.  All files are written
    atomically and ``build.json`` last, so an interrupted build is never mistaken for a finished one.

    Args:
        profile: a profile name or :class:`Profile`; ``None`` reads ``$WMLIB_PROFILE``.
        force: rebuild even if a matching cache exists.
        progress: show progress bars.

    Returns:
        The corpus.  Used by chapter 1 and every later chapter.
    """
    from . import augment, music, noise, real, speech

    profile = get_profile(profile)
    root = corpus_dir(profile)
    stamp = root / "build.json"
    fingerprint = profile_fingerprint(profile)
    if not force and stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint:
        return Corpus.load(root, name=profile.name)
    if stamp.exists():
        stamp.unlink()  # the old cache no longer describes what is on disk

    start = time.perf_counter()
    rng = np.random.default_rng(profile.seed)
    seeds = rng.integers(0, 2**31 - 1, size=5)
    real.check_packages(profile)  # before minutes of generation, not after
    timings = {}
    parts = []
    for source, module, seed in (("speech", speech, seeds[0]), ("music", music, seeds[1]), ("noise", noise, seeds[2]),
                                 ("real", real, seeds[3])):
        part_start = time.perf_counter()
        part = module.generate(profile, root, seed=int(seed), progress=progress)
        if part and source != "real":
            part["utterances"] = part["utterances"].assign(domain="generated",
                                                           language="en" if source == "speech" else "")
        parts.append(part)
        timings[source] = round(time.perf_counter() - part_start, 2)

    def gather(parts):
        return {table: pd.concat([part[table] for part in parts if table in part] or [empty_table(table)],
                                 ignore_index=True) for table in COLUMNS}

    tables = gather(parts)
    utterances = tables["utterances"]
    for column, default in OPTIONAL.items():  # columns one kind of part has and another leaves out
        utterances[column] = utterances[column].fillna(default) if column in utterances else default
    tables["utterances"]["split"] = assign_splits(tables["utterances"], profile)
    part_start = time.perf_counter()
    segments = {name: table for name, table in tables.items() if name != "utterances"}
    copies = augment.generate(root, tables["utterances"], segments, profile.randomized_fraction, int(seeds[4]),
                              progress=progress)
    timings["randomized"] = round(time.perf_counter() - part_start, 2)
    tables = gather([tables, copies])
    corpus = Corpus(root=root, name=profile.name, **tables)
    corpus.save()
    seconds = round(time.perf_counter() - start, 2)
    with atomic_write(stamp, mode="w") as handle:
        json.dump({"profile": profile.name, "fingerprint": fingerprint, "build_seconds": seconds,
                   "seconds_per_source": timings,
                   "audio_minutes": round(corpus.utterances["duration_s"].sum() / 60, 2),
                   "minutes_per_domain": corpus.utterances.groupby("domain")["duration_s"].sum().div(60).round(2)
                   .to_dict()},
                  handle, indent=2)
    return corpus


def build_info(profile: str | Profile | None = None) -> dict:
    """The ``build.json`` of a built corpus: build time, audio minutes, fingerprint."""
    return json.loads((corpus_dir(get_profile(profile)) / "build.json").read_text())
