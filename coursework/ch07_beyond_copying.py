"""Exercise 7.2 (chapter "Dreams"). How far ahead does the most likely dream (T = 0) beat copying the last token?

From the chapter's horizon curves (`DreamStudy.horizon_curves`), compare "dream (T=0)" with "copy last token" by
top-1 at every horizon, paired over the same queries.

Return a dict:
    "beats_up_to_ms": the longest horizon (in ms, 40 ms a token) up to which every horizon's paired 95% interval
        lies above zero (0: not even one token);
    "difference_40ms": the paired difference one token ahead.
Tolerance: 0.02 on the difference; the horizon exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch07_beyond_copying
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 7.2: compute the answer (see the docstring above)")
