"""Exercise 3.1 (chapter "Training and prediction").

Does a linear autoregression with twice the past catch the model one token ahead?

The chapter's linear AR predicts the next token from the 4 before it. Fit one on 8 tokens (600 training windows of
the model's window length, seed 0; `wmlib.model.evaluate.LinearAutoregression`), and score it and the default model
by next-token top-1 retrieval on the test windows of the clean generated corpus, every query with 8 tokens of past
(`retrieval_table(..., first=7)`), on the same queries and distractors.

Return a dict:
    "model", "linear AR (8 tokens)": top-1 at horizon 1;
    "difference", "low", "high": model minus the AR, paired over the same queries, with its 95% interval.
Tolerance: 0.02 on top-1 and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch03_ar_order
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 3.1: compute the answer (see the docstring above)")
