"""Exercise 5.1 — reference solution: does more past (16 tokens of log-mel) close the gap to the model on phones?"""
from wmlib.analysis import probing
from wmlib.analysis.probes import paired_probe_difference
from wmlib.analysis.representations import baseline_representations


def answer(profile: str = "default") -> dict:
    study = probing.ProbeStudy.load(profile)
    for context in (1, 16):
        study.add(f"log-mel {context}", baseline_representations(study.tokens, context=context)["log-mel"])
    rows = ["world model: feature", "log-mel 1", "log-mel 16"]
    results = study.run(["phone"], rows=rows, supervised=False)
    accuracy = results.query("setting == 'in-distribution' and metric == 'accuracy'").set_index(
        "representation")["value"]
    difference = paired_probe_difference(results, "world model: feature", "log-mel 16", "phone")
    return {"model": accuracy[rows[0]], "log-mel 1": accuracy[rows[1]], "log-mel 16": accuracy[rows[2]],
            "difference": difference.difference, "low": difference.low, "high": difference.high}
