"""Exercise 3.1 — reference solution: does a linear AR with twice the past catch the model one token ahead?"""
from wmlib import load_model, load_tokens
from wmlib.model import runs
from wmlib.model.evaluate import GENERATED, Windows, paired, retrieval_table, standard_methods


def answer(profile: str = "default") -> dict:
    tokens = load_tokens(profile, progress=False)
    length = runs.run_config(runs.DEFAULT_MODEL, profile).seq_len
    train = Windows.from_tokens(tokens, "train", length, max_windows=600, seed=0)
    test = Windows.from_tokens(tokens, "test", length, where=GENERATED)
    model = load_model(runs.run_dir(runs.DEFAULT_MODEL, profile))[0]
    methods = standard_methods(train, {"model": model}, horizons=(1,), order=8)
    table = retrieval_table(test, methods, horizons=(1,), first=7, seed=0)  # 8 tokens of past for the AR
    top1 = table.set_index("method")["top1"]
    difference = paired(table, "model", "linear AR (8 tokens)", horizon=1)
    return {"model": top1["model"], "linear AR (8 tokens)": top1["linear AR (8 tokens)"],
            "difference": difference.difference, "low": difference.low, "high": difference.high}
