"""The book's probing study: which tokens, which representations, which targets; tables in the CPC form.

A chapter calls three things::

    study = ProbeStudy.load()                                  # tokens + every representation (cached)
    results = study.run(targets=PITCH_TARGETS)                 # tidy rows (wmlib.analysis.probes.probe_target)
    cpc_table(results, "r2")                                   # rows: representations, columns: targets x setting

The rows of the CPC-style table (van den Oord et al. 2018, table 1), all probed on the same tokens:

- ``random init``: the default model's own weights at step 0, its full feature;
- ``log-mel`` and ``MFCC``: the token and the 3 tokens before it, stacked;
- ``masked autoencoder``: its last layer (it reads the future too: an advantage, said where it matters);
- ``world model: <part>``: every part of the default model (:data:`wmlib.analysis.representations.PART_NAMES`);
- ``supervised``: a two-hidden-layer network trained on the labels from the stacked log-mel: an upper bound for
  this input and context.

Used by the chapters "Pitch and energy" and "Phones, sources and voices".
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet
from wmlib.model.bootstrap import attach

from .probes import PER_TOKEN, acoustic_types, paired_probe_difference, probe_target
from .representations import Representations, baseline_representations, model_representations, select_utterances
from .targets import get_target

#: Utterances probed per (source, in-distribution or held-out) group, per profile; chosen with seed 0.
PROBE_UTTERANCES = {"tiny": 40, "default": 40, "large": 120}
#: In-distribution tokens per probe at most (whole utterances), per profile.
MAX_TOKENS = {"tiny": None, "default": 2000, "large": 20_000}
#: Folds of the grouped cross-validation, per profile (each number: folds x seeds probes).
FOLDS = {"tiny": 3, "default": 2, "large": 5}
#: Probes run at once by :meth:`ProbeStudy.run`, one thread each (their numbers do not depend on it).
PROBE_JOBS = max(1, min(8, os.cpu_count() or 1))
#: Utterances per group of the probe tokens whose prediction states are computed along the horizon.
HORIZON_UTTERANCES = {"tiny": 40, "default": 15, "large": 40}
#: The model whose parts the study probes, and its random-init control (step 0 of the same run).
STUDY_MODEL = "transformer-contrastive"


@dataclass
class ProbeStudy:
    """The probe tokens and every representation of them.

    Attributes:
        tokens: the probed tokens (whole utterances of every source, in-distribution and held-out).
        features: row name -> ``(N, D)`` array (the rows of :func:`cpc_table`, in order).
        types: acoustic units per token (k-means of the log-mel), the control task's input types.
        profile: the corpus profile.
        seconds: how long loading took (representations included).
        comparison_rows: rows of the book's other models, at equal training (every part of the RSSM, the
            reconstruction transformer's feature, the default model's feature at the same step); :meth:`run`
            probes them only when asked by name.
    """

    tokens: TokenSet
    features: dict[str, np.ndarray]
    types: np.ndarray
    profile: str
    seconds: dict = field(default_factory=dict)
    comparison_rows: list = field(default_factory=list)

    @classmethod
    def load(cls, profile: str | None = None, models: dict | None = None, progress: bool = False) -> ProbeStudy:
        """The book's study for ``profile``: its probe tokens (the clean generated corpus, whose labels are exact;
        randomized copies and real recordings are the chapter "Real sound"'s), the baselines, the random-init
        control, the masked autoencoder, every part of the default model (``models``: extra ``name -> run or
        checkpoint dir``, whose ``feature`` part is added as row ``name``) and the comparison rows
        (:attr:`comparison_rows`)."""
        from wmlib.data.features import load_tokens
        from wmlib.data.profiles import get_profile
        from wmlib.model.runs import COMPARISON_STEPS, equal_training_checkpoint, run_dir

        profile = get_profile(profile).name
        start = time.perf_counter()
        tokens = load_tokens(profile, progress=progress)
        tokens = tokens.select(tokens.labels["domain"] == "generated")  # exact labels (real sound: its chapter)
        tokens = select_utterances(tokens, PROBE_UTTERANCES[profile], seed=0)
        baselines = baseline_representations(tokens)
        directory = run_dir(STUDY_MODEL, profile)
        features = {"random init": model_representations(directory / "checkpoints" / "step-000000", tokens, profile,
                                                         progress=progress)["feature"],
                    "log-mel": baselines["log-mel"], "MFCC": baselines["MFCC"]}
        mae = model_representations(run_dir("masked-autoencoder", profile), tokens, profile, progress=progress)
        features["masked autoencoder"] = mae.parts[max(mae.parts, key=lambda k: int(k.split("_")[1]))]
        world = model_representations(directory, tokens, profile, progress=progress)
        features.update({f"world model: {part}": array for part, array in world.parts.items()})
        for name, path in (models or {}).items():
            features[name] = model_representations(path, tokens, profile, progress=progress)["feature"]
        main_rows = list(features)
        step = COMPARISON_STEPS[profile]
        equal = model_representations(equal_training_checkpoint(profile), tokens, profile, progress=progress)
        features[f"world model @{step}: feature"] = equal["feature"]
        rssm = model_representations(run_dir("rssm-contrastive", profile), tokens, profile, progress=progress)
        features.update({f"RSSM @{step}: {part}": array for part, array in rssm.parts.items()})
        reconstruction = model_representations(run_dir("transformer-reconstruction", profile), tokens, profile,
                                               progress=progress)
        features[f"reconstruction @{step}: feature"] = reconstruction["feature"]
        loaded = time.perf_counter()
        types = acoustic_types(baselines["log-mel"][:, -tokens.mel[0].size:], count=100, seed=0)
        return cls(tokens, features, types, profile,
                   {"representations": loaded - start, "types": time.perf_counter() - loaded},
                   [row for row in features if row not in main_rows])

    def add(self, name: str, representation: Representations | np.ndarray, part: str = "feature") -> None:
        """Add a row: an array, or one part of a :class:`Representations`."""
        array = representation[part] if isinstance(representation, Representations) else representation
        assert len(array) == len(self.tokens.mel), f"{name}: {len(array)} rows for {len(self.tokens.mel)} tokens"
        self.features[name] = np.asarray(array, dtype=np.float32)

    def run(self, targets, rows=None, probe: str = "linear", seeds=(0, 1, 2), control=(), mdl=(),
            supervised: bool = True, progress: bool = False) -> pd.DataFrame:
        """Probe every row (default: all of :attr:`features`) for every target; plus, with ``supervised``, the
        supervised network on the stacked log-mel (row ``supervised``).

        Args:
            targets: registered target names.
            rows: names of :attr:`features` (default: all but :attr:`comparison_rows`).
            probe: ``"linear"`` or ``"mlp"`` (:func:`~wmlib.analysis.probes.make_probe`).
            seeds: seeds of the grouped cross-validation.
            control: the targets that also get a control task (acoustic units as types; shuffled labels for
                regression targets), with the first seed: they double the cost of a probe.
            mdl: the classification targets that also get their online code length (rows other than
                ``supervised``).
            supervised: add the supervised row.

        Returns:
            Tidy rows of :func:`~wmlib.analysis.probes.probe_target` with a ``seconds`` column (time per probe).
        """
        rows = [row for row in self.features if row not in self.comparison_rows] if rows is None else list(rows)
        jobs = [(row, target, probe) for target in targets for row in rows]
        if supervised:
            jobs += [("supervised", target, "supervised") for target in targets]
        labels = self.tokens.labels  # whole: a target of your own may read any column
        # Target objects, not names: a target registered in this process (a notebook) is unknown to the workers
        calls = [((self.features["log-mel" if row == "supervised" else row], labels, get_target(target), kind),
                  dict(seeds=seeds, representation=row, folds=FOLDS[self.profile],
                       control=target in control and row != "supervised", control_types=self.types,
                       mdl=target in mdl and row != "supervised", max_tokens=MAX_TOKENS[self.profile]))
                 for row, target, kind in jobs]
        return run_probes(calls, progress)


def run_probes(calls: list, progress: bool = False) -> pd.DataFrame:
    """Run ``probe_target(*args, **kwargs)`` for every ``(args, kwargs)`` of ``calls``, :data:`PROBE_JOBS` at a
    time in worker processes (one thread each: the numbers do not depend on how many run at once); their rows
    concatenated in the order of ``calls``, with the columns ``seconds`` and ``call`` (the index in ``calls``)."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    jobs = min(PROBE_JOBS, len(calls))
    tables = Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
        delayed(_timed_probe)(*args, **kwargs) for args, kwargs in calls)
    tables = [table.assign(call=index)
              for index, table in enumerate(tqdm(tables, total=len(calls), desc="probes", disable=not progress))]
    combined = pd.concat(tables, ignore_index=True)
    # concat drops attrs: keep every probe's per-token scores, for paired verdicts
    attach(combined, PER_TOKEN, {key: value for table in tables for key, value in table.attrs[PER_TOKEN].items()})
    return combined


