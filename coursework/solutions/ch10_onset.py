"""Exercise 10.1 — reference solution: scored fairly (balanced accuracy, against shuffled labels), can a linear
probe tell a note's first token from the rest of the note?"""
import numpy as np

from wmlib.analysis import probing
from wmlib.analysis.applications import balanced_accuracy
from wmlib.analysis.probes import grouped_cv_predict


def note_onset(labels):
    """1 for a voiced music token that starts a note, 0 for one that continues it; mask: voiced music tokens."""
    pitch = labels["midi_pitch"].where(labels["voiced"].astype(bool)).round()  # NaN where unvoiced
    before = pitch.groupby(labels["utt_id"]).shift()  # the note of the token before, in the same utterance
    starts = (pitch != before).to_numpy()  # NaN != NaN: after an unvoiced token, or the utterance's first
    return starts.astype(int), (labels["source"] == "music").to_numpy() & pitch.notna().to_numpy()


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
