"""What a world model of sound is promised to be good for, each against a simple baseline.

- **Inpainting** (:func:`inpaint`, :func:`inpainting_table`): fill a masked gap of 0.2–1 s in a melody or a
  sentence.  The causal model cannot read the future, so it dreams forward from the left side — and, because it can
  *score* what follows, it draws several dreams and keeps the one after which the observed right side is most
  expected (its own contrastive score of the right side's tokens).  Baselines: copy the last token before the gap;
  interpolate linearly in log-mel between the tokens on either side.
- **Variations** (:func:`variations`): several dreams from one melody's context — how they differ in pitch and
  rhythm, by their tokens' exact note labels and by an independent pitch tracker (pYIN on the dream's audio).
- **Few-shot classification** (:func:`few_shot_curve`): speech / music / noise from 1–64 labelled tokens per
  class (a linear classifier), from the model's latents against log-mel and MFCC, on the generated test split
  and on held-out real recordings.

Used by the chapter "Applications".
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet
from wmlib.model.bootstrap import PairedDifference, attach, paired_difference, stored, weighted_means
from wmlib.model.evaluate import Windows, bootstrap_ci, draw_distractors, flatten_tokens, ranks

from .dreams import DEFAULT_TEMPERATURE, CandidateBank, DreamError, dream

#: Per profile: gap lengths in tokens (0.2, 0.52 and 1.0 s for the book), tokens kept on each side.
GAPS = {"tiny": ((2, 4, 8), 12, 4), "default": ((5, 13, 25), 24, 8), "large": ((5, 13, 25), 24, 8)}
SHOTS = (1, 2, 4, 8, 16, 32, 64)
#: Per profile: training utterances per (domain, source) to draw supports from, generated test utterances per source.
FEW_SHOT_UTTERANCES = {"tiny": (6, 6), "default": (12, 10), "large": (40, 40)}


# ----------------------------------------------------------------------------------------------------------------
# Inpainting


def interpolate_gap(before: np.ndarray, after: np.ndarray, gap: int) -> np.ndarray:
    """Linear interpolation in log-mel (dB) from the last token before the gap to the first after it:
    ``(B, L, M, F)``, ``(B, R, M, F)`` -> ``(B, gap, M, F)``."""
    weights = (np.arange(1, gap + 1) / (gap + 1))[None, :, None, None]  # strictly between the two sides
    return (1 - weights) * before[:, -1:] + weights * after[:, :1]


def right_side_score(model, before: np.ndarray, filled: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The model's expectation of the observed right side after a filled gap: the mean cosine between its
    prediction of each ``after`` token (from everything before it) and that token's embedding, ``(B,)``."""
    import torch

    sequence = torch.as_tensor(np.concatenate([before, filled, after], 1), dtype=torch.float32)  # (B, T, M, F)
    first = before.shape[1] + filled.shape[1]
    positions = np.arange(first - 1, sequence.shape[1] - 1)  # context ends whose next token is on the right side
    predicted = model.predict_next_embeddings(sequence, 1, method="head", positions=positions)  # (B, R, P)
    keys = model.embed(sequence)[:, first:]  # (B, R, P)
    return (predicted * keys).sum(-1).mean(-1).numpy()


def inpaint(model, before: np.ndarray, after: np.ndarray, gap: int, bank: CandidateBank | None = None,
            samples: int = 8, seed: int = 0, window: int | None = None) -> dict[str, np.ndarray]:
    """Every method's filling of a gap of ``gap`` tokens between ``before`` and ``after``.

    Returns:
        Method -> ``(B, gap, M, F)`` dB: ``copy last token``, ``linear interpolation``, ``dream forward (T=0)``
        (the model's most likely continuation of the left side) and ``best of N dreams by the right side``
        (``samples`` dreams at :data:`~wmlib.analysis.dreams.DEFAULT_TEMPERATURE`; the one after which the model
        finds the right side most expected).
    """
    if gap < 1:
        raise DreamError(f"a gap of {gap} tokens: give at least one")
    filled = {"copy last token": np.repeat(before[:, -1:], gap, 1),
              "linear interpolation": interpolate_gap(before, after, gap),
              "dream forward (T=0)": dream(model, before, gap, 0.0, 1, seed, bank, window=window).mel[:, 0]}
    if model.config.contrastive:
        dreams = dream(model, before, gap, DEFAULT_TEMPERATURE, samples, seed, bank, window=window).mel  # (B, S, ...)
        scores = np.stack([right_side_score(model, before, dreams[:, s], after) for s in range(samples)], 1)  # (B, S)
        filled[f"best of {samples} dreams by the right side"] = dreams[np.arange(len(dreams)), scores.argmax(1)]
    return filled


