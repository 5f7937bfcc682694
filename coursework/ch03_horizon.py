"""Exercise 3.2 (chapter "Training and prediction"). How far ahead does the model beat copying the last token?

Score the default model and "copy last token" by top-1 retrieval at horizons 1, 2, 4 and 8 tokens on the test windows
of the clean generated corpus (the chapter's queries: `retrieval_table` with its defaults).

Return a dict:
    "h1", "h2", "h4", "h8": the model's top-1 minus copying's at each horizon (paired, same queries);
    "beats_up_to": the largest horizon up to which every horizon's paired 95% interval lies above zero (0: none).
Tolerance: 0.02 on each difference; the horizon exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch03_horizon
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 3.2: compute the answer (see the docstring above)")
