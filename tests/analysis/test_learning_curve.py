"""The learning curve's paired differences and what the book says of them, on hits we planted."""
import numpy as np
import pandas as pd
import pytest

from wmlib.analysis import learning_curve


def planted_hits():
    """Two sets; on "real", the long schedule's last checkpoint answers every query the short run answers and a
    tenth more; on "test", the two are the same."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 25)
    short = rng.uniform(size=groups.size) < 0.4
    longer = short | (rng.uniform(size=groups.size) < 0.1)
    copy = rng.uniform(size=groups.size) < 0.3
    return {("real", "r @ 8000", 1): (longer, groups), ("real", "r (finished 1300) @ 1300", 1): (short, groups),
            ("real", "copy last token", 1): (copy, groups),
            ("test", "r @ 8000", 1): (short, groups), ("test", "r (finished 1300) @ 1300", 1): (short, groups)}


def test_paired_verdicts_and_the_sentences_the_book_prints():
    differences = learning_curve.curve_differences(
        planted_hits(), [("r @ 8000", "r (finished 1300) @ 1300"), ("r @ 8000", "copy last token")])
    real = differences[(differences["set"] == "real") & (differences["other"] == "r (finished 1300) @ 1300")].iloc[0]
    assert real["verdict"] == "beats" and real["low"] > 0
    same = differences[differences["set"] == "test"].iloc[0]
    assert same["difference"] == 0 and same["verdict"] == "not distinguishable from"
    assert len(differences) == 3, "a pair missing from a set is skipped"
    lines = learning_curve.curve_findings(differences, ["r"])
    assert lines[0].startswith("r, real: 8000 steps beats the finished 1300-step schedule (top-1 difference +")
    assert "not distinguishable from" in lines[1]


def test_curve_differences_refuse_methods_on_other_queries():
    hits = planted_hits()
    hits["real", "other", 1] = (hits["real", "copy last token", 1][0], np.roll(hits["real", "r @ 8000", 1][1], 1))
    with pytest.raises(AssertionError, match="same queries"):
        learning_curve.curve_differences(hits, [("r @ 8000", "other")])


def test_measured_curve_names_the_command_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/data_curve.py"):
        learning_curve.measured_curve(tmp_path)
    table = pd.DataFrame({"set": ["real"], "method": ["r @ 8000"], "horizon": [1], "top1": [0.5], "top1_low": [0.4],
                          "top1_high": [0.6], "recipe": ["r"], "step": [8000]})
    table.to_csv(tmp_path / "data_curve.csv", index=False)
    learning_curve.curve_differences(planted_hits(), [("r @ 8000", "copy last token")]).to_csv(
        tmp_path / "data_curve_differences.csv", index=False)
    curve, differences = learning_curve.measured_curve(tmp_path)
    assert curve["step"].iloc[0] == 8000 and differences["verdict"].iloc[0] == "beats"
