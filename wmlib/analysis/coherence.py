"""How good is a dream?  Measured against the truth and against baselines rolled out the same way.

- **Per horizon** (:func:`horizon_curves`): for every imagined step h, retrieval of the true token among 256
  candidates (as in the chapter "Training and prediction", but from the model's *own* dreamed past) and the mel
  error in dB, for the dream, copy-last and the linear autoregression fed its own predictions.  The mean error
  favours blurred predictions (a mean is the best guess under squared error), so a sharp sample can lose on it
  while sounding more like the truth; the next measure does not reward blur.
- **Distribution** (:func:`frechet_table`): the Fréchet distance (as FID/FAD) between real continuations and dreamed
  ones, over 4-token segments (160 ms, so temporal order counts), in log-mel space and in the model's encoder space;
  references: another set of real segments (the floor), the same real tokens shuffled (right tokens, no order) and
  copy-last (no change at all).
- **Music and speech** (:func:`melody_table`, :func:`phone_durations`): does a dreamed melody stay in the key and
  register of its context; do dreamed phones last as long as real ones?
- **Probing the dream** (:func:`dream_probe_curves`): the probes of the probing chapters, trained on the model's
  state while it *observes* training tokens, read the state while it *dreams*; scored against the true
  continuation per horizon, against the same probe on the observed truth (its ceiling) and against carrying the
  last context token's reading forward (copy-last).

Used by the chapter "Dreams".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet
from wmlib.model.bootstrap import PairedDifference, attach, paired_difference, stored, weighted_means
from wmlib.model.evaluate import LinearAutoregression, Windows, bootstrap_ci, draw_distractors, flatten_tokens, ranks

from .dreams import DEFAULT_TEMPERATURE, CandidateBank, copy_last_rollout, dream, linear_rollout

SEGMENT = 4  # tokens per segment for the Fréchet distance (160 ms)
#: Per profile: held-out windows dreamed on, and training windows for the linear roll-out and the probes.
BOOK_WINDOWS = {"tiny": (12, 60), "default": (240, 300), "large": (400, 1000)}
#: The chapter's sampling temperatures besides 0: the default (chosen on the validation split by how fast the
#: dreams move, :func:`temperature_criterion`) and 1 (the model's own distribution over the bank).
DREAM_TEMPERATURES = (DEFAULT_TEMPERATURE, 1.0)


def _summary(values: np.ndarray, groups: np.ndarray, prefix: str, n_boot: int, seed: int) -> dict:
    low, high = bootstrap_ci(values, groups, n_boot=n_boot, seed=seed)
    return {prefix: float(values.mean()), f"{prefix}_low": low, f"{prefix}_high": high}


#: the key of a curve table's ``attrs``: ``(target or None, method, horizon, metric) -> (values, utterances)``, one
#: value per window (the same windows for every method), for paired verdicts (:func:`difference`)
PER_WINDOW = "per_window"


def difference(curves: pd.DataFrame, method: str, baseline: str, horizon: int, metric: str = "top1",
               higher_is_better: bool = True, target: str | None = None, n_boot: int = 1000,
               seed: int = 0) -> PairedDifference:
    """How much better ``method`` does than ``baseline`` at ``horizon`` on the same windows (positive: better), with
    one bootstrap over utterances for both.  ``mel_rmse_db``: the difference of the two RMSEs in dB."""
    store = stored(curves, PER_WINDOW, "DreamStudy")
    kept = "mel_mse" if metric == "mel_rmse_db" else metric
    (mine, groups), (theirs, other_groups) = (store[target, name, horizon, kept] for name in (method, baseline))
    assert np.array_equal(groups, other_groups), f"{method!r} and {baseline!r} saw different windows"
    if metric == "mel_rmse_db":
        rmse = [np.sqrt(weighted_means(values, groups, n_boot, seed)) for values in (mine, theirs)]
        result = PairedDifference.from_resamples(rmse[0] - rmse[1])
    else:
        result = paired_difference(mine, theirs, groups, n_boot=n_boot, seed=seed)
    return result if higher_is_better else result.flipped()


class DreamStudy:
    """One model's dreams on held-out windows, with the baselines, shared by the chapter's measures.

    Args:
        model: a trained world model.
        windows: held-out windows of ``context + horizon`` tokens (:meth:`wmlib.model.evaluate.Windows.from_tokens`
            keeps their rows, so labels follow).
        tokens: the token set the windows were cut from (labels) and the candidate bank's source.
        train: training windows for the linear autoregression (fit at horizon 1, then rolled out).
        context: observed tokens per window; the rest are dreamed.
        samples: dreams per window at each temperature of ``temperatures`` (one more at temperature 0).
        temperatures: the sampling temperatures to dream at, besides 0.
        bank: candidate bank (default: drawn from the training split of ``tokens``).
        window: the transformer's window (its training ``seq_len``).
        reference: other held-out windows like ``windows`` (other utterances), whose second halves are the Fréchet
            distance's floor: real sound that is not the continuation itself.  Default: the observed halves.
    """

    def __init__(self, model, windows: Windows, tokens: TokenSet, train: Windows, context: int, samples: int = 2,
                 seed: int = 0, bank: CandidateBank | None = None, window: int | None = None,
                 temperatures=(1.0,), reference: Windows | None = None):
        from .dreams import default_method

        self.model, self.windows, self.tokens, self.context, self.seed = model, windows, tokens, context, seed
        self.horizon = windows.mel.shape[1] - context
        assert self.horizon >= 1, f"windows of {windows.mel.shape[1]} tokens leave nothing to dream after {context}"
        self.method = default_method(model)
        self.bank = bank if bank is not None or self.method != "candidates" else CandidateBank.from_tokens(
            model, tokens, seed=seed)
        observed = windows.mel[:, :context]
        self.truth = windows.mel[:, context:]  # (W, H, M, F)
        self.dreams = {f"dream (T={t:g})": dream(model, observed, self.horizon, t, samples, seed, self.bank,
                                                 window=window) for t in temperatures}
        self.dreams["dream (T=0)"] = dream(model, observed, self.horizon, 0.0, 1, seed, self.bank, window=window)
        autoregression = LinearAutoregression(order=4).fit(train, [1])
        self.rollouts = {"copy last token": copy_last_rollout(observed, self.horizon),
                         "linear AR rolled out": linear_rollout(autoregression, observed, self.horizon)}
        self.labels = windows.labels(tokens)  # (W * L) rows
        self.groups = windows.utt_ids
        self.reference = (reference.mel[:, context:] if reference is not None
                          else windows.mel[:, context - self.horizon:context])  # (W', H, M, F)

    @classmethod
    def for_book(cls, model: str | None = None, profile: str | None = None, tokens: TokenSet | None = None,
                 samples: int = 2, seed: int = 0, split: str = "test", temperatures=DREAM_TEMPERATURES
                 ) -> tuple[DreamStudy, Windows]:
        """The chapter's study: a trained named model (default: the book's) dreams the second half of held-out
        windows of the clean generated ``split``, each as long as its training windows (64 tokens = 2.56 s for the
        book: 1.28 s observed, 1.28 s dreamed), one every half window.  Returns the study and the training windows
        (for the linear roll-out and the probes)."""
        from wmlib.data.features import load_tokens
        from wmlib.data.profiles import get_profile
        from wmlib.model.checkpoints import load_model
        from wmlib.model.evaluate import GENERATED
        from wmlib.model.runs import locate_model

        from .representations import model_context

        name = get_profile(profile).name
        _, directory = locate_model(model, profile)
        tokens = load_tokens(profile, progress=False) if tokens is None else tokens
        length = model_context(directory) or 64
        queries, fit = BOOK_WINDOWS[name]
        network, _ = load_model(directory)
        test = Windows.from_tokens(tokens, split, length, max_windows=queries, seed=seed, where=GENERATED,
                                   stride=length // 2)
        train = Windows.from_tokens(tokens, "train", length, max_windows=fit, seed=seed)
        other = "valid" if split == "test" else "test"
        reference = Windows.from_tokens(tokens, other, length, max_windows=queries, seed=seed, where=GENERATED)
        return cls(network, test, tokens, train, context=length // 2, samples=samples, seed=seed,
                   window=model_context(directory), temperatures=temperatures, reference=reference), train

    def continuations(self) -> dict[str, np.ndarray]:
        """Method -> ``(W, S, H, M, F)`` dB: every dream and roll-out with a samples axis."""
        rolled = {name: mel[:, None] for name, mel in self.rollouts.items()}
        return {name: dreams.mel for name, dreams in self.dreams.items()} | rolled

    # -- per horizon -------------------------------------------------------------------------------------------

    def horizon_curves(self, n_boot: int = 1000) -> pd.DataFrame:
        """Top-1 retrieval and mel RMSE (dB) per horizon and method, with 95% bootstrap CIs over utterances.

        Retrieval: the model's dreams by their contrastive head's prediction of each token (made from the dreamed
        past) against the candidates' embeddings; the roll-outs by their log-mel prediction (euclidean), as in
        :func:`wmlib.model.evaluate.retrieval_table`.  Every method faces the same 255 distractors per query.
        """
        import torch

        n_windows, length = self.windows.mel.shape[:2]
        with torch.no_grad():
            embedded = self.model.embed(torch.as_tensor(self.windows.mel)).numpy() if self.model.config.contrastive \
                else None  # (W, L, P)
        mel_pool = flatten_tokens(self.windows.mel).reshape(n_windows * length, -1)
        rows, per_window = [], {}
        for step in range(self.horizon):
            targets = np.arange(n_windows) * length + self.context + step  # into the flattened pools
            distractors = draw_distractors(n_windows, n_windows * length, targets, self.seed + step)
            truth = self.truth[:, step]  # (W, M, F)
            for name, mel in self.continuations().items():
                samples = mel.shape[1]
                dreams = self.dreams.get(name)
                if dreams is not None and dreams.prediction is not None:
                    queries = dreams.prediction[:, :, step]  # (W, S, P)
                    pool, similarity = embedded.reshape(n_windows * length, -1), "cosine"
                else:
                    queries, pool, similarity = flatten_tokens(mel[:, :, step]), mel_pool, "euclidean"
                rank = np.stack([ranks(queries[:, s], pool, targets, distractors, similarity)
                                 for s in range(samples)], 1)  # (W, S)
                hits = (rank == 0).mean(axis=1)
                squared = ((mel[:, :, step] - truth[:, None]).astype(np.float64) ** 2).mean(axis=(-2, -1)).mean(axis=1)
                row = {"method": name, "horizon": step + 1, "queries": n_windows}
                per_window[None, name, step + 1, "top1"] = (hits, self.groups)
                per_window[None, name, step + 1, "mel_mse"] = (squared, self.groups)
                row |= _summary(hits, self.groups, "top1", n_boot, self.seed)
                error = _summary(squared, self.groups, "mel_mse", n_boot, self.seed)
                row |= {f"mel_rmse_db{key[7:]}": np.sqrt(value) for key, value in error.items()}
                rows.append(row)
        table = pd.DataFrame(rows)
        attach(table, PER_WINDOW, per_window)
        return table

    # -- distributions ----------------------------------------------------------------------------------------

    def _segments(self, mel: np.ndarray, space: str) -> np.ndarray:
        """``(W, S, H, M, F)`` -> ``(W * S * segments, ·)`` vectors of ``SEGMENT`` consecutive tokens."""
        import torch

        whole = (mel.shape[2] // SEGMENT) * SEGMENT
        mel = mel[:, :, :whole]
        if space == "log-mel":
            per_token = flatten_tokens(mel)  # (W, S, H, D)
        else:
            with torch.no_grad():
                flat = torch.as_tensor(mel.reshape(-1, whole, *mel.shape[-2:]))  # (W*S, H, M, F)
                per_token = self.model.encoder(flat).numpy().reshape(*mel.shape[:3], -1)
        return per_token.reshape(*mel.shape[:2], whole // SEGMENT, -1).reshape(-1, SEGMENT * per_token.shape[-1])

    def frechet_table(self, dims: int = 32, n_boot: int = 100) -> pd.DataFrame:
        """Fréchet distance of each continuation's segments to the real continuations', in ``log-mel`` and
        ``encoder`` space (PCA to ``dims``, fit on the real continuations), with 95% bootstrap CIs over windows.

        Rows add two references: ``real, other utterances`` — segments of the reference windows (other held-out
        utterances of the same kind: the floor a perfect dream would reach) — and ``real, shuffled tokens`` — the
        true continuations' tokens shuffled across windows and steps (the right tokens in no order).

        The interval is the 2.5–97.5 percentile of the distance over ``n_boot`` random halves of the windows, drawn
        without replacement (paired where a set has one row per window): how much the value depends on which
        windows were drawn.  A Fréchet distance is biased upward in small samples (a bootstrap with replacement,
        tried first, put every interval above its own point), so the half-sample interval sits somewhat above the
        full-sample value; compare rows with each other, not with zero.
        """
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(self.seed)
        truth = self.truth[:, None]  # (W, 1, H, M, F)
        flat = self.truth.reshape(-1, *self.truth.shape[-2:])
        shuffled = flat[rng.permutation(len(flat))].reshape(truth.shape)
        sets = {"real, other utterances": self.reference[:, None], "real, shuffled tokens": shuffled}
        sets |= self.continuations()
        rows = []
        for space in ("log-mel", "encoder"):
            reference = self._segments(truth, space)
            pca = PCA(dims, random_state=self.seed).fit(reference)
            reference = pca.transform(reference).reshape(len(self.truth), -1, dims)  # (W, segments, dims)
            for name, mel in sets.items():
                vectors = pca.transform(self._segments(mel, space)).reshape(len(mel), -1, dims)
                point = frechet_distance(reference.reshape(-1, dims), vectors.reshape(-1, dims))
                boot = []
                for _ in range(n_boot):
                    pick = rng.choice(len(reference), len(reference) // 2, replace=False)
                    other = pick if len(vectors) == len(reference) else rng.choice(len(vectors), len(vectors) // 2,
                                                                                   replace=False)
                    boot.append(frechet_distance(reference[pick].reshape(-1, dims), vectors[other].reshape(-1, dims)))
                low, high = np.quantile(boot, [0.025, 0.975])
                rows.append({"space": space, "continuation": name, "frechet": point, "frechet_low": low,
                             "frechet_high": high})
        return pd.DataFrame(rows)

    # -- music and speech -----------------------------------------------------------------------------------

    def _dream_labels(self, name: str) -> pd.DataFrame | None:
        """The bank labels of a candidate dream's tokens, ``W * S * H`` rows with ``window``, ``sample``, ``step``."""
        dreams = self.dreams[name]
        if dreams.picked is None:
            return None
        picked = dreams.picked  # (W, S, H)
        labels = self.bank.labels.iloc[picked.ravel()].reset_index(drop=True)
        grid = np.indices(picked.shape).reshape(3, -1)
        return labels.assign(window=grid[0], sample=grid[1], step=grid[2])

    def melody_table(self, n_boot: int = 1000) -> pd.DataFrame:
        """For music windows: the share of voiced dreamed tokens whose note is in the context's pitch classes
        (*in key*) and within its range ± 2 semitones (*in register*), and how often the note changes
        (``note_changes_per_s``, between consecutive voiced tokens).  Candidate dreams only (their tokens carry the
        bank's exact note labels).

        References: the truth; **hold the last note** (the context's last voiced note, held: in key and in register
        by construction, and never changing — what a dream that stops moving scores); a **random walk** from that
        note (at each token it moves by 1 or 2 semitones, up or down, as often as the context's own notes change);
        random music tokens of the bank.  Each window's values ride along in ``attrs`` (:data:`PER_WINDOW`, keys
        ``(None, continuation, 0, measure)`` with the window's index) for :func:`melody_difference`.
        """
        length = self.windows.mel.shape[1]
        labels = self.labels
        music = labels.groupby("window")["source"].first().to_numpy() == "music"
        pitch = labels["midi_pitch"].to_numpy().reshape(-1, length)
        voiced = labels["voiced"].to_numpy(dtype=bool).reshape(-1, length)
        context_pitch = np.where(voiced[:, :self.context], np.round(pitch[:, :self.context]), np.nan)
        rng = np.random.default_rng(self.seed)
        continuations = {"truth": (pitch[:, self.context:][:, None], voiced[:, self.context:][:, None])}
        bank_pitch = self.bank.labels["midi_pitch"].to_numpy() if self.bank is not None else None
        for name in self.dreams:
            dream_labels = self._dream_labels(name)
            if dream_labels is not None:
                shape = self.dreams[name].picked.shape
                continuations[name] = (dream_labels["midi_pitch"].to_numpy().reshape(shape),
                                       dream_labels["voiced"].to_numpy(dtype=bool).reshape(shape))
        held, walked = hold_and_walk(context_pitch, self.horizon, rng)
        always = np.ones((len(pitch), 1, self.horizon), dtype=bool)
        continuations["hold the last note"] = (held[:, None], always & np.isfinite(held)[:, None])
        continuations["random walk"] = (walked[:, None], always & np.isfinite(walked)[:, None])
        if bank_pitch is not None:
            music_bank = np.flatnonzero((self.bank.labels["source"] == "music").to_numpy()
                                        & self.bank.labels["voiced"].to_numpy(dtype=bool))
            random = rng.choice(music_bank, size=(len(pitch), 1, self.horizon))
            continuations["random music tokens"] = (bank_pitch[random], np.ones(random.shape, dtype=bool))
        rows, per_window = [], {}
        windows = np.flatnonzero(music & np.isfinite(context_pitch).any(axis=1))
        seconds = self.horizon / self.tokens.config.tokens_per_second
        for name, (notes, is_voiced) in continuations.items():
            values = {"in_key": [], "in_register": [], "note_changes_per_s": []}
            kept = []
            for w in windows:
                classes = set((context_pitch[w][np.isfinite(context_pitch[w])] % 12).astype(int))
                low, high = np.nanmin(context_pitch[w]) - 2, np.nanmax(context_pitch[w]) + 2
                sounding = np.round(notes[w][is_voiced[w] & np.isfinite(notes[w])])
                if len(sounding):
                    values["in_key"].append(np.isin(sounding.astype(int) % 12, list(classes)).mean())
                    values["in_register"].append(((sounding >= low) & (sounding <= high)).mean())
                    changes = [np.count_nonzero(np.diff(np.round(row[v & np.isfinite(row)])))
                               for row, v in zip(notes[w], is_voiced[w])]  # per sample
                    values["note_changes_per_s"].append(np.mean(changes) / seconds)
                    kept.append(w)
            if not kept:
                continue
            groups = self.groups[kept]
            row = {"continuation": name, "windows": len(kept)}
            for measure, numbers in values.items():
                row |= _summary(np.array(numbers), groups, measure, n_boot, self.seed)
                per_window[None, name, 0, measure] = (np.array(numbers), groups, np.array(kept))
            rows.append(row)
        table = pd.DataFrame(rows)
        attach(table, PER_WINDOW, per_window)
        return table

    def phone_durations(self) -> pd.DataFrame:
        """For speech windows: the lengths (ms) of runs of one phone inside the continuation, real and dreamed
        (candidate dreams), and of random speech tokens.  Runs cut by the window's edges count too, alike for all."""
        token_ms = 1000 / self.tokens.config.tokens_per_second
        length = self.windows.mel.shape[1]
        phones = self.labels["phone"].to_numpy().reshape(-1, length)[:, self.context:]
        speech = self.labels.groupby("window")["source"].first().to_numpy() == "speech"
        sequences = {"truth": phones[speech][:, None]}
        for name in self.dreams:
            dream_labels = self._dream_labels(name)
            if dream_labels is not None:
                sequences[name] = dream_labels["phone"].to_numpy().reshape(self.dreams[name].picked.shape)[speech]
        if self.bank is not None:
            speech_bank = np.flatnonzero((self.bank.labels["source"] == "speech").to_numpy()
                                         & (self.bank.labels["phone"] != "").to_numpy())
            random = np.random.default_rng(self.seed).choice(speech_bank, size=(int(speech.sum()), 1, self.horizon))
            sequences["random speech tokens"] = self.bank.labels["phone"].to_numpy()[random]
        rows = []
        for name, grid in sequences.items():
            for sequence in grid.reshape(-1, grid.shape[-1]):
                change = np.flatnonzero(np.r_[True, sequence[1:] != sequence[:-1], True])
                for start, stop in zip(change[:-1], change[1:]):
                    if sequence[start]:
                        rows.append({"continuation": name, "phone": sequence[start],
                                     "duration_ms": (stop - start) * token_ms})
        return pd.DataFrame(rows)

    # -- probing the dream ----------------------------------------------------------------------------------

    def dream_probe_curves(self, train: Windows, targets=("source", "phone_class", "pitch_music", "energy"),
                           n_boot: int = 1000) -> pd.DataFrame:
        """Probes fit on the model's ``feature`` of observed training windows read every dream and the truth.

        Per target and horizon: the score of ``dream (T=1)`` and ``dream (T=0)`` (the probe on the dreamed state),
        ``observed truth`` (the probe on the state after *observing* the true continuation: the ceiling) and
        ``copy last token`` (the probe's reading of the last observed token, carried forward), against the true
        labels of the continuation.  Accuracy for classification, mean absolute error for regression.
        """
        import torch

        from .probes import fit_quietly, make_probe
        from .targets import get_target

        def observed_features(windows: Windows) -> np.ndarray:
            with torch.no_grad():
                return self.model.features(torch.as_tensor(windows.mel))["feature"].numpy()  # (W, L, d)

        train_features = observed_features(train)
        train_features = train_features.reshape(-1, train_features.shape[-1])
        train_labels = train.labels(self.tokens)
        test_features = observed_features(self.windows)  # (W, L, d)
        length = self.windows.mel.shape[1]
        rows, per_window = [], {}
        for name in targets:
            target = get_target(name)
            values, mask = target(train_labels)
            probe = fit_quietly(make_probe("linear", target.kind, self.seed), train_features[mask], values[mask])
            truth, truth_mask = (array.reshape(-1, length) for array in target(self.labels))

            def read(features: np.ndarray, probe=probe) -> np.ndarray:  # (..., d) -> (...) probe readings
                return probe.predict(features.reshape(-1, features.shape[-1])).reshape(features.shape[:-1])

            readings = {"observed truth": read(test_features[:, self.context:])[:, None],
                        "copy last token": np.repeat(read(test_features[:, self.context - 1])[:, None, None],
                                                     self.horizon, axis=2)}
            readings |= {key: read(dreams.feature) for key, dreams in self.dreams.items()}  # (W, S, H)
            for step in range(self.horizon):
                keep = truth_mask[:, self.context + step]
                if keep.sum() < 2:
                    continue
                expected = truth[keep, self.context + step]
                for method, reading in readings.items():
                    got = reading[keep][:, :, step]  # (n, S)
                    scores = ((got == expected[:, None]).mean(axis=1) if target.kind == "classification"
                              else np.abs(got.astype(float) - expected[:, None].astype(float)).mean(axis=1))
                    metric = "accuracy" if target.kind == "classification" else f"mae_{target.unit or 'units'}"
                    row = {"target": name, "method": method, "horizon": step + 1, "metric": metric,
                           "tokens": int(keep.sum())}
                    row |= _summary(scores, self.groups[keep], "score", n_boot, self.seed)
                    per_window[name, method, step + 1, "score"] = (scores, self.groups[keep])
                    rows.append(row)
        table = pd.DataFrame(rows)
        attach(table, PER_WINDOW, per_window)
        return table


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fit to the rows of ``a`` and ``b``:
    ``|μa − μb|² + tr(Σa + Σb − 2 (Σa Σb)^½)``."""
    from scipy import linalg

    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(root):
        root = root.real  # numerical noise of sqrtm on a nearly singular product
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def sound_speed(context: np.ndarray, continuation: np.ndarray) -> np.ndarray:
    """How fast the sound moves: per window, the mean distance (scaled log-mel, :func:`flatten_tokens`) between
    consecutive tokens of ``continuation``, counted from the last token of ``context``.

    Args:
        context: ``(W, K, M, F)`` dB; continuation: ``(W, S, H, M, F)`` dB (``S`` samples).

    Returns:
        ``(W,)`` the mean over samples and steps.
    """
    last = flatten_tokens(context[:, -1])[:, None, None]  # (W, 1, 1, D)
    path = np.concatenate([np.broadcast_to(last, (*continuation.shape[:2], 1, last.shape[-1])),
                           flatten_tokens(continuation)], axis=2)  # (W, S, 1 + H, D)
    return np.linalg.norm(np.diff(path, axis=2), axis=-1).mean(axis=(1, 2))


def temperature_criterion(model, windows: Windows, context: int, temperatures, bank: CandidateBank,
                          samples: int = 1, seed: int = 0, window: int | None = None) -> pd.DataFrame:
    """How to choose the dream temperature without looking at what the chapter reports: the temperature whose
    dreams move as fast as the real continuations (:func:`sound_speed`) on ``windows`` (the *validation* split).
    Fréchet distances, melodies, phone durations, probes and retrieval — the chapter's findings — play no part.

    Returns:
        One row per temperature: ``dream speed``, ``real speed`` (the same for every row), ``gap`` (their
        absolute difference, relative to the real speed) and ``chosen`` (the smallest gap).
    """
    observed, truth = windows.mel[:, :context], windows.mel[:, context:]
    real = float(sound_speed(observed, truth[:, None]).mean())
    rows = []
    for temperature in temperatures:
        dreamed = dream(model, observed, truth.shape[1], temperature, samples, seed, bank, window=window).mel
        speed = float(sound_speed(observed, dreamed).mean())
        rows.append({"temperature": temperature, "dream speed": speed, "real speed": real,
                     "gap": abs(speed - real) / real})
    table = pd.DataFrame(rows)
    table["chosen"] = table.index == table["gap"].idxmin()
    return table


def hold_and_walk(context_pitch: np.ndarray, horizon: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two melody baselines from each window's context notes (``(W, C)`` MIDI, NaN where unvoiced): ``(W, horizon)``
    the last voiced note held, and a random walk from it that moves by ±1 or ±2 semitones at each token with the
    probability that the context's own notes change from one voiced token to the next (NaN for a window with no
    voiced context)."""
    held = np.full((len(context_pitch), horizon), np.nan)
    walked = np.full((len(context_pitch), horizon), np.nan)
    for w, row in enumerate(context_pitch):
        notes = row[np.isfinite(row)]
        if not len(notes):
            continue
        rate = np.count_nonzero(np.diff(notes)) / max(1, len(notes) - 1)
        held[w] = notes[-1]
        steps = np.where(rng.random(horizon) < rate, rng.choice([-2, -1, 1, 2], horizon), 0)
        walked[w] = notes[-1] + np.cumsum(steps)
    return held, walked


