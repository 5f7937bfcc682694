"""Every verdict of the book comes from a paired difference, never from whether two intervals overlap.

Each verdict site gets the planted case that tells the two apart: utterances differ a lot in difficulty and one
method is a little better on every one of them, so the two methods' own 95% intervals overlap while their paired
difference excludes 0.  A verdict decided by overlap would call it a tie; these tests fail on that."""
import re
from pathlib import Path

import numpy as np
import pandas as pd

from wmlib.model.bootstrap import bootstrap_ci

ROOT = Path(__file__).resolve().parents[2]


def planted(units: int = 30, per_unit: int = 20, seed: int = 0):
    """``(better, worse, groups)``: hits per query; ``better`` = ``worse`` plus a few more hits."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.array([f"u{i}" for i in range(units)]), per_unit)
    difficulty = np.repeat(rng.uniform(0.1, 0.9, units), per_unit)
    worse = (rng.uniform(size=groups.size) < difficulty).astype(float)
    better = np.maximum(worse, rng.uniform(size=groups.size) < 0.08)
    low_better, _ = bootstrap_ci(better, groups)
    _, high_worse = bootstrap_ci(worse, groups)
    assert low_better < high_worse, "the planted case must have overlapping intervals"
    return better, worse, groups


def interval_row(values, groups):
    low, high = bootstrap_ci(values, groups)
    return values.mean(), low, high


def test_retrieval_findings_are_paired():
    from wmlib.model.evaluate import PER_QUERY, compare, findings

    better, worse, groups = planted()
    rows, store = [], {}
    for name, hits in (("model", better), ("copy last token", worse), ("linear AR (4 tokens)", worse)):
        value, low, high = interval_row(hits, groups)
        rows.append({"method": name, "horizon": 1, "top1": value, "top1_low": low, "top1_high": high})
        store[None, name, 1] = {"top1": hits > 0, "top5": hits > 0, "groups": groups}
    table = pd.DataFrame(rows)
    table.attrs[PER_QUERY] = store
    assert compare(table, "model", "copy last token", 1) == "beats"
    assert compare(table, "copy last token", "model", 1) == "loses to"
    assert compare(table, "copy last token", "linear AR (4 tokens)", 1) == "is not distinguishable from"
    assert "model beats copy last token" in findings(table, "model")[0]
    # a table that lost its per-query results says so, rather than falling back on intervals
    bare = pd.DataFrame(rows)
    try:
        compare(bare, "model", "copy last token", 1)
    except AssertionError as error:
        assert "per-unit values" in str(error) and "retrieval_table" in str(error)
    else:
        raise AssertionError("a table without per-query results must not give a verdict")


def test_real_sound_verdicts_cut_one_set_and_pair_it():
    from wmlib.analysis.real_sound import verdict
    from wmlib.model.evaluate import PER_QUERY

    better, worse, groups = planted()
    rows, store = [], {}
    for set_name, (mine, theirs) in (("music", (better, worse)), ("speech", (worse, better))):
        for name, hits in (("model", mine), ("copy last token", theirs)):
            value, low, high = interval_row(hits, groups)
            rows.append({"set": set_name, "method": name, "horizon": 1, "top1": value, "top1_low": low,
                         "top1_high": high})
            store[set_name, name, 1] = {"top1": hits > 0, "top5": hits > 0, "groups": groups}
    table = pd.DataFrame(rows)
    table.attrs[PER_QUERY] = store
    assert verdict(table, "model", "copy last token", "music").verdict == "beats"
    assert verdict(table, "model", "copy last token", "speech").verdict == "loses to"


def test_probe_verdicts_are_paired_for_accuracy_and_r2():
    from wmlib.analysis.probes import PER_TOKEN, paired_probe_difference
    from wmlib.analysis.probing import verdicts

    better, worse, groups = planted()
    truth = np.zeros_like(better)
    rows, store = [], {}
    for name, scores in (("world model: feature", better), ("log-mel", worse), ("MFCC", worse * 0)):
        value, low, high = interval_row(scores, groups)
        rows.append({"representation": name, "target": "source", "setting": "in-distribution",
                     "metric": "accuracy", "value": value, "low": low, "high": high})
        store[name, "source", "in-distribution"] = {"kind": "classification", "scores": scores, "truth": truth,
                                                   "groups": groups}
    results = pd.DataFrame(rows)
    results.attrs[PER_TOKEN] = store
    line = verdicts(results, "world model: feature", ["source"])[0]
    assert "world model: feature beats log-mel" in line, line
    # R²: a regression whose errors shrink a little on every utterance
    rng = np.random.default_rng(3)
    truth = np.repeat(rng.normal(0, 3, 30), 20) + rng.normal(0, 1, 600)
    error = rng.normal(0, 1, 600) * np.repeat(rng.uniform(0.5, 3, 30), 20)
    store = {("a", "pitch", "held-out"): {"kind": "regression", "scores": error * 0.9, "truth": truth,
                                          "groups": groups},
             ("b", "pitch", "held-out"): {"kind": "regression", "scores": error, "truth": truth, "groups": groups}}
    results = pd.DataFrame()
    results.attrs[PER_TOKEN] = store
    result = paired_probe_difference(results, "a", "b", "pitch", "held-out")
    sst = ((truth - truth.mean()) ** 2).sum()
    assert np.isclose(result.difference, ((error**2).sum() - ((0.9 * error) ** 2).sum()) / sst)
    assert result.verdict == "beats"


def test_inpainting_and_few_shot_verdicts_are_paired():
    from wmlib.analysis import applications

    better, worse, groups = planted()
    # inpainting: lower mel error is better; the model's error is the baseline's minus a little on every window
    rng = np.random.default_rng(1)
    hard = np.repeat(rng.uniform(20, 200, 30), 20)
    errors = {"dream forward (T=0)": hard - 3, "copy last token": hard + 50, "linear interpolation": hard}
    rows, store = [], {}
    for method, squared in errors.items():
        low, high = bootstrap_ci(squared, groups)
        rows.append({"source": "music", "gap_ms": 200, "method": method, "mel_rmse_db": np.sqrt(squared.mean()),
                     "mel_rmse_db_low": np.sqrt(low), "mel_rmse_db_high": np.sqrt(high), "top1": 0.5})
        store["music", 200, method] = {"squared": squared, "top1": better, "groups": groups}
    table = pd.DataFrame(rows)
    table.attrs[applications.PER_WINDOW] = store
    assert table.loc[0, "mel_rmse_db_high"] > table.loc[2, "mel_rmse_db_low"], "intervals overlap"
    line = applications.inpainting_findings(table)[0]
    assert "dream forward (T=0) beats linear interpolation" in line, line
    # few-shot: the units are the support draws, the same for every representation
    draws = np.array([0.6, 0.9, 0.5, 0.8, 0.7, 0.95, 0.55, 0.85, 0.65, 0.75])
    rows, store = [], {}
    for name, values in (("model", draws + 0.02), ("log-mel", draws), ("MFCC", draws - 0.1),
                         ("random init", draws - 0.2)):
        low, high = np.quantile(values, [0.025, 0.975])
        rows.append({"representation": name, "test set": "real", "shots": 4, "balanced_accuracy": values.mean(),
                     "balanced_accuracy_low": low, "balanced_accuracy_high": high})
        store[name, "real", 4] = values
    table = pd.DataFrame(rows)
    table.attrs[applications.PER_DRAW] = store
    line = applications.few_shot_findings(table, "model")[0]
    assert "it beats every baseline from 4 examples per class on" in line, line


def test_dream_verdicts_are_paired():
    from wmlib.analysis import coherence

    better, worse, groups = planted()
    rows, store = [], {}
    for horizon in (1, 2):
        for name, hits in (("dream (T=0)", better if horizon == 1 else worse), ("copy last token", worse)):
            value, low, high = interval_row(hits, groups)
            rows.append({"method": name, "horizon": horizon, "top1": value, "top1_low": low, "top1_high": high})
            store[None, name, horizon, "top1"] = (hits, groups)
    curves = pd.DataFrame(rows)
    curves.attrs[coherence.PER_WINDOW] = store
    assert coherence.ahead_of(curves, "dream (T=0)", "copy last token") == 1
    sentence = coherence.beyond_copying(curves)
    assert "beats copy last token up to 1 token" in sentence and "is not distinguishable from" in sentence
    assert list(coherence.verdicts_per_horizon(curves, "dream (T=0)", "copy last token")) == [
        "beats", "not distinguishable from"]


def test_similarity_verdicts_are_paired_on_the_same_resamples():
    from wmlib.analysis.similarity import paired

    rng = np.random.default_rng(2)
    shared = rng.normal(0.3, 0.1, 1001)  # what both encoders' values share, resample by resample
    study = type("Study", (), {})()
    study.draws = {("labels", "world model", "pitch"): shared + 0.02,
                   ("labels", "random init", "pitch"): shared}
    result = paired(study, ("labels", "world model", "pitch"), ("labels", "random init", "pitch"))
    assert result.verdict == "beats" and np.isclose(result.difference, 0.02)
    assert np.quantile(shared[1:] + 0.02, 0.025) < np.quantile(shared[1:], 0.975), "the intervals overlap"


def test_no_verdict_anywhere_compares_one_interval_with_another():
    """Source scan: no module compares one method's interval bound with another's, and no chapter or module
    speaks of ties or of being level (a verdict word that only interval overlap produces)."""
    bound = re.compile(r"""\[\s*f?["'][^"']*_?low["']\s*\]\s*[<>]=?\s*\w+\[\s*f?["'][^"']*_?high["']\s*\]"""
                       r"""|\[\s*f?["'][^"']*_?high["']\s*\]\s*[<>]=?\s*\w+\[\s*f?["'][^"']*_?low["']\s*\]""")
    offenders = []
    for path in sorted((ROOT / "wmlib").rglob("*.py")):
        text = path.read_text()
        offenders += [f"{path.name}: {match.group(0)}" for match in bound.finditer(text)]
        offenders += [f"{path.name}: ties/level" for word in ('"ties with"', '"level with"', "'ties with'")
                      if word in text]
    for path in sorted((ROOT / "chapters").glob("*.md")):
        text = path.read_text()
        offenders += [f"{path.name}: {word}" for word in ("*ties with*", "level with its") if word in text]
    assert not offenders, offenders
    # the scan can fail: the old overlap rule is caught
    assert bound.search('if a["top1_low"] > b["top1_high"]:') and bound.search("mine['high'] < other['low']")
