"""Exercise 11.2 (chapter "Representational similarity").

Is the model more like the log-mel it reads than its random initialisation is?

Write linear CKA yourself and compute it on the chapter's stimuli between the log-mel encoder ("log-mel") and the
default model's default layer, and between the log-mel and the model at step 0.

Return a dict:
    "model", "random init": linear CKA with the log-mel.
Tolerance: 0.02 on each.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch11_cka
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 11.2: compute the answer (see the docstring above)")
