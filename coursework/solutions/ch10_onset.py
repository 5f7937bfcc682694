"""Exercise 10.1 — reference solution: scored fairly (balanced accuracy, against shuffled labels), can a linear
probe tell a note's first token from the rest of the note?"""
import numpy as np

from wmlib.analysis import probing
from wmlib.analysis.applications import balanced_accuracy
from wmlib.analysis.probes import grouped_cv_predict


def note_onset(labels):
    """1 for a voiced music token that starts a note, 0 for one that continues it; mask: voiced music tokens."""
    voiced = labels["voiced"].to_numpy(dtype=bool) & np.isfinite(labels["midi_pitch"].to_numpy())
    note = np.round(labels["midi_pitch"].fillna(-1).to_numpy())
    same_utterance = labels["utt_id"].eq(labels["utt_id"].shift()).to_numpy()
    continues = same_utterance & np.r_[False, voiced[:-1]] & (np.r_[np.nan, note[:-1]] == note)
    return (~continues).astype(int), (labels["source"].to_numpy() == "music") & voiced


def answer(profile: str = "default") -> dict:
    study = probing.ProbeStudy.load(profile)
    labels = study.tokens.labels
    values, mask = note_onset(labels)
    mask &= labels["split"].to_numpy() != "heldout"
    truth, groups = values[mask], labels["utt_id"].to_numpy()[mask]
    result = {}
    for name, row in (("model", "world model: feature"), ("log-mel", "log-mel")):
        predicted, _ = grouped_cv_predict(study.features[row][mask], truth, groups, "classification")
        result[name] = balanced_accuracy(truth, predicted)
    shuffled = np.random.default_rng(0).permutation(truth)
    predicted, _ = grouped_cv_predict(study.features["world model: feature"][mask], shuffled, groups,
                                      "classification")
    result["shuffled"] = balanced_accuracy(shuffled, predicted)
    return result