def inpainting_table(model, tokens: TokenSet, profile: str | None = None, bank: CandidateBank | None = None,
                     max_windows: int = 60, samples: int = 8, seed: int = 0, window: int | None = None,
                     n_boot: int = 1000) -> pd.DataFrame:
    """Inpainting on held-out generated test windows of music and of speech, for every gap length of the profile.

    Scores per filled token, averaged over the gap: the mel RMSE (dB) against the truth, and top-1 retrieval — the
    filled token as a query in log-mel space against the true token and 255 test tokens (the same for every
    method).  95% bootstrap CIs over utterances; the per-window scores ride along in ``attrs`` (:data:`PER_WINDOW`)
    for paired verdicts (:func:`inpainting_difference`).
    """
    from wmlib.data.profiles import get_profile
    from wmlib.model.evaluate import GENERATED

    gaps, left, right = GAPS[get_profile(profile).name]
    rows, per_window = [], {}
    for source in ("music", "speech"):
        length = left + max(gaps) + right
        windows = Windows.from_tokens(tokens, "test", length, max_windows=max_windows, seed=seed,
                                      where={**GENERATED, "source": source})
        pool = flatten_tokens(windows.mel).reshape(-1, windows.mel[0, 0].size)
        for gap in gaps:
            before, truth = windows.mel[:, :left], windows.mel[:, left:left + gap]
            after = windows.mel[:, left + gap:left + gap + right]
            targets = (np.arange(len(windows.mel))[:, None] * length + left + np.arange(gap)).ravel()
            distractors = draw_distractors(len(targets), len(pool), targets, seed + gap)
            for method, filled in inpaint(model, before, after, gap, bank, samples, seed, window).items():
                squared = ((filled - truth).astype(np.float64) ** 2).mean(axis=(2, 3, 1))  # (W,)
                rank = ranks(flatten_tokens(filled).reshape(len(targets), -1), pool, targets, distractors,
                             "euclidean").reshape(len(windows.mel), gap)
                hits = (rank == 0).mean(1)
                low, high = bootstrap_ci(squared, windows.utt_ids, n_boot=n_boot, seed=seed)
                hit_low, hit_high = bootstrap_ci(hits, windows.utt_ids, n_boot=n_boot, seed=seed)
                rows.append({"source": source, "gap_ms": gap * 40, "method": method, "windows": len(windows.mel),
                             "mel_rmse_db": np.sqrt(squared.mean()), "mel_rmse_db_low": np.sqrt(low),
                             "mel_rmse_db_high": np.sqrt(high), "top1": hits.mean(), "top1_low": hit_low,
                             "top1_high": hit_high})
                per_window[source, gap * 40, method] = {"squared": squared, "top1": hits, "groups": windows.utt_ids}
    table = pd.DataFrame(rows)
    attach(table, PER_WINDOW, per_window)
    return table


#: the key of an inpainting table's ``attrs``: ``(source, gap_ms, method) -> {"squared", "top1", "groups"}``, one
#: value per window (the same windows for every method of a source and gap)
PER_WINDOW = "per_window"


