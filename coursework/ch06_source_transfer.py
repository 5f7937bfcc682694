"""Exercise 6.2 (chapter "Real sound").

Trained on generated sound only, whose source probe transfers to real recordings?

On the chapter's source-probe tokens (`real_sound.source_probe_tokens`), fit a linear speech / music / noise probe on
the training split of the model's feature, of its random initialisation (step 0) and of the log-mel, and score it on
the held-out real recordings by balanced accuracy.

Return a dict:
    "model", "random init", "log-mel": balanced accuracy on held-out real tokens;
    "best": the name of the best of the three.
Tolerance: 0.02 on each balanced accuracy; the best exactly.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch06_source_transfer
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 6.2: compute the answer (see the docstring above)")
