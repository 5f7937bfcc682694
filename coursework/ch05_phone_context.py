"""Exercise 5.1 (chapter "Phones, sources and voices"). Does more past close the gap to the model on phones?

The chapter's log-mel row stacks each token with the 3 before it. Stack it with none and with the 15 before it
(1 and 16 tokens, within each utterance) and probe `phone` on the tokens of `ProbeStudy.load(profile)` as the
chapter does, beside the model's feature.

Return a dict:
    "model", "log-mel 1", "log-mel 16": in-distribution phone accuracy;
    "difference", "low", "high": model minus log-mel 16, paired over the same tokens, with its 95% interval.
Tolerance: 0.02 on accuracies and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch05_phone_context
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 5.1: compute the answer (see the docstring above)")
