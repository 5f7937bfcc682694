"""The book's similarity study: every encoder on the shared stimuli, against the label models, against each other
and along the world model's training (the tables of the chapter "Representational similarity").

:func:`run_study` computes everything once (embeddings cached on disk) and returns a :class:`SimilarityStudy` of
tables, each with 95% bootstrap intervals over stimuli (resampling clips):

- ``labels``: each encoder against each label model, Spearman with the layer chosen on the other half of the clips,
  the whitened Pearson (rsatoolbox ``corr_cov``) on the same halves, and the permutation null;
- ``pairs``: encoder x encoder (each at its default layer, the first of ``layers``): Spearman between RDMs, linear
  CKA, whitened Pearson;
- ``training``: the world model's kept checkpoints (step 0 = random init) against the label models (Spearman) and
  the other encoders (CKA), and the second seed at the comparison step;
- ``seeds``: the two seeds' agreement against their agreement with every other encoder, and the noise ceiling.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmlib.model.bootstrap import PairedDifference

from . import rsa
from .encoders import ENCODERS, load_encoders, world_model_encoder

#: The encoders of the book's comparison, in the order it shows them.
BOOK_ENCODERS = ("world model", "RSSM", "masked autoencoder", "random init", "permuted weights", "log-mel", "MFCC",
                 "crepe-tiny", "crepe-full", "pesto", "fcpe", "swift-f0", "basic-pitch", "resemblyzer", "silero-vad")
#: The label models the training curves follow.
TRAINING_LABELS = ("pitch", "phone class", "energy", "source", "voice")


@dataclass
class SimilarityStudy:
    """What :func:`run_study` found (tables as described in the module docstring)."""

    stimuli: rsa.StimulusSet
    labels: pd.DataFrame
    pairs: pd.DataFrame
    training: pd.DataFrame
    seeds: pd.DataFrame
    failures: pd.DataFrame
    timings: pd.DataFrame
    rdms: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    label_models: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    #: ``(table, row, column) -> (1 + n_boot,)`` each number's value on every resample of the clips (the same
    #: resamples for every row of a table), for paired verdicts (:func:`paired`): ``("labels", encoder, label)``,
    #: ``("training", checkpoint, reference)``, ``("seeds", first, second)`` (CKA)
    draws: dict = field(repr=False, default_factory=dict)


def halves(stimuli: rsa.StimulusSet, seed: int = 0) -> np.ndarray:
    """Each stimulus's half (0 or 1): clips split in two within each (domain, source), seeded."""
    rng = np.random.default_rng(seed)
    half_of_clip = np.zeros(len(stimuli.clips), int)
    for _, group in stimuli.clips.groupby(["domain", "source"], sort=True):
        order = rng.permutation(group["clip"].to_numpy())
        half_of_clip[order[1::2]] = 1
    return half_of_clip[stimuli.labels["clip"].to_numpy()]


