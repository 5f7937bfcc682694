"""Exercise 5.2 — reference solution: is the model's phone probe more selective than the log-mel's?"""
from wmlib.analysis import probing


def answer(profile: str = "default") -> dict:
    study = probing.ProbeStudy.load(profile)
    results = study.run(["phone"], rows=["world model: feature", "log-mel"], control=["phone"], supervised=False)
    table = probing.selectivity(results).set_index("representation")["selectivity"]
    return {"model": table["world model: feature"], "log-mel": table["log-mel"],
            "more_selective": "model" if table["world model: feature"] > table["log-mel"] else "log-mel"}
