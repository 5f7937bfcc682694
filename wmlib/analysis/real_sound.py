"""Does the world model hold up on real recordings?  Retrieval, source transfer and probes on held-out real sound.

The evaluation sets (:data:`EVALUATION_SETS`) are recordings no model trained on: real telephone speech of a
held-out language (Russian) and a held-out speaker (Menardi, Italian), real spoken words of the same held-out
language and of a held-out English reader (KTuberling), two held-out music tracks, and — for comparison —
the test split of the clean generated corpus.  Every model is compared with the same baselines on the same
queries: copy-last-token, a linear autoregression fit on the same training mixture, and the architecture at
random initialisation.

The sim-to-real ablation trains the default model at the comparison budget on three corpora
(:data:`wmlib.model.runs.ABLATION_MODELS` plus the default model's twin on that schedule): clean generated
only / + randomized copies / + real recordings.

Used by the chapter "Real sound".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet
from wmlib.data.profiles import ASTERISK_SPEAKERS, REAL_SPEAKERS

if TYPE_CHECKING:
    from wmlib.model.evaluate import PairedDifference

#: name -> (split, label filter) of the retrieval sets: the held-out telephone prompts (Asterisk), the held-out
#: spoken words (KTuberling: wideband, a word a second), the held-out music tracks, the generated test split
EVALUATION_SETS = {
    "real speech (held out)": ("heldout", {"domain": "real", "source": "speech", "voice": list(ASTERISK_SPEAKERS)}),
    "real words (held out)": ("heldout", {"domain": "real", "source": "speech",
                                          "voice": [name for name in REAL_SPEAKERS if name.startswith("kt_")]}),
    "real music (held out)": ("heldout", {"domain": "real", "source": "music"}),
    "generated (test)": ("test", {"domain": "generated"}),
}
#: utterances per (domain, source) of the training split that the source probe trains on
SOURCE_PROBE_UTTERANCES = {"tiny": 6, "default": 12, "large": 60}
#: at most this many 64-token windows per retrieval set (a seeded subset; the book's time budget)
RETRIEVAL_WINDOWS = {"tiny": None, "default": 60, "large": None}


def ablation_runs(profile: str | None = None) -> dict:
    """The sim-to-real ablation: row name -> run, all on the comparison models' complete schedule."""
    from wmlib.model import runs

    return {"clean generated": runs.run_dir("clean-generated", profile),
            "+ randomized": runs.run_dir("randomized-generated", profile),
            "+ randomized + real": runs.equal_training_checkpoint(profile)}


def real_retrieval(profile: str | None, models: dict, horizons=(1,), length: int = 64, train_windows: int = 600,
                   n_boot: int = 1000, seed: int = 0, sets=None, max_windows: int | None = None,
                   tokens: TokenSet | None = None) -> pd.DataFrame:
    """Next-token retrieval (:func:`wmlib.model.evaluate.retrieval_table`) on every set of :data:`EVALUATION_SETS`.

    Args:
        models: name -> run or checkpoint directory (name ``"... (random init)"`` for a step-0 checkpoint).
        train_windows: training-split windows (every domain: the models' training mixture) that the linear
            autoregression is fit on.
        max_windows: at most this many windows per set (a seeded subset; default: all).
        tokens: the profile's tokens, if already loaded (default: :func:`wmlib.data.features.load_tokens`).

    Returns:
        The retrieval table with a ``set`` column; baselines and models answer the same queries within a set, and
        the per-query results of every set ride along (``attrs``) for paired verdicts
        (:func:`wmlib.model.evaluate.paired` on the table cut to one set).
    """
    from wmlib.data.features import load_tokens
    from wmlib.model.bootstrap import attach
    from wmlib.model.checkpoints import load_model
    from wmlib.model.evaluate import PER_QUERY, Windows, retrieval_table, standard_methods

    tokens = load_tokens(profile, progress=False) if tokens is None else tokens
    train = Windows.from_tokens(tokens, "train", length, max_windows=train_windows, seed=seed)
    methods = standard_methods(train, {name: load_model(path)[0] for name, path in models.items()}, horizons)
    tables, results = [], {}
    for name, (split, where) in (sets or EVALUATION_SETS).items():
        test = Windows.from_tokens(tokens, split, length, where=where, max_windows=max_windows, seed=seed)
        table = retrieval_table(test, methods, horizons, n_boot=n_boot, seed=seed)
        results |= {(name, *key[1:]): value for key, value in table.attrs.pop(PER_QUERY).items()}
        tables.append(table.assign(set=name))
    table = pd.concat(tables, ignore_index=True)
    attach(table, PER_QUERY, results)
    return table