def _timed_probe(*args, **kwargs) -> pd.DataFrame:
    """:func:`~wmlib.analysis.probes.probe_target` on one thread (so that its numbers do not depend on how many
    probes run at once), with a ``seconds`` column."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    start = time.perf_counter()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            table = probe_target(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)
    return table.assign(seconds=time.perf_counter() - start)


def settings(study: ProbeStudy) -> str:
    """One sentence on how every number of the study is made, with this profile's sizes (for the chapters)."""
    folds, cap = FOLDS[study.profile], MAX_TOKENS[study.profile]
    labels = study.tokens.labels
    return (f"{labels['utt_id'].nunique()} utterances ({len(labels):,} tokens) are probed; each probe reads at most "
            f"{'all' if cap is None else f'{cap:,}'} in-distribution tokens (whole utterances, seed 0) in {folds} "
            f"folds grouped by utterance, repeated with 3 seeds for the tables ({folds * 3} probes per number) and "
            "1 seed along training and the horizon; intervals: 95% bootstrap over utterances, 1,000 resamples.")


def headline_metric(target: str) -> str:
    """``r2`` for regression targets, ``accuracy`` for classification."""
    return "r2" if get_target(target).kind == "regression" else "accuracy"


def cpc_table(results: pd.DataFrame, setting: str = "in-distribution", digits: int = 2,
              paired_row: str | None = "world model: feature") -> pd.DataFrame:
    """The CPC-style table for one ``setting`` (``in-distribution`` or ``held-out``): one row per representation,
    one column per target, each cell ``value [low, high]`` (the headline metric: R² or accuracy, 95% CI over
    utterances); chance and majority levels as extra rows for classification targets (in-distribution); and, for
    ``paired_row``, its paired difference with the better hand-made baseline of each column
    (:func:`~wmlib.analysis.probes.paired_probe_difference`)."""
    cells = {}
    order = list(dict.fromkeys(results["representation"]))
    for (target, rows_setting), part in results.groupby(["target", "setting"], sort=False):
        part = part[part["metric"] == headline_metric(target)]
        if rows_setting != setting or part.empty:
            continue
        column = f"{target} ({'R²' if headline_metric(target) == 'r2' else 'accuracy'})"
        cells[column] = {row.representation: f"{row.value:.{digits}f} [{row.low:.{digits}f}, {row.high:.{digits}f}]"
                         for row in part.itertuples()}
    table = pd.DataFrame(cells).reindex(order)
    for level in ("majority", "chance"):
        chosen = results[(results["setting"] == level) & (results["representation"] == order[0])]
        row = {}
        for target in chosen["target"].unique():
            value = chosen[chosen["target"] == target]["value"].iloc[0]
            for column in table.columns:
                if column.startswith(f"{target} (") and setting == "in-distribution":
                    row[column] = f"{value:.{digits}f}"
        if row:
            table.loc[level] = pd.Series(row)
    if paired_row in order and PER_TOKEN in results.attrs:
        row = {}
        for column in table.columns:
            target = column.rsplit(" (", 1)[0]
            if (paired_row, target, setting) in results.attrs[PER_TOKEN]:
                best = best_baseline(results, target, setting)["representation"]
                result = paired_probe_difference(results, paired_row, best, target, setting)
                row[column] = f"{result} vs {best}"
        if row:
            table.loc[f"{paired_row} − better baseline"] = pd.Series(row)
    return table.fillna("")


