"""Exercise 11.1 (chapter "Representational similarity").

Does the model's pitch RSA depend on the distance that builds its RDM?

On the chapter's stimuli (`rsa.book_stimuli(profile)`), take the default model's default layer
(`encoders.world_model_encoder`, `rsa.embed_stimuli`), keep the stimuli that have a pitch, and build its RDM with
correlation distance and with Euclidean distance; compare each with the pitch RDM (absolute semitone differences)
by Spearman correlation over the pairs.

Return a dict:
    "correlation", "euclidean": Spearman correlation of the model's RDM with the pitch RDM.
Tolerance: 0.02 on each.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch11_distance
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 11.1: compute the answer (see the docstring above)")
