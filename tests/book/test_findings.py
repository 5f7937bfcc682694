"""The book's glued findings: each headline comparison names the strongest baseline by its own number and pairs
the model with it and with its random initialisation."""
import numpy as np
import pandas as pd

from wmlib.book import findings


def _retrieval():
    from wmlib.model.evaluate import PER_QUERY

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 20)
    rows, store = [], {}
    for method, level in (("copy last token", 0.3), ("linear AR (4 tokens)", 0.45), ("model", 0.6),
                          ("model (random init)", 0.1)):
        hits = rng.uniform(size=groups.size) < level
        rows.append({"method": method, "horizon": 1, "top1": hits.mean(), "top1_low": hits.mean() - 0.05,
                     "top1_high": hits.mean() + 0.05})
        store[None, method, 1] = {"top1": hits, "top5": hits, "groups": groups}
    table = pd.DataFrame(rows)
    table.attrs[PER_QUERY] = store
    return table


def test_a_retrieval_comparison_picks_the_strongest_baseline_and_pairs():
    comparison = findings.retrieval_comparison(_retrieval(), "model", "model (random init)", "top-1")
    assert comparison.baseline_name == "linear AR (4 tokens)"
    assert comparison.versus_baseline.verdict == "beats" and comparison.versus_random.verdict == "beats"
    texts = findings.comparison_texts(comparison)
    assert set(texts) == set(findings.FIELDS) and texts["verdict"] == "beats"
    assert texts["model"].count("[") == 1 and texts["versus_baseline"].startswith("+")
    table = findings.findings_table({"next token": comparison})
    assert table.loc["next token", "model − baseline"].endswith("(beats)")


def test_probe_and_rsa_comparisons():
    from wmlib.analysis.probes import PER_TOKEN

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 10)
    truth = np.zeros(300)
    rows, store = [], {}
    for name, level in (("world model: feature", 0.8), ("log-mel", 0.7), ("MFCC", 0.6), ("random init", 0.75)):
        scores = (rng.uniform(size=300) < level).astype(float)
        rows.append({"representation": name, "target": "phone_class", "setting": "in-distribution",
                     "metric": "accuracy", "value": scores.mean(), "low": 0.0, "high": 1.0})
        store[name, "phone_class", "in-distribution"] = {"kind": "classification", "scores": scores,
                                                         "truth": truth, "groups": groups}
    results = pd.DataFrame(rows)
    results.attrs[PER_TOKEN] = store
    comparison = findings.probe_comparison(results, "world model: feature", "phone_class", "accuracy")
    assert comparison.baseline_name == "log-mel" and comparison.random.startswith(f"{rows[3]['value']:.2f}")
    study = type("Study", (), {})()
    study.labels = pd.DataFrame({"encoder": ["world model", "random init", "MFCC", "log-mel"], "label": "pitch",
                                 "spearman": [0.4, 0.45, 0.3, 0.35], "low": 0.0, "high": 1.0})
    shared = rng.normal(0.3, 0.1, 101)
    study.draws = {("labels", name, "pitch"): shared + offset
                   for name, offset in (("world model", 0.0), ("random init", 0.05), ("MFCC", -0.1),
                                        ("log-mel", -0.05))}
    comparison = findings.rsa_comparison(study, "pitch", "Spearman")
    assert comparison.baseline_name == "log-mel" and comparison.versus_baseline.verdict == "beats"
    assert comparison.versus_random.verdict == "loses to"


def test_the_findings_command_reads_a_build(tmp_path, capsys):
    import json

    from wmlib import cli

    assert cli.main(["findings", "--build", str(tmp_path)]) == 2
    assert "build the book first" in capsys.readouterr().err
    folder = tmp_path / "jupyter_execute" / "chapters"
    folder.mkdir(parents=True)
    for chapter, key in set(findings.HEADLINES.values()):
        path = folder / f"{chapter}.glue.json"
        glued = json.loads(path.read_text()) if path.exists() else {}
        glued |= {f"{key}_{field}": {"data": {"text/plain": repr(f"{key}-{field}")}} for field in findings.FIELDS}
        path.write_text(json.dumps(glued))
    assert cli.main(["findings", "--build", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(findings.HEADLINES) + 2
    assert "| Next token, generated test split | next_token-model |" in out and "(next_token-outcome)" in out


def test_the_front_page_and_the_closing_chapter_paste_every_headline():
    root = findings.Path(__file__).resolve().parents[2]
    intro = (root / "intro.md").read_text()
    closing = (root / "chapters" / "12_what_the_model_learned.md").read_text()
    for chapter, key in findings.HEADLINES.values():
        for field in ("model", "baseline_name", "baseline", "versus_baseline", "outcome", "random", "versus_random",
                      "random_outcome"):
            assert f"chapters/{chapter}.md::{key}_{field}:s" in intro, (key, field)
            assert f"{chapter}.md::{key}_{field}:s" in closing, (key, field)