def selectivity(results: pd.DataFrame) -> pd.DataFrame:
    """Per representation and classification target: task accuracy, control accuracy and their difference
    (Hewitt & Liang's selectivity), in-distribution."""
    part = results[(results["metric"] == "accuracy") & results["setting"].isin(["in-distribution", "control"])]
    wide = part.pivot_table(index=["representation", "target"], columns="setting", values="value", sort=False)
    wide["selectivity"] = wide["in-distribution"] - wide["control"]
    return wide.reset_index()


def best_baseline(results: pd.DataFrame, target: str, setting: str = "in-distribution",
                  baselines=("log-mel", "MFCC")) -> pd.Series:
    """The row of the better of the hand-made baselines for ``target``."""
    metric = headline_metric(target)
    part = results[(results["target"] == target) & (results["setting"] == setting) & (results["metric"] == metric)
                   & results["representation"].isin(baselines)]
    return part.loc[part["value"].idxmax()]


def verdicts(results: pd.DataFrame, row: str, targets, setting: str = "in-distribution") -> list[str]:
    """One sentence per target: does ``row`` beat, lose to, or not differ measurably from the better hand-made
    baseline?  Decided by their paired difference on the same tokens (:func:`~wmlib.analysis.probes.
    paired_probe_difference`), never by whether two intervals overlap."""
    lines = []
    for target in targets:
        metric = headline_metric(target)
        mine = results[(results["representation"] == row) & (results["target"] == target)
                       & (results["setting"] == setting) & (results["metric"] == metric)]
        if mine.empty:
            continue
        mine, other = mine.iloc[0], best_baseline(results, target, setting)
        result = paired_probe_difference(results, row, other["representation"], target, setting)
        name = "R²" if metric == "r2" else "accuracy"
        lines.append(f"**{target}** ({setting}): {row} {result.verb} {other['representation']} — {name} "
                     f"{mine['value']:.2f} against {other['value']:.2f}, difference {result}.")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Along training and along the prediction horizon


