"""Exercise 9.2 — reference solution: is the model's answer to the energy direction linear — does twice the step
move its expected next energy twice as far?"""
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
    shifts = {}
    for factor in (1, 2):
        table, _ = interventions.causal_table(model, windows, {"energy": setup.directions["energy"]},
                                              {"energy": factor * setup.steps["energy"]}, bank)
        shifts[factor] = float(table["shift"].iloc[0])
    return {"shift": shifts[1], "shift_doubled": shifts[2], "ratio": shifts[2] / shifts[1]}
