"""Loaders of real corpora, each read in its own on-disk format into a :class:`wmlib.data.corpus.Corpus`.

Every loader returns tables with exactly the columns of :data:`wmlib.data.corpus.COLUMNS`: times in seconds,
``utterances.path`` relative to the dataset root it was given, ``duration_s`` read from the audio file's header
(no decoding), phones passed through :func:`wmlib.data.phones.normalize_phone`, and an empty ``events`` table.
Audio is not resampled here; :meth:`Corpus.audio` resamples to 16 kHz on reading.

On-disk formats (file and folder names may be upper- or lower-case where noted):

- **TIMIT** (:func:`load_timit`): ``root/{TRAIN,TEST}/DR<n>/<SPEAKER>/<SENT>.{WAV,PHN,WRD,TXT}``, any case.
  ``.WAV`` is NIST SPHERE, 16 kHz.  ``.PHN`` and ``.WRD`` lines are ``start_sample end_sample label`` at
  16 kHz; ``.TXT`` is one line ``start_sample end_sample transcript``.  Split ``TRAIN`` -> train,
  ``TEST`` -> test; ``utt_id`` is ``timit-<speaker>-<sent>`` and ``voice`` the speaker, both lower-case.
- **LibriSpeech** (:func:`load_librispeech`): ``root/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac``
  with ``<speaker>-<chapter>.trans.txt`` (lines ``<speaker>-<chapter>-<n> TRANSCRIPT``).  Phones and words
  come from Montreal Forced Aligner TextGrids (interval tiers ``words`` and ``phones``, or MFA's
  ``<speaker> - words``), either beside the flac or anywhere under an ``alignments`` folder as
  ``<speaker>-<chapter>-<n>.TextGrid``.  Subset ``train-*`` -> train, ``dev-*`` -> valid, ``test-*`` -> test.
- **NSynth** (:func:`load_nsynth`): ``root/examples.json`` (``{note_str: {pitch, velocity, instrument_str,
  ...}}``) and ``root/audio/<note_str>.wav``: 16 kHz, 4 s, the note held for 3 s and then released.  One
  music utterance per example with one note from 0 to 3 s; ``voice`` is ``instrument_str``.
- **MusicNet** (:func:`load_musicnet`): ``root/{train,test}_data/<id>.wav`` (44.1 kHz) and
  ``root/{train,test}_labels/<id>.csv`` with columns ``start_time,end_time,instrument,note,start_beat,
  end_beat,note_value`` (times are sample indices at 44.1 kHz).  Recordings are *polyphonic*: notes overlap,
  and several instruments play at once, so ``voice`` is ``musicnet-ensemble-<instrument numbers joined by
  '+'>``.  MusicNet has no velocities; every note gets velocity 64.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import soundfile as sf

from .audio import AudioError
from .corpus import COLUMNS, Corpus, empty_table
from .phones import normalize_phone

TIMIT_LABEL_RATE = 16_000
MUSICNET_LABEL_RATE = 44_100
NSYNTH_NOTE_OFF_S = 3.0
MUSICNET_VELOCITY = 64
LIBRISPEECH_SPLITS = {"train": "train", "dev": "valid", "test": "test"}
MUSICNET_COLUMNS = ["start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value"]


class MissingAlignmentWarning(UserWarning):
    """Some utterances have no forced alignment; they are kept without phones or words."""


def _table(name: str, rows: list) -> pd.DataFrame:
    """Rows (tuples in :data:`COLUMNS` order, up to the optional columns a real corpus leaves to their defaults)
    as a table, or :func:`empty_table` when there are none."""
    if not rows:
        return empty_table(name)
    return pd.DataFrame(rows, columns=COLUMNS[name][: len(rows[0])])


def _corpus(name: str, root: Path, **rows: list) -> Corpus:
    tables = {table: _table(table, rows.get(table, [])) for table in COLUMNS}
    return Corpus(root=root, name=name, **tables)


def _duration_s(path: Path) -> float:
    """The audio file's duration from its header, without decoding it."""
    try:
        return float(sf.info(str(path)).duration)
    except Exception as error:  # libsndfile raises LibsndfileError / RuntimeError
        raise AudioError(f"{path}: cannot read the audio header ({error}); the file is corrupt or not audio") \
            from error


def _require_root(root: str | Path, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}; expected the layout {layout}")
    return root


