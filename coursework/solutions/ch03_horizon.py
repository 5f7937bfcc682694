"""Exercise 3.2 — reference solution: how far ahead does the model beat copying the last token?"""
from wmlib import load_model, load_tokens
from wmlib.model import runs
from wmlib.model.evaluate import GENERATED, CopyLast, ModelPredictor, Windows, paired, retrieval_table

HORIZONS = (1, 2, 4, 8)


def answer(profile: str = "default") -> dict:
    tokens = load_tokens(profile, progress=False)
    length = runs.run_config(runs.DEFAULT_MODEL, profile).seq_len
    test = Windows.from_tokens(tokens, "test", length, where=GENERATED)
    model = load_model(runs.run_dir(runs.DEFAULT_MODEL, profile))[0]
    table = retrieval_table(test, {"copy": CopyLast(), "model": ModelPredictor(model)}, HORIZONS, seed=0)
    result, beats = {}, True
    result["beats_up_to"] = 0
    for horizon in HORIZONS:
        difference = paired(table, "model", "copy", horizon)
        result[f"h{horizon}"] = difference.difference
        beats = beats and difference.low > 0
        if beats:
            result["beats_up_to"] = horizon
    return result