def inpainting_difference(table: pd.DataFrame, source: str, gap_ms: float, method: str, other: str,
                          n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """How much lower ``method``'s mel RMSE (dB) is than ``other``'s on the same windows (positive: ``method`` is
    better), with one bootstrap over utterances for both."""
    store = stored(table, PER_WINDOW, "inpainting_table")
    mine, theirs = store[source, gap_ms, method], store[source, gap_ms, other]
    assert np.array_equal(mine["groups"], theirs["groups"]), f"{method!r} and {other!r} saw different windows"
    rmse = [np.sqrt(weighted_means(scores["squared"], scores["groups"], n_boot, seed)) for scores in (mine, theirs)]
    return PairedDifference.from_resamples(rmse[1] - rmse[0])


def inpainting_findings(table: pd.DataFrame, model_method: str | None = None) -> list[str]:
    """Plain sentences from :func:`inpainting_table`: per source and gap, the model's best method against the best
    baseline, on mel error, by their paired difference on the same windows (:func:`inpainting_difference`)."""
    baselines = ("copy last token", "linear interpolation")
    lines = []
    for (source, gap), part in table.groupby(["source", "gap_ms"], sort=False):
        part = part.set_index("method")
        models = [m for m in part.index if m not in baselines]
        mine = model_method if model_method in models else part.loc[models, "mel_rmse_db"].idxmin()
        best = part.loc[list(baselines), "mel_rmse_db"].idxmin()
        a, b = part.loc[mine], part.loc[best]
        result = inpainting_difference(table, source, gap, mine, best)
        lines.append(f"{source}, a {gap:.0f} ms gap: {mine} {result.verb} {best} on mel error "
                     f"({a['mel_rmse_db']:.1f} vs {b['mel_rmse_db']:.1f} dB; {best}'s minus the model's: "
                     f"{result.difference:+.2f} [{result.low:+.2f}, {result.high:+.2f}] dB); top-1 retrieval "
                     f"{a['top1']:.2f} vs {b['top1']:.2f}.")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Variations


def pyin_track(mel_tokens: np.ndarray, config, fmin: float = 65.0, fmax: float = 2100.0) -> np.ndarray:
    """An independent pitch estimate of tokens: pYIN on their Griffin-Lim audio, one MIDI value per token (NaN where
    unvoiced), ``(T, M, F)`` -> ``(T,)``."""
    import librosa

    from wmlib.data.features import tokens_to_audio

    audio = tokens_to_audio(mel_tokens, config)
    step = config.token_samples
    f0, voiced, _ = librosa.pyin(audio, fmin=fmin, fmax=fmax, sr=config.sample_rate, frame_length=2048,
                                 hop_length=step // 2, center=True, fill_na=np.nan, resolution=0.25,
                                 n_thresholds=50)  # quarter-semitone bins, as the corpus's speech labels: 3x faster
    count = len(mel_tokens)
    f0 = np.pad(f0, (0, max(0, 2 * count - len(f0))), constant_values=np.nan)[: 2 * count].reshape(count, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are unvoiced tokens
        return librosa.hz_to_midi(np.nanmedian(f0, axis=1))


def quiet_nanmean(values) -> float:
    """The mean of the finite values; NaN, without a warning, when there are none (a dream pYIN finds unvoiced)."""
    values = np.asarray(values, dtype=float)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else np.nan


def variations(model, tokens: TokenSet, bank: CandidateBank, context: int, horizon: int, count: int = 8,
               max_windows: int = 6, seed: int = 0, window: int | None = None,
               temperature: float = DEFAULT_TEMPERATURE) -> tuple[pd.DataFrame, dict]:
    """``count`` dreams at ``temperature`` from each of a few held-out melody contexts, measured by note labels (the
    bank's, exact) and by pYIN on each dream's audio.

    Returns:
        ``(table, examples)``: per window, the mean pitch distance (semitones, over tokens voiced in both) between
        variations and from each variation to the truth, note changes per second of the variations and of the truth,
        and pYIN's agreement with the labels on the dreams; ``examples``: the first window's context, truth, dreams
        and their label pitch tracks, for the figure and the players.
    """
    from wmlib.model.evaluate import GENERATED

    windows = Windows.from_tokens(tokens, "test", context + horizon, max_windows=max_windows, seed=seed,
                                  where={**GENERATED, "source": "music"})
    labels = windows.labels(tokens)
    truth_pitch = np.where(labels["voiced"], labels["midi_pitch"], np.nan).reshape(len(windows.mel), -1)[:, context:]
    dreams = dream(model, windows.mel[:, :context], horizon, temperature, count, seed, bank, window=window)
    bank_pitch = np.where(bank.labels["voiced"], bank.labels["midi_pitch"], np.nan)
    seconds = horizon / tokens.config.tokens_per_second

    def distance(a, b):
        both = np.isfinite(a) & np.isfinite(b)
        return float(np.abs(np.round(a[both]) - np.round(b[both])).mean()) if both.any() else np.nan

    def changes(track):
        notes = np.round(track[np.isfinite(track)])
        return float((np.diff(notes) != 0).sum() / seconds) if len(notes) > 1 else 0.0

    rows = []
    for w in range(len(windows.mel)):
        tracks = bank_pitch[dreams.picked[w]]  # (count, H)
        estimated = [pyin_track(dreams.mel[w, s], tokens.config) for s in range(min(count, 3))]
        pairs = [distance(tracks[a], tracks[b]) for a in range(count) for b in range(a + 1, count)]
        rows.append({"window": windows.utt_ids[w],
                     "between variations (st)": quiet_nanmean(pairs),
                     "variation to truth (st)": quiet_nanmean([distance(track, truth_pitch[w]) for track in tracks]),
                     "note changes/s, variations": np.mean([changes(track) for track in tracks]),
                     "note changes/s, truth": changes(truth_pitch[w]),
                     "pYIN vs labels on dreams (st)": quiet_nanmean([distance(e, t)
                                                                     for e, t in zip(estimated, tracks)])})
    examples = {"context": windows.mel[0, :context], "truth": windows.mel[0, context:], "dreams": dreams.mel[0],
                "context_pitch": np.where(labels["voiced"], labels["midi_pitch"], np.nan)[:context],
                "truth_pitch": truth_pitch[0], "dream_pitch": bank_pitch[dreams.picked[0]],
                "utt_id": windows.utt_ids[0]}
    return pd.DataFrame(rows), examples


# ----------------------------------------------------------------------------------------------------------------
# Few-shot classification


def few_shot_support(labels: pd.DataFrame, shots: int, seed: int, target: str = "source",
                     pool: np.ndarray | None = None) -> np.ndarray:
    """Row indices of a support set: ``shots`` tokens per class, each from a different training utterance where the
    class has enough of them.  Only rows of the training split (and of ``pool`` if given) are drawn.

    Raises:
        ValueError: a class with no training token.
    """
    rng = np.random.default_rng(seed)
    train = labels["split"].to_numpy() == "train"
    if pool is not None:
        train &= pool
    chosen = []
    for value in sorted(labels.loc[train, target].unique()):
        rows = np.flatnonzero(train & (labels[target].to_numpy() == value))
        utterances = labels["utt_id"].to_numpy()[rows]
        per_utterance = [rng.permutation(rows[utterances == name]) for name in rng.permutation(np.unique(utterances))]
        # one token of every utterance, then a second of every utterance, ...: as many utterances as possible
        order = [block[depth] for depth in range(max(map(len, per_utterance))) for block in per_utterance
                 if depth < len(block)]
        chosen.extend(order[:shots])
    return np.array(chosen, dtype=np.int64)


def few_shot_curve(features: dict, labels: pd.DataFrame, shots=SHOTS, draws: int = 10, seed: int = 0,
                   test_sets: dict | None = None, C: float = 0.1, dims: int = 64) -> pd.DataFrame:
    """Balanced accuracy of a multinomial logistic regression (L2, ``C``) trained on ``shots`` labelled tokens per
    class, for every
    representation, over ``draws`` random support sets (:func:`few_shot_support`; the same sets for every
    representation).

    Features are standardised with the mean and spread of all training-split tokens and reduced to their first
    ``dims`` principal components there (no labels used): every representation gets the same number of inputs, and
    a few-shot fit in 64 dimensions takes milliseconds rather than a second in 1,024.  (A least-squares classifier
    was faster still, but masks a class that lies between two others along one direction.)  A
    nearest-class-mean classifier (prototypes) was tried first and fell to chance on the generated test split for
    every representation, log-mel included: the mixture's domains (clean, randomized, real telephone audio) spread
    the classes' means more than the sources do.  ``test_sets``: name -> boolean row mask (default: the generated
    test split and the held-out real recordings).  The interval is the 2.5–97.5 percentile over support draws: how
    much the answer depends on which few examples one labels.  Each draw's score rides along in ``attrs``
    (:data:`PER_DRAW`) for paired verdicts (:func:`few_shot_difference`).
    """
    from sklearn.linear_model import LogisticRegression

    from .probes import fit_quietly

    train = labels["split"].to_numpy() == "train"
    truth, _ = pd.factorize(labels["source"])  # integer classes: scoring strings sorted them again every time
    test_sets = test_sets or {
        "generated test split": ((labels["split"] == "test") & (labels["domain"] == "generated")).to_numpy(),
        "held-out real recordings": ((labels["split"] == "heldout") & (labels["domain"] == "real")).to_numpy()}
    supports = {(k, d): few_shot_support(labels, k, seed + 1000 * k + d) for k in shots for d in range(draws)}
    rows, per_draw = [], {}
    from sklearn.decomposition import PCA

    fit_rows = np.random.default_rng(seed).permutation(np.flatnonzero(train))[:5000]
    for name, array in features.items():
        normal = (array - array[train].mean(0)) / (array[train].std(0) + 1e-6)
        normal = PCA(min(dims, array.shape[1]), random_state=seed).fit(normal[fit_rows]).transform(normal)
        for k in shots:
            scores = {set_name: [] for set_name in test_sets}
            for d in range(draws):
                support = supports[(k, d)]
                classifier = fit_quietly(LogisticRegression(C=C, max_iter=200), normal[support], truth[support])
                for set_name, mask in test_sets.items():
                    scores[set_name].append(balanced_accuracy(truth[mask], classifier.predict(normal[mask])))
            for set_name, values in scores.items():
                per_draw[name, set_name, k] = np.asarray(values)
                low, high = np.quantile(values, [0.025, 0.975])
                rows.append({"representation": name, "test set": set_name, "shots": k,
                             "balanced_accuracy": float(np.mean(values)), "balanced_accuracy_low": low,
                             "balanced_accuracy_high": high})
    table = pd.DataFrame(rows)
    attach(table, PER_DRAW, per_draw)
    return table


#: the key of a few-shot table's ``attrs``: ``(representation, test set, shots) -> (draws,)`` balanced accuracy
#: per support draw (the same draws for every representation)
PER_DRAW = "per_draw"


def few_shot_difference(table: pd.DataFrame, representation: str, other: str, test_set: str, shots: int,
                        n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """``representation`` minus ``other``: mean balanced accuracy over the same support draws, with a bootstrap of
    the draws (the shared units) for both at once."""
    store = stored(table, PER_DRAW, "few_shot_curve")
    mine, theirs = store[representation, test_set, shots], store[other, test_set, shots]
    return paired_difference(mine, theirs, np.arange(len(mine)), n_boot=n_boot, seed=seed)


def few_shot_findings(table: pd.DataFrame, model: str, baselines=("log-mel", "MFCC", "random init")) -> list[str]:
    """Per test set, from how many labelled examples per class on ``model`` beats every baseline, and where one
    beats it, by paired differences over the same support draws (:func:`few_shot_difference`): plain sentences
    from :func:`few_shot_curve`."""
    lines = []
    for set_name, part in table.groupby("test set", sort=False):
        part = part.set_index(["representation", "shots"])
        shots = sorted(part.index.get_level_values("shots").unique())
        verdicts = {k: {b: few_shot_difference(table, model, b, set_name, k) for b in baselines} for k in shots}
        above = [k for k in shots if all(r.verdict == "beats" for r in verdicts[k].values())]
        below = [k for k in shots if any(r.verdict == "loses to" for r in verdicts[k].values())]
        best = max(baselines, key=lambda b: part.loc[(b, shots[-1]), "balanced_accuracy"])
        mine, theirs = (part.loc[(name, shots[-1]), "balanced_accuracy"] for name in (model, best))
        text = (f"{set_name}: with {shots[-1]} examples per class, {model} {mine:.2f} against {best} {theirs:.2f} "
                f"(difference {verdicts[shots[-1]][best]}); ")
        if above and above == [k for k in shots if k >= above[0]]:
            text += f"it beats every baseline from {above[0]} examples per class on"
        elif above:
            text += f"it beats every baseline at {', '.join(map(str, above))} examples per class"
        else:
            text += "at no number of examples does it beat every baseline"
        text += f"; a baseline beats it at {', '.join(map(str, below))}." if below else "."
        lines.append(text)
    return lines


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall over the classes present in ``truth`` (integer classes); predicting a class that is not
    there (a real recording called "noise") only costs recall."""
    classes = np.unique(truth)
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in classes]))


def few_shot_tokens(tokens: TokenSet, per_group: int, test_utterances: int, seed: int = 0) -> TokenSet:
    """The few-shot tokens: up to ``per_group`` training utterances per (domain, source) (the pool supports are drawn
    from), up to ``test_utterances`` generated test utterances per source, and every held-out real recording."""
    labels = tokens.labels
    table = labels.groupby("utt_id", sort=False).first()[["domain", "source", "split"]]
    rng = np.random.default_rng(seed)
    chosen = set(table.index[(table["split"] == "heldout") & (table["domain"] == "real")])
    for (split, _, _), group in table.groupby(["split", "domain", "source"], sort=True):
        limit = per_group if split == "train" else test_utterances if split == "test" else 0
        if split == "test" and group["domain"].iloc[0] != "generated":
            continue
        if limit:
            chosen.update(rng.choice(group.index.to_numpy(), size=min(limit, len(group)), replace=False))
    return tokens.select(labels["utt_id"].isin(chosen).to_numpy())
