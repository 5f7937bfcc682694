"""How long to train, on how much: held-out top-1 along training, recipe by recipe, with paired differences.

A model that memorises its corpus gets better on the generated test and worse on real sound the longer it trains;
a recipe whose data it cannot memorise should rise on both.  :func:`learning_curve` scores every kept checkpoint of
several runs on the same queries (:func:`wmlib.analysis.real_sound.real_retrieval`: the same windows, distractors
and baselines for every checkpoint), and :func:`curve_differences` compares checkpoints by the paired difference
of their top-1 hits over utterances (:func:`wmlib.model.evaluate.paired_difference`), never by whether two
intervals overlap.

Used by ``bench/data_curve.py`` and the chapter "Training and prediction".
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from wmlib.model.bootstrap import PairedDifference
from wmlib.model.evaluate import PER_QUERY, paired_difference

BASELINES = ("copy last token", "linear AR (4 tokens)")
#: where ``bench/data_curve.py`` writes its tables by default (committed: the book shows the last measurement)
BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def checkpoint_label(recipe: str, step: int) -> str:
    """The method name of a recipe's checkpoint in the curve's tables: ``"<recipe> @ <step>"``."""
    return f"{recipe} @ {step}"


def learning_curve(profile: str | None, checkpoints: dict, horizons=(1, 2), sets=None, max_windows: int = 400,
                   n_boot: int = 1000, seed: int = 0, tokens=None) -> tuple[pd.DataFrame, dict]:
    """Top-1 of every checkpoint on every evaluation set, with the baselines, on the same queries.

    Args:
        profile: the corpus whose held-out and test sets are scored (and whose training split fits the linear
            baseline).
        checkpoints: ``(recipe, step) -> checkpoint or run directory``.
        sets: name -> (split, filter) (default: :data:`wmlib.analysis.real_sound.EVALUATION_SETS`).
        max_windows: at most this many 64-token windows per set (a seeded subset).

    Returns:
        ``(table, hits)``: one row per (set, method, horizon) with ``recipe`` and ``step`` (empty for the
        baselines) beside :func:`wmlib.model.evaluate.retrieval_table`'s columns, and the per-query hits for
        :func:`curve_differences`.
    """
    from .real_sound import real_retrieval

    models = {checkpoint_label(recipe, step): path for (recipe, step), path in checkpoints.items()}
    table = real_retrieval(profile, models, horizons, sets=sets, max_windows=max_windows, n_boot=n_boot, seed=seed,
                           tokens=tokens)
    hits = {key: (value["top1"], value["groups"]) for key, value in table.attrs[PER_QUERY].items()}
    where = {checkpoint_label(recipe, step): (recipe, step) for recipe, step in checkpoints}
    table["recipe"] = [where.get(method, (method, None))[0] for method in table["method"]]
    table["step"] = pd.array([where.get(method, (None, None))[1] for method in table["method"]], dtype="Int64")
    return table, hits


def curve_differences(hits: dict, pairs, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired differences of top-1 between methods on every set and horizon of ``hits``.

    Args:
        hits: the second value :func:`learning_curve` returns (``(set, method, horizon) -> (hits, utterances)``).
        pairs: ``(method, other)`` names (:func:`checkpoint_label` or a baseline's).

    Returns:
        One row per (set, horizon, pair): ``difference`` (method − other), ``low``, ``high`` (95%, utterances
        resampled once for both) and ``verdict`` (``beats`` / ``loses to`` / ``not distinguishable from``).
    """
    rows = []
    for set_name, horizon in sorted({(key[0], key[2]) for key in hits}, key=str):
        for method, other in pairs:
            if (set_name, method, horizon) not in hits or (set_name, other, horizon) not in hits:
                continue
            mine, groups = hits[set_name, method, horizon]
            theirs, other_groups = hits[set_name, other, horizon]
            assert (groups == other_groups).all(), "the two methods must answer the same queries"
            result = paired_difference(mine, theirs, groups, n_boot=n_boot, seed=seed)
            rows.append({"set": set_name, "horizon": horizon, "method": method, "other": other,
                         "difference": result.difference, "low": result.low, "high": result.high,
                         "verdict": result.verdict})
    return pd.DataFrame(rows)


def curve_pivot(table: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """Recipe × step rows (baselines first), one ``set, h=H`` column each: ``0.512 [0.480, 0.544]``."""
    from .real_sound import interval

    text = table.assign(column=[f"{s}, h={h}" for s, h in zip(table["set"], table["horizon"])],
                        result=[interval(r[metric], r[f"{metric}_low"], r[f"{metric}_high"])
                                for _, r in table.iterrows()],
                        row=list(table["method"]))
    pivot = text.pivot(index="row", columns="column", values="result")
    return pivot.loc[list(dict.fromkeys(text["row"])), list(dict.fromkeys(text["column"]))]


def measured_curve(folder: str | Path = BENCH_RESULTS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curve and paired differences ``bench/data_curve.py`` last wrote (``data_curve.csv``,
    ``data_curve_differences.csv``): 8,000-step runs cost hours on a 2-core CPU, more than a book build may spend,
    so the book shows this measurement and says so.

    Raises:
        FileNotFoundError: naming the command that measures it.
    """
    folder = Path(folder)
    paths = folder / "data_curve.csv", folder / "data_curve_differences.csv"
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: measure it with `.venv/bin/python bench/data_curve.py`")
    table = pd.read_csv(paths[0])
    table["step"] = table["step"].astype("Int64")
    return table, pd.read_csv(paths[1])


def long_against_short(differences: pd.DataFrame, recipe: str, set_name: str,
                       horizon: int = 1) -> PairedDifference | None:
    """The end of ``recipe``'s long schedule against its finished short one on one set (a row of
    :func:`curve_differences`), or None where the curve holds no such pair."""
    rows = differences[(differences["horizon"] == horizon) & (differences["set"] == set_name)
                       & differences["method"].str.startswith(f"{recipe} @ ")
                       & differences["other"].str.startswith(f"{recipe} (finished")]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return PairedDifference(float(row["difference"]), float(row["low"]), float(row["high"]))


def curve_findings(differences: pd.DataFrame, recipes, horizon: int = 1) -> list[str]:
    """One sentence per recipe and set: does the end of its long schedule beat its finished short run?  Then one
    per finished short run compared with another (the recipes at the book's length)."""
    lines = []
    rows = differences[differences["horizon"] == horizon]
    short = rows[rows["method"].str.contains(r"\(finished") & rows["other"].str.contains(r"\(finished")]
    at_book_length = []
    for row in short.itertuples():
        method, other = row.method.split(" (finished")[0], row.other.split(" (finished")[0]
        at_book_length.append(f"At {row.method.split(' @ ')[1]} steps, {row.set}: {method} {row.verdict} {other} "
                              f"(top-1 difference {row.difference:+.3f} [{row.low:+.3f}, {row.high:+.3f}]).")
    for recipe in recipes:
        longer = rows[rows["method"].str.startswith(f"{recipe} @ ") & rows["other"].str.startswith(
            f"{recipe} (finished")]
        for row in longer.itertuples():
            lines.append(f"{recipe}, {row.set}: {row.method.split(' @ ')[1]} steps {row.verdict} the finished "
                         f"{row.other.split(' @ ')[1]}-step schedule (top-1 difference {row.difference:+.3f} "
                         f"[{row.low:+.3f}, {row.high:+.3f}]).")
    return lines + at_book_length