def _no_files(root: Path, layout: str) -> FileNotFoundError:
    return FileNotFoundError(f"no recognizable files under {root}; expected the layout {layout}")


def _read_sample_labels(path: Path, rate: int) -> list[tuple[float, float, str]]:
    """Lines ``start_sample end_sample label`` as ``(start_s, end_s, label)``; the label may contain spaces.

    Raises:
        ValueError: a line without two integer sample indices and a label, naming the file and line number.
    """
    labels = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=2)
        if len(fields) != 3 or not (fields[0].isdigit() and fields[1].isdigit()):
            raise ValueError(f"{path}, line {number}: expected 'start_sample end_sample label', got {line!r}")
        labels.append((int(fields[0]) / rate, int(fields[1]) / rate, fields[2].strip()))
    return labels


def load_timit(root: str | Path) -> Corpus:
    """Load TIMIT (see the module docstring for the layout).

    Args:
        root: the folder holding ``TRAIN`` and ``TEST``.

    Returns:
        A speech corpus with phones (61 TIMIT symbols normalized; ``h#``, ``pau``, ``epi`` -> ``sil``) and words.

    Raises:
        FileNotFoundError: no folder, or no ``TRAIN|TEST/DR*/SPEAKER/SENT.WAV`` under it.
        ValueError: a malformed ``.PHN``, ``.WRD`` or ``.TXT`` line.
    """
    layout = "root/{TRAIN,TEST}/DR*/SPEAKER/SENT.{WAV,PHN,WRD,TXT}"
    root = _require_root(root, layout)
    rows = {"utterances": [], "phones": [], "words": []}
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.upper() in ("TRAIN", "TEST")):
        for speaker_dir in sorted(p for p in split_dir.glob("*/*") if p.is_dir()):
            files = {(p.stem.upper(), p.suffix.upper()): p for p in speaker_dir.iterdir() if "." not in p.stem}
            speaker = speaker_dir.name.lower()
            for sentence in sorted(stem for stem, suffix in files if suffix == ".WAV"):
                wav, utt_id = files[(sentence, ".WAV")], f"timit-{speaker}-{sentence.lower()}"
                labels = {suffix: _read_sample_labels(files[(sentence, suffix)], TIMIT_LABEL_RATE)
                          if (sentence, suffix) in files else [] for suffix in (".PHN", ".WRD", ".TXT")}
                text = " ".join(label for *_, label in labels[".TXT"])
                rows["utterances"].append((utt_id, wav.relative_to(root).as_posix(), "speech", speaker,
                                           split_dir.name.lower(), _duration_s(wav), text))
                rows["phones"] += [(utt_id, start, end, normalize_phone(label))
                                   for start, end, label in labels[".PHN"]]
                rows["words"] += [(utt_id, *segment) for segment in labels[".WRD"]]
    if not rows["utterances"]:
        raise _no_files(root, layout)
    return _corpus("timit", root, **rows)


def _read_transcripts(path: Path) -> dict[str, str]:
    """A LibriSpeech ``.trans.txt`` as ``{utterance: text}``.

    Raises:
        ValueError: a line without an utterance id and text, naming the file and line number.
    """
    transcripts = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split(maxsplit=1)
        if fields and len(fields) != 2:
            raise ValueError(f"{path}, line {number}: expected 'UTTERANCE-ID TEXT', got {line!r}")
        if fields:
            transcripts[fields[0]] = fields[1].strip()
    return transcripts


def _alignment_tier(grid, kind: str, path: Path):
    """The interval tier ``kind`` (``words``/``phones``), also under MFA's ``<speaker> - <kind>`` name."""
    for name in grid.tierNames:
        if name == kind or name.endswith(f" - {kind}"):
            return grid.getTier(name)
    raise ValueError(f"{path}: no '{kind}' tier (tiers: {list(grid.tierNames)})")


