"""Interventions: move the model's latents, decode, listen, and measure what changed.

- **Along probe directions** (:func:`fit_linear_probe`, :func:`move`, :func:`intervention_table`): a linear probe
  reads pitch or energy as ``w · x + b``; adding ``Δ · w / |w|²`` to a latent changes that reading by exactly ``Δ``
  and leaves every direction orthogonal to ``w`` alone.  Beside it, the *data direction* (:func:`data_direction`):
  how the latents change on average per unit of the target.  For a phone class the direction is the difference of
  two class means.  The moved latents are decoded by the stop-gradient readout decoder, and the change is measured
  twice: by the probes again, after the decoded spectrogram is *observed* by the model anew (does the change
  survive a trip through the sound?), and independently — pYIN on the decoded audio for pitch, the decoded
  spectrogram's power for energy.  The matrix of all interventions against all measures says how disentangled the
  directions are.
- **Resynthesis with one factor randomized** (the RSSM, in the manner of the sparse interpretable audio model):
  keep the deterministic state and resample the stochastic latents (:func:`resample_stochastic`); keep the
  stochastic latents and shuffle their timing (:func:`shuffle_timing`); hear one utterance after another's context
  (:func:`swap_context`).

Used by the chapter "Interventions".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Direction:
    """A direction in a latent space and what moving along it means.

    Attributes:
        vector: ``(D,)``; moving a latent by ``step * vector`` changes the probe's reading by ``step`` units.
        name: what it moves (``pitch``, ``energy``, ``vowel → fricative``).
        unit: the probe's unit (``semitones``, ``dB``) or ``class means`` (one step = one mean difference).
    """

    vector: np.ndarray
    name: str
    unit: str


@dataclass
class LinearProbe:
    """A ridge probe on raw latents: ``reading = features @ weights + intercept``."""

    weights: np.ndarray
    intercept: float

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights.astype(features.dtype) + self.intercept

    def direction(self, name: str, unit: str) -> Direction:
        """The direction this probe reads, scaled so that one step moves its reading by one unit:
        ``w / |w|²`` (moving along anything orthogonal to ``w`` leaves the reading alone)."""
        return Direction(self.weights / (self.weights @ self.weights), name, unit)


def fit_linear_probe(features: np.ndarray, values: np.ndarray, alpha: float = 10.0) -> LinearProbe:
    """Ridge regression of ``values`` on ``features`` (standardised inside the fit, mapped back to raw features)."""
    from sklearn.linear_model import Ridge

    mean, spread = features.mean(0), features.std(0) + 1e-6
    ridge = Ridge(alpha=alpha).fit((features - mean) / spread, values)
    weights = ridge.coef_ / spread
    return LinearProbe(weights, float(ridge.intercept_ - mean @ weights))


def data_direction(features: np.ndarray, values: np.ndarray, name: str, unit: str) -> Direction:
    """How the latents themselves change with the target: the least-squares slope of every latent dimension on
    ``values`` (``Cov(x, y) / Var(y)``), so that one step moves a latent by the average change that one unit of the
    target brings in the data.  Unlike a probe's direction (the smallest move that changes a reading), it follows
    the data, where the decoder was trained."""
    centred = values - values.mean()
    slope = (features - features.mean(0)).T @ centred / (centred @ centred)
    return Direction(slope, f"{name} (data direction)", unit)


def class_direction(features: np.ndarray, classes: np.ndarray, source: str, target: str) -> Direction:
    """From the mean latent of class ``source`` to that of ``target``: one step moves a ``source`` latent onto the
    ``target`` mean (on average)."""
    return Direction(features[classes == target].mean(0) - features[classes == source].mean(0),
                     f"{source} → {target}", "class means")


def move(features: np.ndarray, direction: Direction, step: float) -> np.ndarray:
    """``features + step * direction.vector`` (any leading shape)."""
    return features + step * direction.vector.astype(features.dtype)


def mel_energy_db(mel: np.ndarray) -> np.ndarray:
    """A token's energy from its log-mel: ``10 log10`` of its mean mel power, ``(..., M, F)`` -> ``(...)``."""
    return 10 * np.log10(np.mean(10 ** (mel / 10), axis=(-2, -1)) + 1e-12)


def observe_features(model, mel: np.ndarray, context: int | None = None) -> np.ndarray:
    """The model's ``feature`` of every token of ``mel`` ``(B, T, M, F)``: ``(B, T, d)``."""
    import torch

    with torch.no_grad():
        return model.features(torch.as_tensor(mel, dtype=torch.float32), context=context)["feature"].numpy()


