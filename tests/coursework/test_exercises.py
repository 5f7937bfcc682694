"""The coursework's checks (chapter "Extending the book").  They run against the reference solutions in
``coursework/solutions/`` — or against a student's, given as a folder holding files of the same names:

    WMLIB_SOLUTIONS=path/to/my_solutions .venv/bin/python -m pytest tests/coursework

Each check computes what it expects in its own way (a loop, a hand-written file), never by calling a solution.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = Path(os.environ.get("WMLIB_SOLUTIONS", ROOT / "coursework" / "solutions"))


def solution(name: str):
    """Import ``<name>.py`` from the solutions folder as a fresh module."""
    path = SOLUTIONS / f"{name}.py"
    if not path.is_file():
        pytest.fail(f"no solution file {path}: write it (see coursework/README.md)")
    spec = importlib.util.spec_from_file_location(f"solution_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- exercise 1: a probe target ------------------------------------------------------------------------------------

def expected_onsets(labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    values, mask = np.zeros(len(labels), dtype=int), np.zeros(len(labels), dtype=bool)
    previous = (None, False, None)  # utterance, voiced, note of the token before
    for i, row in enumerate(labels.itertuples()):
        voiced = bool(row.voiced) and np.isfinite(row.midi_pitch)
        note = round(row.midi_pitch) if voiced else None
        if row.source == "music" and voiced:
            mask[i] = True
            values[i] = int(not (previous[0] == row.utt_id and previous[1] and previous[2] == note))
        previous = (row.utt_id, voiced, note)
    return values, mask


def test_exercise_1_note_onset_target(tiny_tokens):
    solution("note_onset")
    from wmlib.analysis.targets import TARGETS, get_target

    assert "note_onset" in TARGETS, "register the target with @register_target('note_onset', ...)"
    target = get_target("note_onset")
    assert target.kind == "classification"
    labels = tiny_tokens.labels
    values, mask = target(labels)
    expected, expected_mask = expected_onsets(labels)
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(values[mask].astype(int), expected[mask])
    assert 0.05 < expected[mask].mean() < 0.6  # the check itself sees onsets and continuations


# -- exercise 2: an encoder ----------------------------------------------------------------------------------------

def test_exercise_2_an_encoder_of_your_own(tiny_tokens):
    from wmlib.analysis.probes import probe_target

    encode = solution("band_statistics").encode
    mel = tiny_tokens.mel[:2000]
    features = encode(mel)
    assert features.ndim == 2 and len(features) == len(mel) and features.shape[1] >= 8
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(features, encode(mel))  # deterministic
    changed = mel.copy()
    changed[10] += 20.0
    moved = encode(changed)
    np.testing.assert_array_equal(np.delete(moved, 10, 0), np.delete(features, 10, 0))  # a token from its own frames
    labels = tiny_tokens.labels.iloc[:2000].reset_index(drop=True)
    energy = probe_target(features, labels, "energy", seeds=(0,), n_boot=50)
    r2 = energy.query("setting == 'in-distribution' and metric == 'r2'")["value"].iloc[0]
    assert r2 >= 0.8, f"a linear probe reads energy from the encoding with R² {r2:.2f}; it should reach 0.8"


# -- exercise 3: a corpus loader -----------------------------------------------------------------------------------

def write_folder(root: Path) -> dict:
    rate = 22_050
    files = {"a.wav": ("speech", "alice", "train", 1.0), "b.flac": ("music", "oboe", "test", 0.5),
             "sub/c.wav": ("noise", "fan", "valid", 0.25)}
    for name, (_, _, _, seconds) in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        tone = 0.3 * np.sin(2 * np.pi * 330 * np.arange(int(rate * seconds)) / rate)
        sf.write(root / name, tone.astype(np.float32), rate)
    (root / "labels.csv").write_text("file,source,voice,split\n" + "".join(
        f"{name},{source},{voice},{split}\n" for name, (source, voice, split, _) in files.items()))
    return files


def test_exercise_3_a_corpus_loader(tmp_path):
    load_folder = solution("folder_corpus").load_folder
    files = write_folder(tmp_path)
    corpus = load_folder(tmp_path)
    table = corpus.utterances.set_index("utt_id")
    assert sorted(table.index) == ["a", "b", "c"]
    for name, (source, voice, split, seconds) in files.items():
        row = table.loc[Path(name).stem]
        assert (row["source"], row["voice"], row["split"]) == (source, voice, split)
        assert row["duration_s"] == pytest.approx(seconds, abs=1e-3)
        audio = corpus.audio(Path(name).stem)  # resampled to 16 kHz by the Corpus
        assert len(audio) == pytest.approx(16_000 * seconds, abs=2)
    assert corpus.phones.empty and corpus.notes.empty
    (tmp_path / "b.flac").unlink()
    with pytest.raises(FileNotFoundError, match="b.flac"):
        load_folder(tmp_path)


WRONG = {
    "note_onset.py": "import numpy as np\nfrom wmlib.analysis.targets import register_target\n\n"
                     "@register_target('note_onset', 'classification', 'every voiced music token')\n"
                     "def note_onset(labels):\n    music = labels['source'].to_numpy() == 'music'\n"
                     "    return np.ones(len(labels), dtype=int), music & labels['voiced'].to_numpy(dtype=bool)\n",
    "band_statistics.py": "import numpy as np\n\ndef encode(mel):\n"
                          "    level = mel.mean(axis=2)\n    return np.concatenate([level, np.roll(level, 1, 0)], 1)\n",
    "folder_corpus.py": "from pathlib import Path\nimport pandas as pd\n"
                        "from wmlib.data.corpus import COLUMNS, Corpus, empty_table\n\n"
                        "def load_folder(root):\n    table = pd.read_csv(Path(root) / 'labels.csv')\n"
                        "    rows = [{'utt_id': Path(f).stem, 'path': f, 'source': s, 'voice': v, 'split': p,\n"
                        "             'duration_s': 1.0, 'text': ''} for f, s, v, p in table.itertuples(index=False)]\n"
                        "    return Corpus(Path(root), pd.DataFrame(rows), *(empty_table(n) for n in\n"
                        "                  ('phones', 'words', 'notes', 'events')))\n",
}


def test_the_checks_fail_wrong_solutions(tmp_path):
    """A student's folder of plausible but wrong solutions: every exercise's check fails."""
    import subprocess
    import sys

    for name, text in WRONG.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "exercise_",
                             str(Path(__file__))], capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "WMLIB_SOLUTIONS": str(tmp_path), "PYTHONPATH": str(ROOT)})
    assert "3 failed" in result.stdout, result.stdout[-3000:]
