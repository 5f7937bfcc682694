"""The book's findings, glued: each chapter computes its headline numbers and pastes them into its prose, its
takeaways, the front page and the closing chapter (myst-nb ``glue``), so that no number in the text is typed.

A *comparison* is the book's unit of a finding: the model's number, the strongest baseline's (chosen by its own
number), the model's random initialisation, and the paired differences against both (:mod:`wmlib.model.bootstrap`).
:func:`comparison_texts` turns one into the strings the pages paste; :func:`glue_all` glues them under
``<key>_<field>`` (fields: :data:`FIELDS`).  Cost tables are glued as ``cost`` for the appendix page.

The functions below build comparisons from each chapter's tables (retrieval, probes, RSA); they are plain
functions of those tables, tested without a book build.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wmlib.analysis.real_sound import interval
from wmlib.model.bootstrap import PairedDifference

#: The book's headline findings, as the front page and the closing chapter paste them: name -> (the chapter that
#: computes and glues it, its glue key).  ``python -m wmlib findings`` prints them from a build.
HEADLINES = {
    "Next token, generated test split": ("03_training_and_prediction", "next_token"),
    "Next token, real telephone speech (held out)": ("06_real_sound", "real_speech"),
    "Next token, real spoken words (held out)": ("06_real_sound", "real_words"),
    "Next token, real music (held out)": ("06_real_sound", "real_music"),
    "Music pitch, linear probe (R²)": ("04_pitch_and_energy", "pitch_music"),
    "Energy, linear probe (R²)": ("04_pitch_and_energy", "energy"),
    "Phone class, linear probe (accuracy)": ("05_phones_sources_and_voices", "phone_class"),
    "Pitch geometry, RSA (Spearman)": ("11_representational_similarity", "rsa_pitch"),
    "Sparse features that match a label (share)": ("14_sparse_features", "sparse_share"),
}

#: the strings :func:`comparison_texts` makes of a :class:`Comparison`
FIELDS = ("what", "model", "baseline_name", "baseline", "versus_baseline", "verdict", "outcome", "random",
          "versus_random", "random_verdict", "random_outcome")


@dataclass(frozen=True)
class Comparison:
    """One headline number with what it must be read against."""

    what: str               # what is measured, in words ("top-1 of 256, one token ahead, generated test split")
    model: str              # the model's number with its interval, as text
    baseline_name: str      # the strongest baseline (the best by its own number)
    baseline: str           # its number, as text
    versus_baseline: PairedDifference  # model minus baseline, paired
    random: str             # the model's random initialisation, as text
    versus_random: PairedDifference    # model minus random init, paired


def comparison_texts(comparison: Comparison) -> dict[str, str]:
    """The strings of :data:`FIELDS` for one comparison."""
    return {"what": comparison.what, "model": comparison.model, "baseline_name": comparison.baseline_name,
            "baseline": comparison.baseline, "versus_baseline": str(comparison.versus_baseline),
            "verdict": comparison.versus_baseline.verb, "outcome": outcome(comparison.versus_baseline),
            "random": comparison.random, "versus_random": str(comparison.versus_random),
            "random_verdict": comparison.versus_random.verb, "random_outcome": outcome(comparison.versus_random)}


def outcome(result: PairedDifference) -> str:
    """The verdict for a table cell: ``beats``, ``loses to`` or ``not distinguishable``."""
    return "not distinguishable" if result.verdict == "not distinguishable from" else result.verdict


def glue_all(key: str, texts: dict[str, str]) -> None:
    """Glue every text as ``<key>_<field>`` without displaying it (for a ``remove-cell``)."""
    from myst_nb import glue

    for field, text in texts.items():
        glue(f"{key}_{field}", text, display=False)


def findings_table(comparisons: dict[str, Comparison]) -> pd.DataFrame:
    """One row per finding: what, the model, the strongest baseline, the paired difference and verdict against it,
    random init and the paired difference against it."""
    rows = []
    for name, comparison in comparisons.items():
        texts = comparison_texts(comparison)
        rows.append({"finding": name, "measure": texts["what"], "model": texts["model"],
                     "strongest baseline": f"{texts['baseline_name']}: {texts['baseline']}",
                     "model − baseline": f"{texts['versus_baseline']} ({texts['outcome']})",
                     "random init": texts["random"],
                     "model − random init": f"{texts['versus_random']} ({texts['random_outcome']})"})
    return pd.DataFrame(rows).set_index("finding")


def read_glued(build: str | Path, chapter: str) -> dict[str, str]:
    """The texts one chapter glued in a build: ``key -> text`` from ``<build>/jupyter_execute/chapters/<chapter>
    .glue.json`` (myst-nb's record of a page's glue).

    Raises:
        FileNotFoundError: no build there, naming the command that makes one.
    """
    import ast
    import json

    path = Path(build) / "jupyter_execute" / "chapters" / f"{chapter}.glue.json"
    if not path.is_file():
        raise FileNotFoundError(f"no glued numbers at {path}: build the book first (`make book` or "
                                "`python -m wmlib book`)")
    texts = {}
    for key, output in json.loads(path.read_text()).items():
        plain = output.get("data", {}).get("text/plain")
        if plain is not None:
            try:
                texts[key] = str(ast.literal_eval(plain))
            except (SyntaxError, ValueError):
                texts[key] = plain
    return texts


def glued_findings(build: str | Path) -> pd.DataFrame:
    """The front page's findings table, read from a build (:data:`HEADLINES`): what the README and bench/README
    quote, so that no number of theirs is typed from another day."""
    rows, cache = [], {}
    for name, (chapter, key) in HEADLINES.items():
        texts = cache.setdefault(chapter, read_glued(build, chapter))
        value = {field: texts.get(f"{key}_{field}", "—") for field in FIELDS}
        rows.append({"finding": name, "the model": value["model"],
                     "strongest baseline": f"{value['baseline_name']}: {value['baseline']}",
                     "model − baseline": f"{value['versus_baseline']} ({value['outcome']})",
                     "random init": value["random"],
                     "model − random init": f"{value['versus_random']} ({value['random_outcome']})"})
    return pd.DataFrame(rows).set_index("finding")


# ----------------------------------------------------------------------------------------------------------------
# Comparisons from the chapters' tables


def retrieval_comparison(table: pd.DataFrame, model: str, random_init: str, what: str, horizon: int = 1,
                         baselines=("copy last token", "linear AR (4 tokens)")) -> Comparison:
    """From a retrieval table cut to one set (:func:`wmlib.model.evaluate.retrieval_table`): top-1 at ``horizon``."""
    from wmlib.model.evaluate import paired

    rows = table[table["horizon"] == horizon].set_index("method")
    strongest = rows.loc[list(baselines), "top1"].idxmax()

    def text(name):
        return interval(*rows.loc[name, ["top1", "top1_low", "top1_high"]])

    return Comparison(what, text(model), strongest, text(strongest), paired(table, model, strongest, horizon),
                      text(random_init), paired(table, model, random_init, horizon))


def probe_comparison(results: pd.DataFrame, row: str, target: str, what: str, setting: str = "in-distribution",
                     baselines=("log-mel", "MFCC"), random_init: str = "random init") -> Comparison:
    """From probe results (:func:`wmlib.analysis.probing.run_probes`): the headline metric of ``target``."""
    from wmlib.analysis.probes import paired_probe_difference
    from wmlib.analysis.probing import headline_metric

    metric = headline_metric(target)
    part = results[(results["target"] == target) & (results["setting"] == setting) & (results["metric"] == metric)]
    part = part.drop_duplicates("representation").set_index("representation")
    strongest = part.loc[list(baselines), "value"].idxmax()

    def text(name):
        return interval(*part.loc[name, ["value", "low", "high"]], digits=2)

    return Comparison(what, text(row), strongest, text(strongest),
                      paired_probe_difference(results, row, strongest, target, setting),
                      text(random_init), paired_probe_difference(results, row, random_init, target, setting))


def rsa_comparison(study, label: str, what: str, model: str = "world model",
                   random_init: str = "random init") -> Comparison:
    """From a :class:`wmlib.analysis.similarity.SimilarityStudy`: Spearman with one label model; the strongest
    baseline is the best other encoder (neither the model nor its random init)."""
    from wmlib.analysis.similarity import paired

    rows = study.labels[study.labels["label"] == label].set_index("encoder")
    others = rows.drop(index=[name for name in (model, random_init) if name in rows.index])
    strongest = others["spearman"].idxmax()

    def text(name):
        return interval(*rows.loc[name, ["spearman", "low", "high"]], digits=2)

    return Comparison(what, text(model), strongest, text(strongest),
                      paired(study, ("labels", model, label), ("labels", strongest, label)),
                      text(random_init), paired(study, ("labels", model, label), ("labels", random_init, label)))


def sparse_comparison(study, what: str = "share of a sparse dictionary's features that match one label "
                      "(held-out F1 ≥ 0.5)") -> Comparison:
    """From a :class:`wmlib.analysis.sparse.study.SparseStudy`: the share of the model's dictionary's features that
    match a label; the baseline is log-mel's dictionary (the only hand-made one), paired over held-out utterances."""
    import numpy as np

    from wmlib.analysis.sparse.labelling import share_difference
    from wmlib.analysis.sparse.study import ROWS

    shares = study.shares()

    def text(name):
        low, high = np.quantile(shares[name][1:], [0.025, 0.975])
        return interval(shares[name][0], low, high, digits=3)  # a fraction, as the other rows' numbers

    model, baseline, random_init = ROWS
    return Comparison(what, text(model), baseline, text(baseline), share_difference(shares, model, baseline),
                      text(random_init), share_difference(shares, model, random_init))
