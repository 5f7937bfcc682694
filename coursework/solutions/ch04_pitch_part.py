"""Exercise 4.1 — reference solution: which part of the model holds music pitch best?"""
from wmlib.analysis import probing


def answer(profile: str = "default") -> dict:
    study = probing.ProbeStudy.load(profile)
    parts = [row for row in study.features if row.startswith("world model: ")]
    results = study.run(["pitch_music"], rows=parts, supervised=False)
    r2 = results.query("setting == 'in-distribution' and metric == 'r2'").set_index("representation")["value"]
    best = r2.idxmax()
    return {"best_part": best.removeprefix("world model: "), "r2": r2[best], "feature_r2": r2["world model: feature"]}
