"""Exercise 9.1 — reference solution: does moving the state along the pitch probe's direction move the model's
expected next pitch more than a random direction of the same length?"""
from wmlib import load_model, load_tokens
from wmlib.analysis import interventions
from wmlib.analysis.dreams import CandidateBank
from wmlib.model import runs


def answer(profile: str = "default") -> dict:
    tokens = load_tokens(profile, progress=False)
    model = load_model(runs.run_dir(runs.DEFAULT_MODEL, profile))[0]
    length = runs.run_config(runs.DEFAULT_MODEL, profile).seq_len
    setup = interventions.book_setup(model, tokens, length)
    bank = CandidateBank.from_tokens(model, tokens)
    windows = interventions.causal_windows(tokens, length)
    table, _ = interventions.causal_table(model, windows, {"pitch": setup.directions["pitch"]},
                                          {"pitch": setup.steps["pitch"]}, bank)
    row = table.iloc[0]
    return {"shift": row["shift"], "random": row["random"], "difference": row["difference"],
            "low": row["difference_low"], "high": row["difference_high"]}