def _half_weights(stimuli: rsa.StimulusSet, half: np.ndarray, which: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights over the clips of one half, zero on the other: ``(1 + n_boot, n)``."""
    inside = half == which
    weights = np.zeros((1 + n_boot, len(half)))
    weights[:, inside] = rsa.stimulus_weights(stimuli.labels[inside], n_boot, seed)
    return weights


def crossvalidated_label_table(stimuli, layer_rdms: dict[str, dict[str, np.ndarray]],
                               label_models: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0,
                               whitened: bool = True, kept: dict | None = None) -> pd.DataFrame:
    """Each encoder against each label model, with its layer chosen on one half of the clips and scored on the other.

    Args:
        layer_rdms: encoder -> layer -> ``(n, n)`` RDM.
        label_models: label -> ``(n, n)`` (NaN where undefined).
        kept: a dict to fill with ``("labels", encoder, label) -> (1 + n_boot,)`` the value on every resample
            (the same resamples for every encoder: paired verdicts, :func:`paired`).

    Returns:
        One row per (encoder, label): ``spearman`` (mean of the two held-out halves) with ``low``/``high``, the layers
        chosen (``layer_a`` on half 0, ``layer_b`` on half 1), ``whitened`` (rsatoolbox ``corr_cov``, same halves).
    """
    half = halves(stimuli, seed)
    clips = stimuli.labels["clip"].to_numpy()
    ranks: dict = {}
    fits = [rsa.ClipBootstrap(np.where(half == which, 1.0, 0.0)[None], clips, ranks) for which in (0, 1)]
    boots = [rsa.ClipBootstrap(_half_weights(stimuli, half, which, n_boot, seed + which), clips, ranks)
             for which in (0, 1)]
    rows = []
    for encoder, layers in layer_rdms.items():
        for label, model in label_models.items():
            chosen, draws, white = [], [], []
            for fit, score in ((0, 1), (1, 0)):
                fitted = {layer: fits[fit].spearman(matrix, model)[0] for layer, matrix in layers.items()}
                best = max(fitted, key=lambda layer: -np.inf if np.isnan(fitted[layer]) else fitted[layer])
                chosen.append(best)
                draws.append(boots[score].spearman(layers[best], model))
                if whitened:
                    keep = half == score
                    white.append(rsa.compare_rsatoolbox(layers[best][np.ix_(keep, keep)], model[np.ix_(keep, keep)],
                                                        "corr_cov"))
            with np.errstate(invalid="ignore"):  # a half without defined pairs: NaN
                both = np.mean(draws, axis=0)
                value, low, high = rsa.summarise(both)
            if kept is not None:
                kept["labels", encoder, label] = both
            rows.append({"encoder": encoder, "label": label, "spearman": value, "low": low, "high": high,
                         "layer_a": chosen[0], "layer_b": chosen[1],
                         "whitened": float(np.mean(white)) if whitened else np.nan})
    return pd.DataFrame(rows)


def pair_table(rdms: dict[str, np.ndarray], features: dict[str, np.ndarray], engine: rsa.ClipBootstrap,
               halves_engine: rsa.ClipBootstrap, whitened: bool = True) -> pd.DataFrame:
    """Every pair of representations: Spearman between RDMs (intervals: the clip bootstrap of ``engine``), linear CKA
    (intervals: the half-samples of ``halves_engine``) and whitened Pearson."""
    names = list(rdms)
    cka = halves_engine.cka({name: features[name] for name in names})  # (B, E, E)
    rows = []
    for i, first in enumerate(names):
        for j, second in enumerate(names):
            if j < i:
                continue
            spearman = np.ones(len(engine.counts)) if i == j else engine.spearman(rdms[first], rdms[second])
            s, s_low, s_high = rsa.summarise(spearman)
            c, c_low, c_high = rsa.summarise(cka[:, i, j], centre="median")
            white = 1.0 if i == j else (rsa.compare_rsatoolbox(rdms[first], rdms[second], "corr_cov")
                                        if whitened else np.nan)
            for a, b in ((first, second), (second, first)) if i != j else ((first, second),):
                rows.append({"first": a, "second": b, "spearman": s, "spearman_low": s_low, "spearman_high": s_high,
                             "cka": c, "cka_low": c_low, "cka_high": c_high, "whitened": white})
    return pd.DataFrame(rows)


def run_study(profile: str | None = None, encoders=BOOK_ENCODERS, n_boot: int = 1000, seed: int = 0,
              training_steps=None, progress: bool = True) -> SimilarityStudy:
    """The whole comparison of the chapter "Representational similarity".

    Args:
        profile: corpus profile (default ``$WMLIB_PROFILE`` or ``default``).
        encoders: registered encoder names (or ``hear:<module>``); those that cannot load are reported in
            ``failures`` and left out.
        n_boot: bootstrap resamples (of clips) for every interval.
        seed: stimuli, halves and resamples.
        training_steps: the default model's kept checkpoints to follow (default: all of them).
        progress: a progress bar over encoders.
    """
    from tqdm import tqdm

    from wmlib.data.profiles import get_profile
    from wmlib.model.checkpoints import list_checkpoints
    from wmlib.model.runs import COMPARISON_STEPS, DEFAULT_MODEL, SEED_MODELS, run_dir

    profile = get_profile(profile).name
    started = time.perf_counter()
    stimuli = rsa.book_stimuli(profile, seed=seed)
    loaded, failures = load_encoders(encoders, profile)
    timings, embeddings = [], {}
    for name, encoder in tqdm(loaded.items(), desc="encoders", unit="encoder", disable=not progress):
        began = time.perf_counter()
        try:
            embeddings[name] = rsa.embed_stimuli(encoder, stimuli, profile)
        except Exception as error:  # a broken encoder is reported, not fatal
            failures = pd.concat([failures, pd.DataFrame([{"encoder": name, "reason": f"{type(error).__name__}: "
                                                                                      f"{error}"}])])
            continue
        timings.append({"what": f"embed: {name}", "seconds": time.perf_counter() - began})
    default_layer = {name: loaded[name].layers[0] for name in embeddings}
    families = {name: ENCODERS[name].family if name in ENCODERS else "HEAR module" for name in embeddings}

    began = time.perf_counter()
    label_models = rsa.label_rdms(stimuli.labels)
    layer_rdms = {name: {layer: rsa.rdm(array) for layer, array in layers.items()}
                  for name, layers in embeddings.items()}
    timings.append({"what": "RDMs", "seconds": time.perf_counter() - began})

    began = time.perf_counter()
    draws: dict = {}
    labels = crossvalidated_label_table(stimuli, layer_rdms, label_models, n_boot, seed, kept=draws)
    reference = layer_rdms[next(iter(layer_rdms))]  # the first encoder's default layer: the permutation null
    nulls = {label: np.quantile(rsa.permutation_null(next(iter(reference.values())), model, 200, seed), [0.025, 0.975])
             for label, model in label_models.items()}
    labels["null_low"] = labels["label"].map({k: v[0] for k, v in nulls.items()})
    labels["null_high"] = labels["label"].map({k: v[1] for k, v in nulls.items()})
    labels["family"] = labels["encoder"].map(families)
    timings.append({"what": "labels (cross-validated layers, 2 x bootstrap)", "seconds": time.perf_counter() - began})

    began = time.perf_counter()
    weights = rsa.stimulus_weights(stimuli, n_boot, seed)
    rdms = {name: layer_rdms[name][default_layer[name]] for name in embeddings}
    features = {name: embeddings[name][default_layer[name]] for name in embeddings}
    clips = stimuli.labels["clip"].to_numpy()
    engine = rsa.ClipBootstrap(weights, clips, {})
    halves_engine = rsa.ClipBootstrap(rsa.half_weights(stimuli, n_boot, seed), clips)
    pairs = pair_table(rdms, features, engine, halves_engine)
    timings.append({"what": "encoder pairs (Spearman, CKA, whitened)", "seconds": time.perf_counter() - began})

    # along training: the default model's kept checkpoints, and the second seed at the comparison step
    began = time.perf_counter()
    steps = sorted([step for step, _ in list_checkpoints(run_dir(DEFAULT_MODEL, profile))] if training_steps is None
                   else training_steps)
    layer = "feature"
    checkpoints = {f"step {step}": world_model_encoder(DEFAULT_MODEL, profile, step=step, name=f"step {step}")
                   for step in steps}
    comparison = COMPARISON_STEPS[profile]
    seed_names = {}
    for model_name in SEED_MODELS:
        try:
            label = f"seed {SEED_MODELS[model_name]}, step {comparison}"
            checkpoints[label] = world_model_encoder(model_name, profile, name=label)
            seed_names[label] = model_name
        except Exception as error:
            failures = pd.concat([failures, pd.DataFrame([{"encoder": model_name, "reason": str(error)}])])
    tracked = {name: rsa.embed_stimuli(encoder, stimuli, profile)[layer] for name, encoder in checkpoints.items()}
    tracked_rdms = {name: rsa.rdm(array) for name, array in tracked.items()}
    others = [name for name in embeddings if families[name] in ("pretrained", "hand-made", "HEAR module")]
    cka = halves_engine.cka({**tracked, **{name: features[name] for name in others}})
    rows = []
    for i, name in enumerate(tracked):
        step = checkpoints[name].step
        matrix = tracked_rdms[name]
        for label in TRAINING_LABELS:
            draws["training", name, label] = engine.spearman(matrix, label_models[label])
            value, low, high = rsa.summarise(draws["training", name, label])
            rows.append({"checkpoint": name, "step": step, "seed": 0 if name not in seed_names else
                         SEED_MODELS[seed_names[name]], "reference": label, "kind": "label (Spearman)",
                         "value": value, "low": low, "high": high})
        for j, other in enumerate(others):
            draws["training", name, other] = cka[:, i, len(tracked) + j]
            value, low, high = rsa.summarise(draws["training", name, other], centre="median")
            rows.append({"checkpoint": name, "step": step, "seed": 0 if name not in seed_names else
                         SEED_MODELS[seed_names[name]], "reference": other, "kind": "encoder (CKA)",
                         "value": value, "low": low, "high": high})
    training = pd.DataFrame(rows)
    timings.append({"what": "along training", "seconds": time.perf_counter() - began})

    began = time.perf_counter()
    seeds = seed_agreement(tracked, seed_names, comparison, features, engine, halves_engine,
                           rdms={**tracked_rdms, **rdms}, kept=draws)
    timings.append({"what": "seeds and noise ceiling", "seconds": time.perf_counter() - began})
    timings.append({"what": "total", "seconds": time.perf_counter() - started})
    info = {"stimuli": len(stimuli), "clips": len(stimuli.clips), "encoders": len(embeddings), "n_boot": n_boot,
            "profile": profile, "layers": default_layer, "training_layer": layer}
    return SimilarityStudy(stimuli, labels, pairs, training, seeds, failures.reset_index(drop=True),
                           pd.DataFrame(timings), rdms, label_models, families, info, draws)


def seed_agreement(tracked: dict[str, np.ndarray], seed_names: dict[str, str], step: int,
                   features: dict[str, np.ndarray], engine: rsa.ClipBootstrap,
                   halves_engine: rsa.ClipBootstrap, rdms: dict[str, np.ndarray] | None = None,
                   kept: dict | None = None) -> pd.DataFrame:
    """Kornblith's sanity check and the noise ceiling: do two seeds of the default model (at ``step``) agree with each
    other more than either agrees with any other encoder?

    Returns:
        Rows ``first``, ``second``, ``cka`` (low, high), ``spearman`` (low, high): seed 0 vs seed 1, and each seed vs
        every encoder in ``features``; plus a row ``noise ceiling`` (rsatoolbox's leave-one-out lower and upper
        bounds of Spearman with the seeds as subjects) in ``spearman``'s columns.

    ``rdms``: RDMs already computed, by the names of ``tracked`` and ``features`` (the others are computed here).
    ``kept``: a dict to fill with ``("seeds", first, second) -> (1 + B,)`` CKA on every half-sample.
    """
    from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling

    first = f"step {step}"
    if not seed_names or first not in tracked:
        return pd.DataFrame()
    sources = {"seed 0": first, **{f"seed {name.split(',')[0].split()[-1]}": name for name in seed_names}}
    seeds = {label: tracked[name] for label, name in sources.items()}
    names = list(seeds)
    everything = {**seeds, **features}
    cka = halves_engine.cka(everything)
    known = rdms or {}
    rdms = {label: known[name] if name in known else rsa.rdm(tracked[name]) for label, name in sources.items()}
    rdms.update({name: known[name] if name in known else rsa.rdm(array) for name, array in features.items()})
    rows = []
    for i, name in enumerate(names):
        for j, other in enumerate(everything):
            if other == name or (other in names and j < i):
                continue
            if kept is not None:
                kept["seeds", name, other] = cka[:, i, j]
            c = rsa.summarise(cka[:, i, j], centre="median")
            s = rsa.summarise(engine.spearman(rdms[name], rdms[other]))
            rows.append({"first": name, "second": other, "cka": c[0], "cka_low": c[1], "cka_high": c[2],
                         "spearman": s[0], "spearman_low": s[1], "spearman_high": s[2]})
    lower, upper = boot_noise_ceiling(rsa.to_rdms({name: rdms[name] for name in names}), method="spearman",
                                      rdm_descriptor="name")
    rows.append({"first": "noise ceiling", "second": "seeds as subjects", "cka": np.nan, "cka_low": np.nan,
                 "cka_high": np.nan, "spearman": float(np.mean([lower, upper])), "spearman_low": float(lower),
                 "spearman_high": float(upper)})
    return pd.DataFrame(rows)


def label_table(study: SimilarityStudy, order=None) -> pd.DataFrame:
    """Encoders × label models, Spearman and whitened Pearson side by side (two column groups)."""
    order = list(order or dict.fromkeys(study.labels["encoder"]))
    return pd.concat({name: study.labels.pivot(index="encoder", columns="label", values=column).loc[order]
                      for name, column in (("Spearman", "spearman"), ("whitened", "whitened"))}, axis=1)


def measure_agreement(study: SimilarityStudy) -> dict[str, float]:
    """How far the measures agree, as Pearson r across cells: Spearman vs whitened over the encoder × label cells
    (``labels``); CKA vs whitened and CKA vs Spearman over the encoder pairs (``pairs: whitened``,
    ``pairs: Spearman``)."""
    labels = study.labels.dropna(subset=["spearman", "whitened"])
    pairs = study.pairs[study.pairs["first"] < study.pairs["second"]]
    return {"labels": float(np.corrcoef(labels["spearman"], labels["whitened"])[0, 1]),
            "pairs: whitened": float(np.corrcoef(pairs["cka"], pairs["whitened"])[0, 1]),
            "pairs: Spearman": float(np.corrcoef(pairs["cka"], pairs["spearman"])[0, 1]), "n_pairs": len(pairs)}


def seed_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """:func:`seed_agreement` for reading: one row per encoder compared, one column per seed and measure, each
    ``value [low, high]``; the first row is the other seed."""
    rows = seeds[seeds["first"].str.startswith("seed ")]
    cells = {}
    for _, row in rows.iterrows():
        other = "the other seed" if row["second"].startswith("seed ") else row["second"]
        for measure, name in (("cka", "CKA"), ("spearman", "Spearman")):
            text = f"{row[measure]:.2f} [{row[f'{measure}_low']:.2f}, {row[f'{measure}_high']:.2f}]"
            cells.setdefault(other, {})[f"{row['first']}: {name}"] = text
            if other == "the other seed":  # the pair, once, in both seeds' columns
                cells[other][f"{row['second']}: {name}"] = text
    table = pd.DataFrame.from_dict(cells, orient="index").fillna("")
    return table[sorted(table.columns, key=lambda c: (c.split(": ")[1], c))]


def paired(study: SimilarityStudy, first: tuple, second: tuple) -> PairedDifference:
    """The number at ``first`` minus the number at ``second`` (keys of :attr:`SimilarityStudy.draws`), on the same
    resamples of the clips: the paired difference every verdict of the chapter goes through.  CKA's half-samples
    are centred on the observed difference, as its single intervals are (:func:`wmlib.analysis.rsa.summarise`)."""
    for key in (first, second):
        assert key in study.draws, f"the study kept no resamples for {key} (run it again with this version)"
    centre = "median" if first[0] == "seeds" or (first[0] == "training" and first[2] not in TRAINING_LABELS) else None
    with np.errstate(invalid="ignore"):
        return PairedDifference(*rsa.summarise(study.draws[first] - study.draws[second], centre=centre))


def findings(study: SimilarityStudy, model: str = "world model", control: str = "random init") -> dict[str, list]:
    """The chapter's findings as sentences, each decided by a paired difference (:func:`paired`; never written by
    hand): ``labels`` (one per label model), ``training`` and ``seeds``."""
    out, sections = [], {}
    labels = study.labels.set_index(["encoder", "label"])
    for label in dict.fromkeys(study.labels["label"]):
        rows = study.labels[study.labels["label"] == label].sort_values("spearman", ascending=False)
        best = rows.iloc[0]
        mine = labels.loc[(model, label)]
        ctrl = labels.loc[(control, label)] if (control, label) in labels.index else None
        sentence = (f"**{label}**: the best encoder is {best['encoder']} ({best['spearman']:.2f} "
                    f"[{best['low']:.2f}, {best['high']:.2f}]); the {model} scores {mine['spearman']:.2f} "
                    f"[{mine['low']:.2f}, {mine['high']:.2f}]")
        if best["encoder"] not in (model, control):
            result = paired(study, ("labels", model, label), ("labels", best["encoder"], label))
            sentence += f"; it {result.verb} {best['encoder']} (difference {result})"
        if ctrl is not None:
            result = paired(study, ("labels", model, label), ("labels", control, label))
            sentence += f"; it {result.verb} its {control} control ({ctrl['spearman']:.2f}, difference {result})"
        out.append(sentence + ".")
    sections["labels"], out = out, []
    training = study.training[study.training["seed"] == 0]
    first, last = training["step"].min(), training["step"].max()
    moves = {"beats": [], "loses to": [], "not distinguishable from": []}
    for (_, reference), rows in training.groupby(["kind", "reference"], sort=False):
        start = rows[rows["step"] == first].iloc[0]
        end = rows[rows["step"] == last].iloc[0]
        result = paired(study, ("training", end["checkpoint"], reference), ("training", start["checkpoint"], reference))
        moves[result.verdict].append(f"{reference} ({start['value']:.2f} → {end['value']:.2f}, {result})")
    out.append(f"**Along training** (step {first} → {last}, paired differences on the same resamples of the clips): "
               f"similarity rose to {', '.join(moves['beats']) or 'none'}; fell to "
               f"{', '.join(moves['loses to']) or 'none'}; did not change measurably for "
               f"{', '.join(moves['not distinguishable from']) or 'none'}.")
    sections["training"], out = out, []
    if len(study.seeds):
        seeds = study.seeds
        pair = seeds[(seeds["first"] == "seed 0") & (seeds["second"].str.startswith("seed "))].iloc[0]
        others = seeds[seeds["first"].str.startswith("seed ") & ~seeds["second"].str.startswith("seed ")
                       & (seeds["second"] != model)]
        closest = others.sort_values("cka", ascending=False).iloc[0]
        result = paired(study, ("seeds", pair["first"], pair["second"]), ("seeds", closest["first"], closest["second"]))
        verdict = {"beats": "above", "loses to": "below"}.get(result.verdict, "not distinguishable from")
        out.append(f"**Two seeds**: linear CKA between them is {pair['cka']:.2f} [{pair['cka_low']:.2f}, "
                   f"{pair['cka_high']:.2f}], {verdict} that of the closest other encoder (difference {result}; "
                   f"{closest['first']} vs "
                   f"{closest['second']}: {closest['cka']:.2f} [{closest['cka_low']:.2f}, {closest['cka_high']:.2f}]);"
                   f" Spearman between their RDMs {pair['spearman']:.2f} [{pair['spearman_low']:.2f}, "
                   f"{pair['spearman_high']:.2f}].")
    sections["seeds"] = out
    return sections
