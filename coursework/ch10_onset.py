"""Exercise 10.1 (chapter "Extending the book").

Scored fairly, can a linear probe tell a note's first token from the rest of the note?

Take the chapter's `note_onset` target (1 for a voiced music token whose note, MIDI pitch rounded, differs from the
token before it in the same utterance or follows an unvoiced token; 0 when it continues the note) on the voiced
music tokens of `ProbeStudy.load(profile)` outside the held-out split. Predict it by grouped cross-validation
(`probes.grouped_cv_predict`, linear, its defaults) from the model's feature, from the log-mel, and from the model's
feature with the labels shuffled across tokens (numpy `default_rng(0).permutation`), and score by balanced accuracy.

Return a dict:
    "model", "log-mel", "shuffled": balanced accuracy.
Tolerance: 0.02 on each.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch10_onset
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 10.1: compute the answer (see the docstring above)")