def along_training(study: ProbeStudy, targets, model: str = STUDY_MODEL, part: str = "feature",
                   seeds=(0,), progress: bool = False) -> pd.DataFrame:
    """The same linear probes on ``part`` of every permanent checkpoint of ``model`` (step 0 = random init): when
    does each property appear?  Rows of :func:`~wmlib.analysis.probes.probe_target` plus ``step``."""
    from wmlib.model.checkpoints import list_checkpoints
    from wmlib.model.runs import run_dir

    calls, steps = [], []
    for step, directory in list_checkpoints(run_dir(model, study.profile)):
        features = model_representations(directory, study.tokens, study.profile, progress=progress)[part]
        for target in targets:
            calls.append(((features, study.tokens.labels, get_target(target)),
                          dict(seeds=seeds, representation=f"step {step}", folds=FOLDS[study.profile],
                               max_tokens=MAX_TOKENS[study.profile])))
            steps.append(step)
    return _tagged(run_probes(calls), "step", steps)


def _tagged(table: pd.DataFrame, column: str, values: list) -> pd.DataFrame:
    """``table`` (from :func:`run_probes`) with ``column`` set to ``values[call]``."""
    return table.assign(**{column: np.asarray(values)[table["call"].to_numpy()]})


def shift_within_utterances(features: np.ndarray, labels: pd.DataFrame, shift: int) -> np.ndarray:
    """Row t gets row ``t - shift`` of the same utterance (NaN where the utterance has no such token)."""
    from .representations import utterance_slices

    out = np.full(features.shape, np.nan, np.float32)
    for _, rows in utterance_slices(labels):
        if rows.stop - rows.start > shift:
            out[rows.start + shift : rows.stop] = features[rows.start : rows.stop - shift]
    return out