def recording_sets(corpus) -> dict:
    """One retrieval set per held-out real speaker or track (name -> (split, filter)), for
    :func:`real_retrieval`'s ``sets``: where within the held-out recordings a model wins or loses."""
    held = corpus.utterances.query("domain == 'real' and split == 'heldout'")
    return {f"{voice} ({source})": ("heldout", {"domain": "real", "voice": voice})
            for source, voice in held[["source", "voice"]].drop_duplicates().itertuples(index=False)}


def retrieval_along_training(profile: str | None, run_dir, sets=("real speech (held out)", "real words (held out)",
                                                                "real music (held out)"),
                             max_windows: int | None = None, seed: int = 0, min_step: int = 1,
                             tokens: TokenSet | None = None) -> pd.DataFrame:
    """Horizon-1 retrieval of every kept checkpoint of a run from ``min_step`` on, on the chosen sets of
    :data:`EVALUATION_SETS`, with the baselines; the ``method`` of a checkpoint is ``"step N"`` and ``step`` holds N
    (NaN for the baselines)."""
    from wmlib.model.checkpoints import list_checkpoints

    steps = {f"step {step}": (step, path) for step, path in list_checkpoints(run_dir) if step >= max(1, min_step)}
    table = real_retrieval(profile, {name: path for name, (_, path) in steps.items()}, (1,),
                           sets={name: EVALUATION_SETS[name] for name in sets}, max_windows=max_windows, seed=seed,
                           tokens=tokens)
    return table.assign(step=table["method"].map({name: step for name, (step, _) in steps.items()}).astype(float))


def interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """``"0.512 [0.480, 0.544]"``."""
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def retrieval_pivot(table: pd.DataFrame, horizon: int = 1, metric: str = "top1") -> pd.DataFrame:
    """Methods × sets: ``metric`` at ``horizon`` with its 95% CI, as text (methods in the table's order)."""
    rows = table[table["horizon"] == horizon]
    text = rows.assign(result=[interval(r[metric], r[f"{metric}_low"], r[f"{metric}_high"])
                               for _, r in rows.iterrows()])
    pivot = text.pivot(index="method", columns="set", values="result")
    return pivot.loc[list(dict.fromkeys(rows["method"])), list(dict.fromkeys(rows["set"]))]


def verdict(table: pd.DataFrame, method: str, other: str, set_name: str, horizon: int = 1,
            metric: str = "top1") -> PairedDifference:
    """``method`` against ``other`` on one set: their paired difference (``.verdict``: beats / loses to / not
    distinguishable from)."""
    from wmlib.model.evaluate import paired

    return paired(table[table["set"] == set_name], method, other, horizon, metric)


# ----------------------------------------------------------------------------------------------------------------
# Source classification: trained on the training split, tested on held-out real recordings


def source_probe_tokens(tokens: TokenSet, per_group: int, seed: int = 0) -> TokenSet:
    """The source probe's tokens: up to ``per_group`` whole training utterances of every (domain, source), plus
    every token of the held-out real recordings."""
    labels = tokens.labels
    table = labels.groupby("utt_id", sort=False).first()[["domain", "source", "split"]]
    rng = np.random.default_rng(seed)
    chosen = set(table.index[(table["split"] == "heldout") & (table["domain"] == "real")])
    for _, group in table[table["split"] == "train"].groupby(["domain", "source"], sort=True):
        chosen.update(rng.choice(group.index.to_numpy(), size=min(per_group, len(group)), replace=False))
    return tokens.select(labels["utt_id"].isin(chosen).to_numpy())


