"""Exercise 9.2 (chapter "Interventions"). Is the model's answer to the energy direction linear?

With the chapter's set-up, move the state along the energy probe's direction by the chapter's step and by twice it
(`causal_table` with the energy direction alone), and measure the shift of the expected energy of the next token.

Return a dict:
    "shift", "shift_doubled": the mean shift (dB) at the step and at twice the step;
    "ratio": shift_doubled / shift (2: linear).
Tolerance: 0.05 dB on each shift, 0.1 on the ratio.

Check: WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch09_linearity
"""


def answer(profile: str = "default") -> dict:
    """Your answer for the corpus ``profile`` (the check runs it on "tiny"; the book's is "default")."""
    raise NotImplementedError("exercise 9.2: compute the answer (see the docstring above)")
