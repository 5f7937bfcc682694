"""Each test writes a tiny corpus in the real on-disk format, loads it with wmlib.data.loaders and checks the tables."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid
from praatio.data_classes.interval_tier import IntervalTier

from wmlib.data.audio import SAMPLE_RATE, AudioConversionWarning
from wmlib.data.corpus import COLUMNS
from wmlib.data.loaders import MissingAlignmentWarning, load_real_corpus


def sine(seconds: float, rate: int = SAMPLE_RATE, hz: float = 220.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def assert_columns(corpus) -> None:
    for table in COLUMNS:
        assert list(getattr(corpus, table).columns) == COLUMNS[table], table


def write_timit(root, split="TRAIN", speaker="FCJF0", sentence="SA1", phn_lines=None, lower=False):
    case = str.lower if lower else str.upper
    folder = root / case(split) / case("dr1") / case(speaker)
    folder.mkdir(parents=True)
    name = case(sentence)
    sf.write(folder / f"{name}{case('.wav')}", sine(1.0), SAMPLE_RATE, format="NIST", subtype="PCM_16")
    phn_lines = phn_lines or ["0 3000 h#", "3000 8000 sh", "8000 12000 iy", "12000 16000 h#"]
    (folder / f"{name}{case('.phn')}").write_text("\n".join(phn_lines) + "\n")
    (folder / f"{name}{case('.wrd')}").write_text("3000 12000 she\n")
    (folder / f"{name}{case('.txt')}").write_text("0 16000 She had your dark suit.\n")


def test_timit(tmp_path):
    write_timit(tmp_path)
    write_timit(tmp_path, split="TEST", speaker="MDAB0", sentence="SI1039", lower=True)  # lower-case copy
    corpus = load_real_corpus("timit", tmp_path)
    assert_columns(corpus)
    utts = corpus.utterances.set_index("utt_id")
    assert set(utts.index) == {"timit-fcjf0-sa1", "timit-mdab0-si1039"}
    assert sf.info(str(tmp_path / "TRAIN/DR1/FCJF0/SA1.WAV")).format == "NIST"
    assert utts.loc["timit-fcjf0-sa1", "split"] == "train" and utts.loc["timit-mdab0-si1039", "split"] == "test"
    assert utts.loc["timit-fcjf0-sa1", "voice"] == "fcjf0"
    assert utts.loc["timit-fcjf0-sa1", "path"] == "TRAIN/DR1/FCJF0/SA1.WAV"
    assert utts.loc["timit-fcjf0-sa1", "text"] == "She had your dark suit."
    assert set(utts["source"]) == {"speech"} and np.allclose(utts["duration_s"], 1.0)
    phones = corpus.segments("phones", "timit-fcjf0-sa1")
    assert list(phones["phone"]) == ["sil", "sh", "iy", "sil"]
    assert phones["end_s"].iloc[1] == pytest.approx(0.5)  # 8000 samples at 16 kHz
    words = corpus.segments("words", "timit-fcjf0-sa1")
    assert words.iloc[0][["start_s", "end_s", "word"]].tolist() == [pytest.approx(0.1875), 0.75, "she"]
    assert corpus.segments("phones", "timit-mdab0-si1039")["phone"].tolist() == ["sil", "sh", "iy", "sil"]
    assert corpus.notes.empty and corpus.events.empty
    audio = corpus.audio("timit-fcjf0-sa1")
    assert audio.dtype == np.float32 and audio.shape == (SAMPLE_RATE,)


def test_timit_bad_line_names_file_and_line(tmp_path):
    write_timit(tmp_path, phn_lines=["0 3000 h#", "3000 oops sh"])
    with pytest.raises(ValueError, match=r"SA1\.PHN, line 2"):
        load_real_corpus("timit", tmp_path)


def write_textgrid(path, words, phones, duration):
    grid = textgrid.Textgrid()
    grid.addTier(IntervalTier("words", words, 0, duration))
    grid.addTier(IntervalTier("phones", phones, 0, duration))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def write_librispeech(root):
    for subset, speaker, chapter in (("train-clean-100", "84", "121123"), ("dev-clean", "1272", "128104")):
        folder = root / subset / speaker / chapter
        folder.mkdir(parents=True)
        ids = [f"{speaker}-{chapter}-{n:04d}" for n in range(2)]
        for utterance in ids:
            sf.write(folder / f"{utterance}.flac", sine(1.5), SAMPLE_RATE, format="FLAC")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(f"{u} GO DO\n" for u in ids))
    words = [(0.2, 0.6, "go"), (0.7, 1.2, "do")]  # gaps become empty intervals
    phones = [(0.0, 0.2, "sil"), (0.2, 0.4, "G"), (0.4, 0.6, "OW1"), (0.6, 0.7, "sp"), (0.7, 0.9, "D"),
              (0.9, 1.2, "UW1"), (1.2, 1.3, "spn")]
    write_textgrid(root / "train-clean-100/84/121123/84-121123-0000.TextGrid", words, phones, 1.5)  # beside
    alignments = root.parent / "alignments"
    (alignments / "1272").mkdir(parents=True)
    write_textgrid(alignments / "1272" / "1272-128104-0001.TextGrid", words, phones, 1.5)
    return alignments


def test_librispeech(tmp_path):
    alignments = write_librispeech(tmp_path / "LibriSpeech")
    with pytest.warns(MissingAlignmentWarning, match="2 of 4"):
        corpus = load_real_corpus("librispeech", tmp_path / "LibriSpeech", alignments=alignments)
    assert_columns(corpus)
    utts = corpus.utterances.set_index("utt_id")
    assert utts.loc["librispeech-84-121123-0000", "split"] == "train"
    assert utts.loc["librispeech-1272-128104-0001", "split"] == "valid"
    assert utts.loc["librispeech-84-121123-0000", "path"] == "train-clean-100/84/121123/84-121123-0000.flac"
    assert utts.loc["librispeech-1272-128104-0001", "voice"] == "1272"
    assert set(utts["text"]) == {"GO DO"} and np.allclose(utts["duration_s"], 1.5)
    for aligned in ("librispeech-84-121123-0000", "librispeech-1272-128104-0001"):
        phones = corpus.segments("phones", aligned)
        assert list(phones["phone"]) == ["sil", "g", "ow", "sil", "d", "uw", "sil", "sil"]  # last: empty gap
        assert phones["end_s"].iloc[-1] == pytest.approx(1.5)
        assert corpus.segments("words", aligned)["word"].tolist() == ["go", "do"]
    assert corpus.segments("phones", "librispeech-84-121123-0001").empty
    assert corpus.audio("librispeech-84-121123-0000").shape == (int(1.5 * SAMPLE_RATE),)


def write_nsynth(root):
    (root / "audio").mkdir(parents=True)
    examples = {}
    for note_str, pitch, velocity in (("guitar_acoustic_001-060-100", 60, 100),
                                      ("brass_acoustic_006-072-050", 72, 50)):
        sf.write(root / "audio" / f"{note_str}.wav", sine(4.0), SAMPLE_RATE)
        examples[note_str] = {"note_str": note_str, "pitch": pitch, "velocity": velocity,
                              "instrument_str": note_str.rsplit("-", 2)[0], "sample_rate": SAMPLE_RATE}
    (root / "examples.json").write_text(json.dumps(examples))


def test_nsynth(tmp_path):
    write_nsynth(tmp_path / "nsynth-valid")
    corpus = load_real_corpus("nsynth", tmp_path / "nsynth-valid")
    assert_columns(corpus)
    utts = corpus.utterances.set_index("utt_id")
    assert set(utts["split"]) == {"valid"} and set(utts["source"]) == {"music"}
    assert utts.loc["nsynth-guitar_acoustic_001-060-100", "voice"] == "guitar_acoustic_001"
    assert utts.loc["nsynth-guitar_acoustic_001-060-100", "path"] == "audio/guitar_acoustic_001-060-100.wav"
    assert np.allclose(utts["duration_s"], 4.0)
    note = corpus.segments("notes", "nsynth-brass_acoustic_006-072-050").iloc[0]
    assert note[["start_s", "end_s", "pitch", "velocity"]].tolist() == [0.0, 3.0, 72, 50]
    assert corpus.phones.empty and corpus.words.empty
    write_nsynth(tmp_path / "my-notes")
    assert set(load_real_corpus("nsynth", tmp_path / "my-notes", split="test").utterances["split"]) == {"test"}


MUSICNET_HEADER = "start_time,end_time,instrument,note,start_beat,end_beat,note_value\n"


def write_musicnet(root, label_rows=("0,44100,1,60,0,1,Quarter", "22050,88200,41,67,0.5,1.5,Dotted Quarter")):
    for split, recording in (("train", "1727"), ("test", "2303")):
        (root / f"{split}_data").mkdir(parents=True)
        (root / f"{split}_labels").mkdir(parents=True)
        sf.write(root / f"{split}_data" / f"{recording}.wav", sine(2.0, rate=44_100), 44_100)
        (root / f"{split}_labels" / f"{recording}.csv").write_text(MUSICNET_HEADER + "\n".join(label_rows) + "\n")


def test_musicnet(tmp_path):
    write_musicnet(tmp_path)
    corpus = load_real_corpus("musicnet", tmp_path)
    assert_columns(corpus)
    utts = corpus.utterances.set_index("utt_id")
    assert utts.loc["musicnet-1727", "split"] == "train" and utts.loc["musicnet-2303", "split"] == "test"
    assert utts.loc["musicnet-1727", "voice"] == "musicnet-ensemble-1+41"
    assert utts.loc["musicnet-1727", "path"] == "train_data/1727.wav"
    assert np.allclose(utts["duration_s"], 2.0)
    notes = corpus.segments("notes", "musicnet-1727")
    assert notes[["start_s", "end_s"]].to_numpy().tolist() == [[0.0, 1.0], [0.5, 2.0]]  # overlapping: polyphonic
    assert notes["pitch"].tolist() == [60, 67] and set(notes["velocity"]) == {64}
    with pytest.warns(AudioConversionWarning, match="44100 Hz to 16000 Hz"):
        audio = corpus.audio("musicnet-1727")
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == 2 * SAMPLE_RATE


def test_librispeech_bad_transcript_line_names_file_and_line(tmp_path):
    write_librispeech(tmp_path / "LibriSpeech")
    with open(tmp_path / "LibriSpeech/dev-clean/1272/128104/1272-128104.trans.txt", "a") as handle:
        handle.write("1272-128104-0002\n")
    with pytest.raises(ValueError, match=r"1272-128104\.trans\.txt, line 3"):
        load_real_corpus("librispeech", tmp_path / "LibriSpeech")


def test_musicnet_bad_line_names_file_and_line(tmp_path):
    write_musicnet(tmp_path, label_rows=("0,44100,1,60,0,1,Quarter", "22050,eighty,41,67,0.5,1.5,Quarter"))
    with pytest.raises(ValueError, match=r"1727\.csv, line 3"):
        load_real_corpus("musicnet", tmp_path)


@pytest.mark.parametrize("kind", ["timit", "librispeech", "nsynth", "musicnet"])
def test_missing_or_empty_root_names_the_layout(tmp_path, kind):
    with pytest.raises(FileNotFoundError, match="layout"):
        load_real_corpus(kind, tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="layout"):
        load_real_corpus(kind, tmp_path)


def test_unknown_kind_lists_the_kinds(tmp_path):
    with pytest.raises(ValueError, match="librispeech.*musicnet.*nsynth.*timit"):
        load_real_corpus("commonvoice", tmp_path)
