"""Exercise 4.1 (chapter "Pitch and energy"). Which part of the model holds a melody's pitch best?

Probe every part of the default model (the rows "world model: <part>" of `ProbeStudy.load(profile)`) for
`pitch_music` with the chapter's linear probe and settings.

Return a dict:
    "best_part": the part with the highest in-distribution R² (without the "world model: " prefix);
    "r2": its R²;  "feature_r2": the R² of the part the chapters lead with, "feature".
Tolerance: 0.02 on each R²; the part exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch04_pitch_part
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 4.1: compute the answer (see the docstring above)")
