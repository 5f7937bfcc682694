"""Exercise 6.1 (chapter "Real sound"). One token ahead on real speech it never heard, does the model beat copying?

Score the default model and the baselines by next-token top-1 retrieval on the set "real speech (held out)" of
`wmlib.analysis.real_sound.EVALUATION_SETS` (as many windows as the chapter: `RETRIEVAL_WINDOWS[profile]`).

Return a dict:
    "model", "copy last token": top-1 at horizon 1;
    "difference", "low", "high": model minus copying, paired over the same queries, with its 95% interval.
Tolerance: 0.02 on top-1 and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch06_real_speech
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 6.1: compute the answer (see the docstring above)")
