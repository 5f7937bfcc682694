"""Exercise 3, reference solution: a corpus loader ``load_folder(root) -> Corpus``.

The layout: ``root/labels.csv`` with columns ``file, source, voice, split`` (one row per audio file, ``file``
relative to ``root``) and the audio files themselves, in any format soundfile reads.  Utterance ids are the file
names without their suffix; durations come from the files' headers; there are no phones, words, notes or events.
"""
from pathlib import Path

import pandas as pd
import soundfile as sf

from wmlib.data.corpus import COLUMNS, OPTIONAL, Corpus, empty_table


def load_folder(root) -> Corpus:
    root = Path(root)
    table = pd.read_csv(root / "labels.csv")
    rows = []
    for row in table.itertuples():
        path = root / row.file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in labels.csv but missing")
        rows.append({"utt_id": Path(row.file).stem, "path": row.file, "source": row.source, "voice": row.voice,
                     "split": row.split, "duration_s": sf.info(str(path)).duration, "text": "", **OPTIONAL})
    utterances = pd.DataFrame(rows, columns=COLUMNS["utterances"])
    return Corpus(root=root, name=root.name, utterances=utterances,
                  **{name: empty_table(name) for name in COLUMNS if name != "utterances"})
