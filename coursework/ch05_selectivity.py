"""Exercise 5.2 (chapter "Phones, sources and voices").

Whose phone probe is more selective, the model's or the log-mel's?

Selectivity (Hewitt & Liang) is the probe's accuracy on phones minus its accuracy on the control task (each acoustic
unit of the log-mel given a random phone). Compute it for "world model: feature" and "log-mel".

Return a dict:
    "model", "log-mel": selectivity (in-distribution accuracy minus control accuracy);
    "more_selective": "model" or "log-mel".
Tolerance: 0.02 on each selectivity; the winner exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch05_selectivity
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 5.2: compute the answer (see the docstring above)")
