"""Exercise 9.1 (chapter "Interventions"). Does the model use its pitch direction?

Move the model's state along the pitch probe's direction (the chapter's `interventions.book_setup` and step) and along
a random direction of the same length (`causal_table` with the pitch direction alone), and measure the shift of the
expected pitch of the next token under the model's own prediction.

Return a dict:
    "shift", "random": the mean shift (semitones) under the pitch direction and under the random one;
    "difference", "low", "high": their paired difference over the same windows and its 95% interval.
Tolerance: 0.02 on shifts and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch09_pitch_direction
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 9.1: compute the answer (see the docstring above)")
