"""Exercise 8.1 (chapter "Applications"). In the shortest gap of a melody, does the best dream beat a straight line?

Run the chapter's inpainting (`applications.inpainting_table`, the default model, its candidate bank and window) and
compare "best of 8 dreams by the right side" with "linear interpolation" on music at the shortest gap.

Return a dict:
    "gap_ms": the shortest gap (ms);
    "difference", "low", "high": how much lower the best dream's mel RMSE is than interpolation's (dB; positive: the
        dream is better), paired over the same windows, with its 95% interval.
Tolerance: 0.3 dB on the difference, 0.5 dB on the interval's ends; the gap exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch08_inpainting
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 8.1: compute the answer (see the docstring above)")
