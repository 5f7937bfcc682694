"""Exercise 4.2 (chapter "Pitch and energy"). Does the model read a token's energy better than the log-mel it was given?

Probe "world model: feature" and "log-mel" of `ProbeStudy.load(profile)` for `energy` (linear, the chapter's
settings) and compare them on the same tokens.

Return a dict:
    "model", "log-mel": in-distribution R²;
    "difference", "low", "high": model minus log-mel, paired over the same tokens, with its 95% interval.
Tolerance: 0.02 on R² and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch04_energy
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 4.2: compute the answer (see the docstring above)")