def decode(model, features: np.ndarray) -> np.ndarray:
    """The readout decoder's spectrogram of latents ``(..., d)``: ``(..., M, F)`` dB."""
    import torch

    return model.decode(torch.as_tensor(features, dtype=torch.float32)).numpy()


def median_pitch(mel_tokens: np.ndarray, config) -> float:
    """pYIN's median pitch (MIDI) over the voiced tokens of a decoded sequence ``(T, M, F)``; NaN if none."""
    from .applications import pyin_track

    track = pyin_track(mel_tokens, config)
    return float(np.nanmedian(track)) if np.isfinite(track).any() else np.nan


def intervention_table(model, windows_by_kind: dict, directions: dict, steps: dict, readers: dict, config,
                       pitch_windows: int = 6) -> pd.DataFrame:
    """Every intervention against every measure: the change each causes, relative to decoding the unmoved latents.

    Args:
        windows_by_kind: direction name -> ``(W, T, M, F)`` dB windows to intervene on (melodies for pitch, ...).
        directions: name -> :class:`Direction`.
        steps: name -> the step to move by (in the direction's unit).
        readers: measure name -> a :class:`LinearProbe` that reads the re-observed decoded sound.
        pitch_windows: windows per intervention measured by pYIN (it is the slow measure).

    Returns:
        One row per (intervention, measure): ``change`` (mean over windows of moved − unmoved) and its spread.
    """
    rows, base_pitch = [], {}
    for name, direction in directions.items():
        windows = windows_by_kind[name]
        observed = observe_features(model, windows)  # (W, T, d)
        base, moved = decode(model, observed), decode(model, move(observed, direction, steps[name]))  # (W, T, M, F)
        changes = {"energy, decoded power (dB)": mel_energy_db(moved).mean(1) - mel_energy_db(base).mean(1)}
        count = min(pitch_windows, len(windows))
        if id(windows) not in base_pitch:  # interventions on the same windows share the unmoved decoding's pitch
            base_pitch[id(windows)] = np.array([median_pitch(base[w], config) for w in range(count)])
        changes["pitch, pYIN on decoded audio (semitones)"] = np.array(
            [median_pitch(moved[w], config) for w in range(count)]) - base_pitch[id(windows)]
        again_base, again_moved = observe_features(model, base), observe_features(model, moved)
        for reader, probe in readers.items():
            changes[f"{reader}, probe after re-observing"] = probe(again_moved).mean(1) - probe(again_base).mean(1)
        for measure, change in changes.items():
            change = change[np.isfinite(change)]
            rows.append({"intervention": f"{direction.name} {steps[name]:+g} {direction.unit}", "measure": measure,
                         "change": float(change.mean()) if len(change) else np.nan,
                         "spread (sd)": float(change.std()) if len(change) > 1 else np.nan, "windows": len(change)})
    return pd.DataFrame(rows)


#: +4 semitones, +10 dB, one class-mean difference
STEPS = {"pitch": 4.0, "energy": 10.0, "pitch (data)": 4.0, "energy (data)": 10.0, "phone class": 1.0}


@dataclass
class InterventionSetup:
    """What the chapter moves and measures: probes fit on the model's observed training latents, their directions,
    and held-out windows to intervene on (melodies for pitch and energy, sentences for the phone class)."""

    probes: dict
    directions: dict
    windows: dict
    steps: dict


def book_setup(model, tokens, length: int, train_windows: int = 300, test_windows: int = 24,
               seed: int = 0) -> InterventionSetup:
    """Fit the pitch (music) and energy probes and the vowel → fricative direction on the ``feature`` of clean
    generated training windows of ``length`` tokens; cut held-out generated test windows to move."""
    from wmlib.model.evaluate import GENERATED, Windows

    from .targets import get_target

    train = Windows.from_tokens(tokens, "train", length, max_windows=train_windows, seed=seed, where=GENERATED)
    features = observe_features(model, train.mel)
    features = features.reshape(-1, features.shape[-1])
    labels = train.labels(tokens)
    probes = {}
    for name, target in (("pitch", "pitch_music"), ("energy", "energy")):
        values, mask = get_target(target)(labels)
        probes[name] = fit_linear_probe(features[mask], values[mask])
    directions = {"pitch": probes["pitch"].direction("pitch", "semitones"),
                  "energy": probes["energy"].direction("energy", "dB")}
    for name, target, unit in (("pitch (data)", "pitch_music", "semitones"), ("energy (data)", "energy", "dB")):
        values, mask = get_target(target)(labels)
        directions[name] = data_direction(features[mask], values[mask], name.split()[0], unit)
    directions["phone class"] = class_direction(features, labels["phone_class"].to_numpy(), "vowel", "fricative")
    test = {source: Windows.from_tokens(tokens, "test", length, max_windows=test_windows, seed=seed,
                                        where={**GENERATED, "source": source}).mel for source in ("music", "speech")}
    windows = {"pitch": test["music"], "energy": test["music"], "pitch (data)": test["music"],
               "energy (data)": test["music"], "phone class": test["speech"]}
    return InterventionSetup(probes, directions, windows, dict(STEPS))


