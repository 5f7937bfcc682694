"""Exercise 8.1 — reference solution: in the shortest gap of a melody, does the model's best dream beat a straight
line between the two sides?"""
from wmlib import load_model, load_tokens
from wmlib.analysis import applications
from wmlib.analysis.dreams import CandidateBank
from wmlib.model import runs


def answer(profile: str = "default") -> dict:
    tokens = load_tokens(profile, progress=False)
    model = load_model(runs.run_dir(runs.DEFAULT_MODEL, profile))[0]
    bank = CandidateBank.from_tokens(model, tokens)
    window = runs.run_config(runs.DEFAULT_MODEL, profile).seq_len
    table = applications.inpainting_table(model, tokens, profile, bank=bank, window=window)
    gap_ms = int(table["gap_ms"].min())
    best = next(method for method in table["method"] if method.startswith("best of"))
    difference = applications.inpainting_difference(table, "music", gap_ms, best, "linear interpolation")
    return {"gap_ms": gap_ms, "difference": difference.difference, "low": difference.low, "high": difference.high}
