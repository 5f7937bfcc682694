"""Exercise 7.1 (chapter "Dreams"). Do the dreams keep the key better than a random walk from the last note?

In the chapter's dream study (`coherence.DreamStudy.for_book(profile=profile)`), compare the share of voiced dreamed
music tokens whose note is in the context's key, for the dreams at the book's temperature and for a random walk
from the context's last note.

Return a dict:
    "dream", "random walk": the in-key share;
    "difference", "low", "high": dream minus random walk, paired over the same windows, with its 95% interval.
Tolerance: 0.02 on shares and the difference, 0.03 on the interval's ends.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch07_key
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 7.1: compute the answer (see the docstring above)")