def balanced_accuracy_ci(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Balanced accuracy (mean recall over the true classes) and its percentile bootstrap CI over whole
    utterances (``groups``; :func:`wmlib.model.bootstrap.bootstrap_weights`)."""
    from wmlib.model.bootstrap import bootstrap_weights

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    index, weights = bootstrap_weights(groups, n_boot, seed)  # (1 + B, U)
    recalls = []
    for label in np.unique(truth):
        in_class = truth == label
        total = weights @ np.bincount(index, weights=in_class, minlength=weights.shape[1])
        hits = weights @ np.bincount(index, weights=in_class & (predicted == label), minlength=weights.shape[1])
        recalls.append(np.where(total > 0, hits / np.maximum(total, 1e-12), np.nan))  # a class absent from a draw
    values = np.nanmean(recalls, axis=0)  # (1 + B,)
    low, high = np.quantile(values[1:], [(1 - level) / 2, (1 + level) / 2])
    return float(values[0]), float(low), float(high)


def source_transfer(features: dict, labels: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """A linear source probe (speech / music / noise) per representation, fit on the training-split tokens of
    ``labels`` and scored on its held-out real tokens.

    Args:
        features: representation name -> ``(N, D)`` rows of ``labels``
            (:func:`source_probe_tokens` chooses them).

    Returns:
        One row per representation: ``balanced accuracy, low, high`` (95% bootstrap CI over held-out
        utterances), the accuracy on real speech and on real music separately, and the token counts.
    """
    from .probes import fit_quietly, make_probe

    train = (labels["split"] == "train").to_numpy()
    test = ((labels["split"] == "heldout") & (labels["domain"] == "real")).to_numpy()
    assert train.any() and test.any(), "source transfer needs training-split tokens and held-out real tokens"
    truth, groups = labels["source"].to_numpy()[test], labels["utt_id"].to_numpy()[test]
    rows = []
    for name, array in features.items():
        probe = fit_quietly(make_probe("linear", "classification", seed), array[train],
                            labels["source"].to_numpy()[train])
        predicted = probe.predict(array[test])
        value, low, high = balanced_accuracy_ci(truth, predicted, groups, n_boot, seed)
        row = {"representation": name, "balanced accuracy": value, "low": low, "high": high}
        for source in ("speech", "music"):
            row[f"{source} recall"] = float(np.mean(predicted[truth == source] == source))
        rows.append(row | {"train tokens": int(train.sum()), "test tokens": int(test.sum())})
    return pd.DataFrame(rows).set_index("representation")


def source_features(tokens: TokenSet, models: dict, profile: str | None = None) -> dict:
    """log-mel, MFCC and the ``feature`` part of every model (name -> checkpoint) for ``tokens``."""
    from .representations import baseline_representations, model_representations

    baselines = baseline_representations(tokens)
    features = {"log-mel": baselines["log-mel"], "MFCC": baselines["MFCC"]}
    for name, path in models.items():
        features[name] = model_representations(path, tokens, profile)["feature"]
    return features


# ----------------------------------------------------------------------------------------------------------------
# The ablation table


def ablation_table(retrieval: pd.DataFrame, transfer: pd.DataFrame, rows: list[str],
                   baselines=("copy last token", "linear AR (4 tokens)")) -> pd.DataFrame:
    """Rows (ablation models, then the baselines) × (horizon-1 top-1 per retrieval set, source transfer), as text
    with 95% CIs."""
    pivot = retrieval_pivot(retrieval, 1)
    table = pivot.loc[[row for row in [*rows, *baselines] if row in pivot.index]].copy()
    table.columns = [f"top-1 h=1: {column}" for column in table.columns]
    table["source probe on real (balanced acc.)"] = [
        interval(*transfer.loc[row, ["balanced accuracy", "low", "high"]]) if row in transfer.index else "—"
        for row in table.index]
    return table


# ----------------------------------------------------------------------------------------------------------------
# What the corpus holds


def recordings_table(corpus) -> pd.DataFrame:
    """One row per real speaker or track: source, language, Debian package, split(s), utterances, minutes."""
    from wmlib.data.profiles import REAL_SPEAKERS, REAL_TRACKS

    real = corpus.utterances[corpus.utterances["domain"] == "real"]
    table = (real.groupby(["source", "voice"], sort=False)
             .agg(language=("language", "first"), splits=("split", lambda s: ", ".join(sorted(set(s)))),
                  utterances=("utt_id", "size"), minutes=("duration_s", lambda s: round(s.sum() / 60, 1))))
    table.insert(1, "package", [(REAL_SPEAKERS.get(voice) or REAL_TRACKS.get(voice) or {}).get("package", "")
                                for _, voice in table.index])
    return table


def augmentation_summary(corpus) -> pd.DataFrame:
    """Per effect of the domain randomization: how many randomized copies it was applied to, and the range of its
    main parameter."""
    import json

    copies = corpus.utterances[corpus.utterances["domain"] == "randomized"]
    records = [json.loads(text) for text in copies["augmentation"] if text]
    main = {"room": "target_rt60", "background": "snr_db", "colour_noise": "snr_db", "telephone": "codec",
            "lowpass": "cutoff_hz", "gain": "gain_db"}
    rows = []
    for effect in ("room", "background", "colour_noise", "eq", "telephone", "lowpass", "gain"):
        applied = [record[effect] for record in records if effect in record]
        row = {"effect": effect, "copies": len(applied), "share": len(applied) / max(1, len(records))}
        key = main.get(effect)
        values = [entry[key] for entry in applied if key in entry]
        if values and isinstance(values[0], str):
            row["parameter"] = f"{key}: " + ", ".join(f"{v} ×{values.count(v)}" for v in sorted(set(values)))
        elif values:
            row["parameter"] = f"{key}: {min(values):g} to {max(values):g}"
        elif effect == "eq" and applied:
            row["parameter"] = "7 bands, each −8 to +8 dB"
        rows.append(row)
    return pd.DataFrame(rows).set_index("effect")


def real_speech_probes(tokens: TokenSet, features: dict, targets=("pitch_speech", "energy"), seeds=(0,),
                       folds: int = 3, max_tokens: int | None = 3000) -> pd.DataFrame:
    """Pitch (against pYIN) and energy probes on real speech only: fit with grouped CV on the trained speakers'
    utterances (in-distribution) and applied to the held-out speaker and language (held-out).

    Args:
        tokens: any token set; only its real speech is used.
        features: representation name -> ``(N, D)`` rows of ``tokens``.

    Returns:
        Rows of :func:`wmlib.analysis.probes.probe_target` (for :func:`wmlib.analysis.probing.cpc_table`).
    """
    from .probes import probe_target

    speech = ((tokens.labels["domain"] == "real") & (tokens.labels["source"] == "speech")).to_numpy()
    labels = tokens.labels[speech].reset_index(drop=True)
    frames = [probe_target(array[speech], labels, target, "linear", seeds=seeds, folds=folds,
                           max_tokens=max_tokens, representation=name)
              for target in targets for name, array in features.items()]
    return pd.concat(frames, ignore_index=True)


def ablation_findings(retrieval: pd.DataFrame, transfer: pd.DataFrame, rows: list[str]) -> list[str]:
    """Sentences on what each step of the ablation (``rows``, in order) does to each measure, written from the
    numbers (so the chapter's text cannot drift from them)."""
    h1 = retrieval[retrieval["horizon"] == 1].set_index(["set", "method"])
    measures = {f"top-1 on {set_name}": [h1.loc[(set_name, row), "top1"] for row in rows]
                for set_name in dict.fromkeys(retrieval["set"])}
    measures["the source probe's balanced accuracy on real recordings"] = [
        transfer.loc[row, "balanced accuracy"] for row in rows]
    lines = []
    for measure, values in measures.items():
        path = " → ".join(f"{value:.3f}" for value in values)
        steps = np.diff(values)
        biggest = int(np.argmax(np.abs(steps)))
        lines.append(f"{measure[0].upper()}{measure[1:]}: {path} ({' → '.join(rows)}); the largest change "
                     f"({steps[biggest]:+.3f}) comes with “{rows[biggest + 1]}”.")
    return lines


def training_findings(along: pd.DataFrame, baseline: str = "linear AR (4 tokens)") -> list[str]:
    """Per set of :func:`retrieval_along_training`: where the model first beats ``baseline`` (paired difference
    over utterances) and what the last stretch of training (from the last checkpoint at or before half the final
    step) changed, by the paired difference of the two checkpoints."""
    lines = []
    for set_name, rows in along.groupby("set", sort=False):
        one = along[along["set"] == set_name]
        curve = rows[rows["step"].notna()].sort_values("step")
        reference = rows[rows["method"] == baseline].iloc[0]
        beats = [row for row in curve.itertuples() if verdict(one, row.method, baseline, set_name).verdict == "beats"]
        last, before = curve.iloc[-1], curve[curve["step"] <= curve["step"].iloc[-1] / 2]
        text = (f"On {set_name}: top-1 {curve['top1'].iloc[0]:.3f} at step {int(curve['step'].iloc[0])}, "
                f"{last['top1']:.3f} at step {int(last['step'])} ({baseline}: {reference['top1']:.3f}); ")
        text += (f"it first beats the {baseline} at step {int(beats[0].step)}." if beats
                 else f"no checkpoint beats the {baseline} (paired difference over utterances).")
        if len(before):
            start = before.iloc[-1]
            change = verdict(one, last["method"], start["method"], set_name)
            text += (f" Step {int(last['step'])} {change.verb} step {int(start['step'])} (difference {change}).")
        lines.append(text)
    return lines
