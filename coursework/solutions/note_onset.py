"""Exercise 1, reference solution: a probe target ``note_onset``.

Is a music token the first token of a note?  A voiced music token is an onset when the token before it in the same
utterance is unvoiced or sounds another note (MIDI pitch rounded to a semitone).  Defined on voiced music tokens.
"""
import numpy as np

from wmlib.analysis.targets import register_target


@register_target("note_onset", "classification", "music: is the token the first of its note?")
def note_onset(labels):
    voiced = labels["voiced"].to_numpy(dtype=bool) & np.isfinite(labels["midi_pitch"].to_numpy())
    note = np.round(labels["midi_pitch"].fillna(-1).to_numpy())
    same_utterance = labels["utt_id"].eq(labels["utt_id"].shift()).to_numpy()
    previous_voiced = np.r_[False, voiced[:-1]]
    continues = same_utterance & previous_voiced & (np.r_[np.nan, note[:-1]] == note)
    music = labels["source"].to_numpy() == "music"
    return (~continues).astype(int), music & voiced