def melody_difference(melody: pd.DataFrame, continuation: str, other: str, measure: str = "in_key",
                      n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """``continuation`` minus ``other`` on one measure of :meth:`DreamStudy.melody_table`, on the windows both
    scored (a dream of unvoiced tokens has no notes to count), with one bootstrap over utterances for both."""
    store = stored(melody, PER_WINDOW, "melody_table")
    (mine, groups, windows), (theirs, _, other_windows) = (store[None, name, 0, measure]
                                                           for name in (continuation, other))
    shared, first, second = np.intersect1d(windows, other_windows, return_indices=True)
    assert len(shared), f"{continuation!r} and {other!r} share no scored window"
    return paired_difference(mine[first], theirs[second], groups[first], n_boot=n_boot, seed=seed)


def note_change_words(result: PairedDifference, other: str) -> str:
    """A paired difference of note changes per second against ``other``, in words: more is not better, only
    different."""
    if result.verdict == "not distinguishable from":
        return f"changes note about as often as {other} (not distinguishable: {result} per second)"
    return f"changes note {'more' if result.difference > 0 else 'less'} often than {other} ({result} per second)"


def melody_findings(melody: pd.DataFrame, dream: str = f"dream (T={DEFAULT_TEMPERATURE:g})") -> list[str]:
    """Sentences on the dream's melodies against hold-the-last-note, a random walk and the truth, by paired
    differences: in key and in register (higher is closer to the context), and note changes (neither better nor
    worse: the truth's rate is the one to match)."""
    lines = []
    for measure, what in (("in_key", "in key"), ("in_register", "in register"),
                          ("note_changes_per_s", "note changes per second")):
        parts = []
        for other in ("hold the last note", "random walk", "truth"):
            result = melody_difference(melody, dream, other, measure)
            if measure == "note_changes_per_s":
                parts.append(note_change_words(result, other))
            else:
                parts.append(f"{result.verb} {other} ({result})")
        lines.append(f"**{what}**: the {dream} " + "; ".join(parts) + ".")
    return lines


def ahead_of(curves: pd.DataFrame, method: str, baseline: str, metric: str = "top1",
             higher_is_better: bool = True) -> int:
    """How many horizons, from the first, ``method`` beats ``baseline`` by their paired difference
    (:func:`difference`; 0: not even one)."""
    count = 0
    for horizon in sorted(curves["horizon"].unique()):
        if difference(curves, method, baseline, horizon, metric, higher_is_better).verdict != "beats":
            break
        count += 1
    return count


def beyond_copying(curves: pd.DataFrame, method: str = "dream (T=0)", baseline: str = "copy last token",
                   metric: str = "top1", higher_is_better: bool = True, what: str = "top-1 retrieval") -> str:
    """One sentence, from the numbers: up to which horizon ``method`` beats ``baseline`` (paired differences over
    utterances)."""
    horizons = curves["horizon"].nunique()
    count = ahead_of(curves, method, baseline, metric, higher_is_better)
    first = difference(curves, method, baseline, 1, metric, higher_is_better)
    if count == 0:
        return (f"On {what}, {method} does not beat {baseline} even one token (40 ms) ahead (difference at 40 ms: "
                f"{first}).")
    if count == horizons:
        return f"On {what}, {method} beats {baseline} at every horizon measured (up to {40 * count} ms)."
    after = difference(curves, method, baseline, count + 1, metric, higher_is_better)
    return (f"On {what}, {method} beats {baseline} up to {count} token{'s' if count > 1 else ''} "
            f"({40 * count} ms) into the dream; at {40 * (count + 1)} ms it {after.verb} it (difference {after}).")


def verdicts_per_horizon(curves: pd.DataFrame, method: str, baseline: str, metric: str = "top1",
                         higher_is_better: bool = True, target: str | None = None) -> pd.Series:
    """Per horizon: ``beats``, ``loses to`` or ``not distinguishable from``: ``method`` against ``baseline`` by their
    paired difference (:func:`difference`)."""
    return pd.Series({horizon: difference(curves, method, baseline, horizon, metric, higher_is_better, target).verdict
                      for horizon in sorted(curves["horizon"].unique())})


def probe_decay(table: pd.DataFrame, horizons=(1, 4, 16), method: str = "dream (T=0)") -> pd.DataFrame:
    """Per target: the probe's score on ``method`` and its references at a few horizons, and at how many horizons
    the dream reads the truth better or worse than carrying the last observed token forward (paired differences
    over utterances)."""
    rows = []
    for target, part in table.groupby("target", sort=False):
        higher = part["metric"].iloc[0] == "accuracy"
        row = {"target": target, "metric": part["metric"].iloc[0]}
        pivot = part.pivot(index="method", columns="horizon", values="score")
        for horizon in horizons:
            if horizon in pivot.columns:
                for name in (method, "observed truth", "copy last token"):
                    row[f"{name} @{40 * horizon} ms"] = pivot.loc[name, horizon]
        verdicts = verdicts_per_horizon(table[table["target"] == target], method, "copy last token",
                                        "score", higher, target)
        row["horizons ahead of copy-last"] = f"{(verdicts == 'beats').sum()} of {len(verdicts)}"
        row["horizons behind copy-last"] = f"{(verdicts == 'loses to').sum()} of {len(verdicts)}"
        rows.append(row)
    return pd.DataFrame(rows)