def load_librispeech(root: str | Path, alignments: str | Path | None = None) -> Corpus:
    """Load LibriSpeech with Montreal Forced Aligner TextGrids (see the module docstring for the layout).

    Args:
        root: the folder holding the subsets (``train-clean-100``, ``dev-clean``, ...).
        alignments: a folder searched recursively for ``<utterance>.TextGrid``; TextGrids beside the flac
            files are always used.

    Returns:
        A speech corpus; ``utt_id`` is ``librispeech-<speaker>-<chapter>-<n>`` and ``voice`` the speaker.
        Empty word intervals are dropped; empty, ``sil``, ``sp`` and ``spn`` phone intervals become ``sil``.

    Warns:
        MissingAlignmentWarning: how many utterances had no TextGrid (they are kept, without phones or words).

    Raises:
        FileNotFoundError: no folder or alignments folder, or no ``<subset>/<speaker>/<chapter>/*.flac``.
        ValueError: a malformed transcript line, a TextGrid without the tiers, or an unknown subset name.
    """
    from praatio import textgrid

    layout = "root/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac with <speaker>-<chapter>.trans.txt"
    root = _require_root(root, layout)
    if alignments is not None and not Path(alignments).is_dir():
        raise FileNotFoundError(f"no alignments folder at {alignments}; expected <speaker>/<utterance>.TextGrid")
    grids = {p.stem: p for p in Path(alignments).rglob("*.TextGrid")} if alignments else {}
    rows = {"utterances": [], "phones": [], "words": []}
    unaligned = 0
    for chapter_dir in sorted({flac.parent for flac in root.glob("*/*/*/*.flac")}):
        subset = chapter_dir.relative_to(root).parts[0]
        split = LIBRISPEECH_SPLITS.get(subset.split("-")[0])
        if split is None:
            raise ValueError(f"{chapter_dir}: subset {subset!r} is not train-*, dev-* or test-*")
        transcripts = {utterance: text for path in chapter_dir.glob("*.trans.txt")
                       for utterance, text in _read_transcripts(path).items()}
        for flac in sorted(chapter_dir.glob("*.flac")):
            utt_id, speaker = f"librispeech-{flac.stem}", flac.stem.split("-")[0]
            rows["utterances"].append((utt_id, flac.relative_to(root).as_posix(), "speech", speaker, split,
                                       _duration_s(flac), transcripts.get(flac.stem, "")))
            grid_path = flac.with_suffix(".TextGrid")
            grid_path = grid_path if grid_path.exists() else grids.get(flac.stem)
            if grid_path is None:
                unaligned += 1
                continue
            grid = textgrid.openTextgrid(str(grid_path), includeEmptyIntervals=True)
            rows["words"] += [(utt_id, start, end, label) for start, end, label
                              in _alignment_tier(grid, "words", grid_path).entries if label.strip()]
            rows["phones"] += [(utt_id, start, end, normalize_phone(label)) for start, end, label
                               in _alignment_tier(grid, "phones", grid_path).entries]
    if not rows["utterances"]:
        raise _no_files(root, layout)
    if unaligned:
        warnings.warn(f"{unaligned} of {len(rows['utterances'])} LibriSpeech utterances have no TextGrid "
                      f"alignment; they are kept without phones or words", MissingAlignmentWarning, stacklevel=2)
    return _corpus("librispeech", root, **rows)


def load_nsynth(root: str | Path, split: str = "train") -> Corpus:
    """Load an NSynth folder (see the module docstring for the layout).

    Args:
        root: the folder holding ``examples.json`` and ``audio/``.
        split: the split when the folder is not named ``nsynth-train``, ``nsynth-valid`` or ``nsynth-test``.

    Returns:
        A music corpus; ``utt_id`` is ``nsynth-<note_str>``, one note per utterance from 0 s to 3 s (note-off).

    Raises:
        FileNotFoundError: no folder or no ``examples.json``.
        AudioError: an example whose audio file is missing or unreadable.
    """
    layout = "root/examples.json + root/audio/<note_str>.wav"
    root = _require_root(root, layout)
    if not (root / "examples.json").exists():
        raise _no_files(root, layout)
    examples = pd.DataFrame.from_dict(json.loads((root / "examples.json").read_text()), orient="index")
    if examples.empty:
        raise _no_files(root, layout)
    split = {"nsynth-train": "train", "nsynth-valid": "valid", "nsynth-test": "test"}.get(root.name, split)
    rows = {"utterances": [], "notes": []}
    for note_str, example in examples.sort_index().iterrows():
        wav, utt_id = root / "audio" / f"{note_str}.wav", f"nsynth-{note_str}"
        rows["utterances"].append((utt_id, wav.relative_to(root).as_posix(), "music", example["instrument_str"],
                                   split, _duration_s(wav), ""))
        rows["notes"].append((utt_id, 0.0, NSYNTH_NOTE_OFF_S, int(example["pitch"]), int(example["velocity"])))
    return _corpus("nsynth", root, **rows)