# ----------------------------------------------------------------------------------------------------------------
# The causal test, decoder-free: does the model's own next-token prediction move?

#: What each intervention should shift in the model's prediction: direction name -> (measure, bank label, the
#: bank tokens it is read over, what it is in a word).  Read as an expectation under the model's own distribution.
CAUSAL_MEASURES = {
    "pitch": ("expected pitch of the next token (semitones)", "midi_pitch", "voiced music", "pitch"),
    "pitch (data)": ("expected pitch of the next token (semitones)", "midi_pitch", "voiced music", "pitch"),
    "energy": ("expected energy of the next token (dB)", "energy_db", "all", "energy"),
    "energy (data)": ("expected energy of the next token (dB)", "energy_db", "all", "energy"),
    "phone class": ("probability that the next token is a fricative", "fricative", "speech phones", "phone class"),
}


def bank_values(bank, label: str, over: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, mask)`` over the candidate bank's tokens: the label read (``fricative``: 1 for a fricative phone,
    else 0) and which tokens it is read over (``voiced music``, ``speech phones`` or ``all``)."""
    labels = bank.labels
    if over == "voiced music":
        mask = (labels["source"] == "music").to_numpy() & labels["voiced"].to_numpy(dtype=bool)
    elif over == "speech phones":
        mask = (labels["source"] == "speech").to_numpy() & ~labels["phone_class"].isin(["", "sil"]).to_numpy()
    else:
        mask = np.ones(len(labels), dtype=bool)
    values = ((labels["phone_class"] == "fricative").to_numpy(dtype=float) if label == "fricative"
              else labels[label].to_numpy(dtype=float))
    return values, mask & np.isfinite(values)


def expected_next(model, features: np.ndarray, bank, values: np.ndarray, mask: np.ndarray,
                  temperature: float = 1.0) -> np.ndarray:
    """The expectation of ``values`` over the bank's tokens in ``mask``, under the model's own distribution of the
    next token given each state ``features`` ``(..., d)``: the softmax of its contrastive scores (the InfoNCE
    temperature it trained with, times ``temperature``).  Decoder-free: only the prediction head and the bank's
    keys are read.  Returns ``(...)``."""
    import torch
    import torch.nn.functional as F

    if model.config.dynamics != "transformer" or not model.config.contrastive:
        raise ValueError("the causal test reads a contrastive transformer's prediction head (the default model); "
                         f"this model is {model.config.dynamics} / {model.config.objective}")
    keys = bank.keys[torch.as_tensor(np.flatnonzero(mask))]  # (K, P)
    target = torch.as_tensor(values[mask], dtype=torch.float32)
    flat = torch.as_tensor(features.reshape(-1, features.shape[-1]), dtype=torch.float32)
    with torch.no_grad():
        prediction = F.normalize(model.prediction_heads[0](flat), dim=-1)  # (N, P)
        weights = torch.softmax(prediction @ keys.T / (model.config.temperature * temperature), dim=-1)  # (N, K)
        return (weights @ target).numpy().reshape(features.shape[:-1])


def random_direction(direction: Direction, seed: int = 0) -> Direction:
    """The control: a direction of the same norm, drawn uniformly at random."""
    vector = np.random.default_rng(seed).normal(size=direction.vector.shape)
    vector *= np.linalg.norm(direction.vector) / np.linalg.norm(vector)
    return Direction(vector.astype(direction.vector.dtype), f"random ({direction.name})", direction.unit)


def causal_table(model, windows_by_kind: dict, directions: dict, steps: dict, bank, first: int = 8,
                 every: int = 4, seed: int = 0, n_boot: int = 1000) -> tuple[pd.DataFrame, dict]:
    """Move the model's state along each direction and along a random direction of the same norm, and measure how
    its own next-token prediction shifts (:data:`CAUSAL_MEASURES`, :func:`expected_next`): decoder-free.

    Args:
        windows_by_kind: direction name -> :class:`wmlib.model.evaluate.Windows` of held-out windows to move (the
            states of positions ``first, first + every, …`` of each window are moved; their shifts are averaged
            per window).
        steps: direction name -> the step, in the direction's unit.

    Returns:
        ``(table, shifts)``: one row per direction with the mean shift of the measure under the direction and under
        the random control (95% intervals over utterances), their paired difference and its verdict, and
        ``conclusion``; ``shifts``: direction name -> ``(direction's per-window shift, control's, utterances)``.
    """
    from wmlib.model.bootstrap import bootstrap_ci, paired_difference

    rows, shifts = [], {}
    for offset, (name, direction) in enumerate(directions.items()):
        windows = windows_by_kind[name]
        states = observe_features(model, windows.mel)[:, first::every]  # (W, N, d)
        measure, label, over, noun = CAUSAL_MEASURES[name]
        values, mask = bank_values(bank, label, over)
        control = random_direction(direction, seed + offset)
        base = expected_next(model, states, bank, values, mask)
        moved = expected_next(model, move(states, direction, steps[name]), bank, values, mask).mean(1) - base.mean(1)
        random = expected_next(model, move(states, control, steps[name]), bank, values, mask).mean(1) - base.mean(1)
        groups = windows.utt_ids
        shifts[name] = (moved, random, groups)
        result = paired_difference(moved, random, groups, n_boot=n_boot, seed=seed)
        low, high = bootstrap_ci(moved, groups, n_boot=n_boot, seed=seed)
        random_low, random_high = bootstrap_ci(random, groups, n_boot=n_boot, seed=seed)
        uses = "uses" if result.verdict == "beats" else "does not use"
        rows.append({"intervention": f"{direction.name} {steps[name]:+g} {direction.unit}", "measure": measure,
                     "windows": len(moved), "utterances": len(np.unique(groups)),
                     "shift": float(moved.mean()), "shift_low": low, "shift_high": high,
                     "random": float(random.mean()), "random_low": random_low, "random_high": random_high,
                     "difference": result.difference, "difference_low": result.low, "difference_high": result.high,
                     "verdict": result.verdict,
                     "conclusion": f"the model {uses} the {name} direction to predict the next token's {noun}"})
    return pd.DataFrame(rows), shifts


def causal_findings(causal: pd.DataFrame) -> list[str]:
    """One sentence per row of :func:`causal_table`: its conclusion and the numbers behind it."""
    return [f"**{row.intervention}**: {row.conclusion} (shift {row.shift:+.3f} against {row.random:+.3f} for a "
            f"random direction; paired difference {row.difference:+.3f} [{row.difference_low:+.3f}, "
            f"{row.difference_high:+.3f}], {row.windows} windows of {row.utterances} utterances)."
            for row in causal.itertuples(index=False)]


def causal_windows(tokens, length: int, windows: int = 120, seed: int = 0) -> dict:
    """Held-out windows to move for :func:`causal_table`: up to ``windows`` of clean generated test music (pitch and
    energy) and of speech (phone class), one every eighth of a window (they overlap: the test split's speech is
    short; the intervals resample whole utterances)."""
    from wmlib.model.evaluate import GENERATED, Windows

    found = {source: Windows.from_tokens(tokens, "test", length, max_windows=windows, seed=seed,
                                         stride=max(1, length // 8), where={**GENERATED, "source": source})
             for source in ("music", "speech")}
    return {"pitch": found["music"], "energy": found["music"], "pitch (data)": found["music"],
            "energy (data)": found["music"], "phone class": found["speech"]}


# ----------------------------------------------------------------------------------------------------------------
# Resynthesis with one factor randomized (RSSM)


def _rssm_roll(model, deter0, stochs):
    """Re-run the RSSM's GRU over a given sequence of stochastic states ``(B, T, S*C)`` from ``deter0`` ``(B, D)``:
    the features ``concat(h_t, z_t)`` ``(B, T, ·)`` the decoder reads (``h_t`` from ``z_<t``, as in observation)."""
    import torch

    rssm = model.dynamics
    deter, features = deter0, []
    previous = torch.zeros_like(stochs[:, 0])
    for t in range(stochs.shape[1]):
        if t:
            deter = rssm._gru(deter, rssm._gates_from_deter(deter) + rssm.gru_from_stoch(previous))
        features.append(torch.cat([deter, stochs[:, t]], -1))
        previous = stochs[:, t]
    return torch.stack(features, 1)


def _require_rssm(model):
    if model.config.dynamics != "rssm":
        raise ValueError(f"resynthesis by factors needs the RSSM's deterministic and stochastic states; this model "
                         f"has {model.config.dynamics} dynamics")


def resample_stochastic(model, mel: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keep the deterministic states of an observed sequence, draw new stochastic states from the prior at each
    step; ``(B, T, M, F)`` -> ``(original decoded, resynthesised decoded)``, each ``(B, T, M, F)`` dB."""
    import torch
    import torch.nn.functional as F

    _require_rssm(model)
    rssm, config = model.dynamics, model.config
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        observed = model.observe(torch.as_tensor(mel, dtype=torch.float32), sample=False)
        probs = rssm._mixed_probs(rssm.prior(observed["deter"]))  # (B, T, S, C)
        draws = torch.multinomial(probs.flatten(0, 2), 1, generator=generator)[:, 0].view(probs.shape[:3])
        stoch = F.one_hot(draws, config.stoch_classes).to(probs.dtype).flatten(-2)  # (B, T, S*C)
        resampled = torch.cat([observed["deter"], stoch], -1)
        return model.decode(observed["feature"]).numpy(), model.decode(resampled).numpy()