def along_horizon(study: ProbeStudy, targets, horizons=(1, 2, 4, 8), model: str = STUDY_MODEL,
                  seeds=(0,)) -> pd.DataFrame:
    """Does the model's *prediction* carry the future?  For token t and horizon h, linear probes read t's label from

    - ``imagined``: the transformer's state after observing tokens <= t - h and imagining the rest (open loop);
    - ``observed at t-h``: its state after token t - h (what it knew when it began to imagine);
    - ``log-mel at t-h``: the stacked log-mel baseline at t - h.

    The prediction states are computed (and cached) for a seeded subset of the probe utterances
    (:data:`HORIZON_UTTERANCES` per group); at each horizon the three rows use the same tokens (those with a state at
    that horizon).  Rows of :func:`~wmlib.analysis.probes.probe_target` plus ``horizon``.
    """
    from wmlib.model.runs import run_dir

    from .representations import horizon_representations

    subset = select_utterances(study.tokens, HORIZON_UTTERANCES[study.profile], seed=0)
    inside = study.tokens.labels["utt_id"].isin(set(subset.labels["utt_id"])).to_numpy()
    states = horizon_representations(run_dir(model, study.profile), subset, horizons, study.profile)
    logmel = study.features["log-mel"][inside]
    calls, tags = [], []
    for h in horizons:
        sources = {"imagined": states[h], "observed at t-h": states[f"observed {h}"],
                   "log-mel at t-h": shift_within_utterances(logmel, subset.labels, h)}
        valid = np.all([np.isfinite(array).all(axis=1) for array in sources.values()], axis=0)
        labels = subset.labels[valid].reset_index(drop=True)
        for name, array in sources.items():
            for target in targets:
                calls.append(((array[valid], labels, get_target(target)),
                              dict(seeds=seeds, representation=name, folds=FOLDS[study.profile],
                                   max_tokens=MAX_TOKENS[study.profile])))
                tags.append(h)
    return _tagged(run_probes(calls), "horizon", tags)


def confusion(study: ProbeStudy, row: str, target: str, seed: int = 0) -> pd.DataFrame:
    """Row-normalised confusion matrix (truth x prediction) of the linear probe's grouped-CV predictions of
    ``target`` from ``row``, in-distribution tokens; classes ordered by frequency."""
    from sklearn.metrics import confusion_matrix

    from .probes import grouped_cv_predict, subsample_utterances

    values, mask = get_target(target)(study.tokens.labels)
    groups = study.tokens.labels["utt_id"].to_numpy()
    strata = study.tokens.labels[get_target(target).strata].to_numpy()
    inside = np.flatnonzero(mask & (study.tokens.labels["split"].to_numpy() != "heldout"))
    if MAX_TOKENS[study.profile] is not None and len(inside) > MAX_TOKENS[study.profile]:
        inside = subsample_utterances(inside, groups, MAX_TOKENS[study.profile], seed=0, strata=strata,
                                      per_turn=FOLDS[study.profile])
    predicted, _ = grouped_cv_predict(study.features[row][inside], values[inside], groups[inside], "classification",
                                      folds=FOLDS[study.profile], seed=seed, strata=strata[inside])
    classes, counts = np.unique(values[inside], return_counts=True)
    classes = classes[np.argsort(-counts, kind="stable")]
    matrix = confusion_matrix(values[inside], predicted, labels=classes).astype(float)
    return pd.DataFrame(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), index=classes, columns=classes)
