"""Exercise 4.2 — reference solution: does the model read a token's energy better than its log-mel does?"""
from wmlib.analysis import probing
from wmlib.analysis.probes import paired_probe_difference


def answer(profile: str = "default") -> dict:
    study = probing.ProbeStudy.load(profile)
    rows = ["world model: feature", "log-mel"]
    results = study.run(["energy"], rows=rows, supervised=False)
    r2 = results.query("setting == 'in-distribution' and metric == 'r2'").set_index("representation")["value"]
    difference = paired_probe_difference(results, *rows, "energy")
    return {"model": r2[rows[0]], "log-mel": r2[rows[1]], "difference": difference.difference,
            "low": difference.low, "high": difference.high}
