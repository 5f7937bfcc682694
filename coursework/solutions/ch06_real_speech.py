"""Exercise 6.1 — reference solution: one token ahead on real held-out speech, does the model beat copying?"""
from wmlib.analysis import real_sound
from wmlib.model import runs
from wmlib.model.evaluate import paired

SET = "real speech (held out)"


def answer(profile: str = "default") -> dict:
    model = runs.run_dir(runs.DEFAULT_MODEL, profile)
    table = real_sound.real_retrieval(profile, {"model": model}, horizons=(1,),
                                      max_windows=real_sound.RETRIEVAL_WINDOWS[profile],
                                      sets={SET: real_sound.EVALUATION_SETS[SET]})
    top1 = table.set_index("method")["top1"]
    difference = paired(table, "model", "copy last token", horizon=1)
    return {"model": top1["model"], "copy last token": top1["copy last token"], "difference": difference.difference,
            "low": difference.low, "high": difference.high}