def _read_musicnet_labels(path: Path) -> pd.DataFrame:
    """A MusicNet label CSV with its numeric columns checked.

    Raises:
        ValueError: missing columns or a row that is not numeric, naming the file and line number.
    """
    try:
        labels = pd.read_csv(path)
    except pd.errors.ParserError as error:
        raise ValueError(f"{path}: malformed label CSV ({error})") from error
    missing = [column for column in MUSICNET_COLUMNS if column not in labels.columns]
    if missing:
        raise ValueError(f"{path}, line 1: missing columns {missing}; expected {','.join(MUSICNET_COLUMNS)}")
    for column in ("start_time", "end_time", "instrument", "note"):
        numbers = pd.to_numeric(labels[column], errors="coerce")
        if numbers.isna().any():
            line = int(numbers.isna().to_numpy().argmax()) + 2  # line 1 is the header
            raise ValueError(f"{path}, line {line}: {column} is {labels[column].iloc[line - 2]!r}, not a number")
        labels[column] = numbers.astype(int)
    return labels


def load_musicnet(root: str | Path) -> Corpus:
    """Load MusicNet (see the module docstring for the layout).

    The recordings are polyphonic (overlapping notes from several instruments), unlike NSynth's single notes.
    MusicNet has no velocities, so every note gets velocity 64.

    Args:
        root: the folder holding ``train_data``, ``train_labels``, ``test_data`` and ``test_labels``.

    Returns:
        A music corpus; ``utt_id`` is ``musicnet-<id>``, ``voice`` is ``musicnet-ensemble-<i>+<j>...`` (the
        sorted instrument numbers of the recording) and notes are in seconds (sample index / 44100).

    Raises:
        FileNotFoundError: no folder, no ``{train,test}_data/*.wav``, or a recording without its label CSV.
        ValueError: a malformed label CSV.
    """
    layout = "root/{train_data,test_data}/<id>.wav + root/{train_labels,test_labels}/<id>.csv"
    root = _require_root(root, layout)
    rows = {"utterances": [], "notes": []}
    for split in ("train", "test"):
        for wav in sorted((root / f"{split}_data").glob("*.wav")):
            label_path = root / f"{split}_labels" / f"{wav.stem}.csv"
            if not label_path.exists():
                raise FileNotFoundError(f"{wav}: no label file {label_path}; expected the layout {layout}")
            labels, utt_id = _read_musicnet_labels(label_path), f"musicnet-{wav.stem}"
            ensemble = "+".join(str(number) for number in sorted(labels["instrument"].unique()))
            rows["utterances"].append((utt_id, wav.relative_to(root).as_posix(), "music",
                                       f"musicnet-ensemble-{ensemble}", split, _duration_s(wav), ""))
            rows["notes"] += [(utt_id, start / MUSICNET_LABEL_RATE, end / MUSICNET_LABEL_RATE, note,
                               MUSICNET_VELOCITY) for start, end, note
                              in labels[["start_time", "end_time", "note"]].itertuples(index=False)]
    if not rows["utterances"]:
        raise _no_files(root, layout)
    return _corpus("musicnet", root, **rows)


LOADERS: dict[str, Callable[..., Corpus]] = {
    "timit": load_timit, "librispeech": load_librispeech, "nsynth": load_nsynth, "musicnet": load_musicnet,
}


def load_real_corpus(kind: str, root: str | Path, **kwargs) -> Corpus:
    """Load a real corpus by kind.

    Args:
        kind: one of ``timit``, ``librispeech``, ``nsynth``, ``musicnet``.
        root: the dataset's root folder.
        **kwargs: passed to the loader (``alignments`` for LibriSpeech, ``split`` for NSynth).

    Returns:
        The corpus.

    Raises:
        ValueError: an unknown kind (the message lists the known ones), or malformed labels.
        FileNotFoundError: a missing root or one without the kind's files.
    """
    if kind not in LOADERS:
        raise ValueError(f"unknown corpus kind {kind!r}; expected one of {sorted(LOADERS)}")
    return LOADERS[kind](root, **kwargs)