def shuffle_timing(model, mel: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keep the posterior's stochastic states of an observed sequence but shuffle their order in time, re-run the
    deterministic path over them, decode: ``(original decoded, shuffled decoded)``."""
    import torch

    _require_rssm(model)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        observed = model.observe(torch.as_tensor(mel, dtype=torch.float32), sample=False)
        order = torch.as_tensor(rng.permutation(mel.shape[1]))
        rolled = _rssm_roll(model, observed["deter"][:, 0], observed["stoch"][:, order])
        return model.decode(observed["feature"]).numpy(), model.decode(rolled).numpy()


def swap_context(model, first: np.ndarray, second: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """``second``'s tokens after their own first ``context`` tokens, and after ``first``'s: the decoded tokens of
    ``second[context:]`` in both cases, ``(own context, swapped context)``, each ``(B, T - context, M, F)`` dB."""
    own = decode(model, observe_features(model, second))[:, context:]
    swapped_input = np.concatenate([first[:, :context], second[:, context:]], 1)
    swapped = decode(model, observe_features(model, swapped_input))[:, context:]
    return own, swapped


def resynthesis_table(model, music: np.ndarray, speech: np.ndarray, context: int, config, seed: int = 0,
                      pitch_windows: int = 3) -> tuple[pd.DataFrame, dict]:
    """Each resynthesis of the RSSM against decoding the observed latents unchanged, on melodies and sentences.

    Measures: the spectrogram change (RMS difference in dB), the energy change (decoded power, dB, absolute), and
    the pitch change (pYIN, semitones, absolute; melodies, ``pitch_windows`` of them).  The swapped context puts
    the other source's first ``context`` tokens before each window's own continuation (speech before music, music
    before speech); only the continuation is compared.

    Returns:
        ``(table, sounds)``: the table, and for the first melody each version's decoded tokens, for the players.
    """
    versions = {}
    for source, windows, other in (("music", music, speech), ("speech", speech, music)):
        count = min(len(windows), len(other))
        windows, other = windows[:count], other[:count]
        base, resampled = resample_stochastic(model, windows, seed)
        _, shuffled = shuffle_timing(model, windows, seed)
        own, swapped = swap_context(model, other, windows, context)
        versions[source] = {"stochastic states resampled": (base, resampled), "timing shuffled": (base, shuffled),
                            "context swapped": (own, swapped)}
    rows, base_pitch = [], {}
    for source, pairs in versions.items():
        for name, (base, changed) in pairs.items():
            row = {"source": source, "resynthesis": name,
                   "spectrogram change (dB RMS)": float(np.sqrt(((changed - base) ** 2).mean())),
                   "energy change (dB)": float(np.abs(mel_energy_db(changed) - mel_energy_db(base)).mean())}
            if source == "music":
                count = min(pitch_windows, len(base))
                if id(base) not in base_pitch:  # resampling and shuffling share the unchanged decoding
                    base_pitch[id(base)] = [median_pitch(base[w], config) for w in range(count)]
                changes = [abs(median_pitch(changed[w], config) - base_pitch[id(base)][w]) for w in range(count)]
                row["pitch change (semitones)"] = float(np.nanmean(changes)) if np.isfinite(changes).any() else np.nan
            rows.append(row)
    sounds = {"decoded as observed": versions["music"]["timing shuffled"][0][0]}
    sounds |= {name: changed[0] for name, (_, changed) in versions["music"].items()}
    return pd.DataFrame(rows), sounds
