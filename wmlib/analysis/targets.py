"""What a probe reads out of a representation: targets registered by name.

A target is a function from the per-token label table (:attr:`wmlib.data.features.TokenSet.labels`) to an array of
targets plus a mask of the tokens it is defined on (voiced tokens for pitch, speech tokens for phones, ...), and a
kind: ``"regression"`` or ``"classification"``.  Adding one for coursework takes a few lines::

    from wmlib.analysis.targets import register_target

    @register_target("word_initial", "classification", "is the token in the first phone of its word?")
    def word_initial(labels):
        speech = labels["source"].eq("speech") & labels["word"].ne("")
        first = labels["word"].ne(labels["word"].shift()) | labels["utt_id"].ne(labels["utt_id"].shift())
        return first.astype(int).to_numpy(), speech.to_numpy()

Every probe of the book then accepts ``"word_initial"`` by name.  Used by the chapters "Pitch and energy" and
"Phones, sources and voices", and by the chapter "Extending the book".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = ("regression", "classification")


@dataclass(frozen=True)
class Target:
    """A named probe target.

    Attributes:
        name: the registry key.
        kind: ``"regression"`` or ``"classification"``.
        description: one line for tables and figures.
        function: ``labels -> (values, mask)``; ``values`` has one entry per row of ``labels`` (only the masked ones
            are read), ``mask`` is boolean.
        unit: the unit of a regression target (``"semitones"``, ``"dB"``), shown in tables.
        identity: True for targets that name a voice or an instrument: their classes are the training voices and
            instruments, so there is no transfer to held-out ones.
        strata: the label column the probes' folds are stratified by (:func:`wmlib.analysis.probes.grouped_folds`).
    """

    name: str
    kind: str
    description: str
    function: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]
    unit: str = ""
    identity: bool = False
    strata: str = "voice"

    def __call__(self, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values, mask = self.function(labels)
        values, mask = np.asarray(values), np.asarray(mask, dtype=bool)
        if values.shape != (len(labels),) or mask.shape != (len(labels),):
            raise TargetError(f"target {self.name!r} returned values {values.shape} and mask {mask.shape}; both must "
                              f"have one entry per label row ({len(labels)})")
        if self.kind == "regression":
            values = values.astype(np.float64)
            if not np.isfinite(values[mask]).all():
                raise TargetError(f"target {self.name!r} has non-finite values on its mask")
        else:
            values = values.astype(str)
        return values, mask


class TargetError(ValueError):
    """An unknown target name, or a target function that returns the wrong shapes."""


TARGETS: dict[str, Target] = {}


def register_target(name: str, kind: str, description: str, unit: str = "", identity: bool = False,
                    strata: str = "voice"):
    """Decorator: register ``function(labels) -> (values, mask)`` as the target ``name`` (replacing one of that name).
    ``strata``: the label column whose values every cross-validation fold must hold (default: the voice or
    instrument)."""
    if kind not in KINDS:
        raise TargetError(f"target kind must be one of {KINDS}, got {kind!r}")

    def decorate(function):
        TARGETS[name] = Target(name, kind, description, function, unit, identity, strata)
        return function

    return decorate


def get_target(name: str | Target) -> Target:
    """The registered target ``name`` (a :class:`Target` passes through).

    Raises:
        TargetError: for an unknown name, listing the registered ones.
    """
    if isinstance(name, Target):
        return name
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; registered targets: {', '.join(TARGETS)} (add one with "
                          "wmlib.analysis.targets.register_target)")
    return TARGETS[name]


def _source(labels: pd.DataFrame, source: str) -> np.ndarray:
    return labels["source"].to_numpy() == source


def _voiced(labels: pd.DataFrame, source: str) -> np.ndarray:
    return _source(labels, source) & labels["voiced"].to_numpy(dtype=bool) & np.isfinite(labels["midi_pitch"])


# -- pitch and energy (chapter "Pitch and energy") ----------------------------------------------------------------

@register_target("pitch_music", "regression", "music: f0 of the sounding note (MIDI semitones)", unit="semitones")
def pitch_music(labels):
    return labels["midi_pitch"].fillna(0.0).to_numpy(), _voiced(labels, "music")


@register_target("pitch_speech", "regression", "speech: f0 of voiced tokens, pYIN (semitones)", unit="semitones")
def pitch_speech(labels):
    return labels["midi_pitch"].fillna(0.0).to_numpy(), _voiced(labels, "speech")


@register_target("pitch_class_music", "classification", "music: pitch class of the note (12 classes)")
def pitch_class_music(labels):
    pitch = np.round(labels["midi_pitch"].fillna(0.0).to_numpy()).astype(int) % 12
    names = np.array(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])
    return names[pitch], _voiced(labels, "music")


@register_target("note_music", "classification", "music: the MIDI note (one class per semitone)")
def note_music(labels):
    return np.round(labels["midi_pitch"].fillna(0.0).to_numpy()).astype(int), _voiced(labels, "music")


@register_target("energy", "regression", "RMS energy of the token (dB)", unit="dB")
def energy(labels):
    return labels["energy_db"].to_numpy(), np.ones(len(labels), dtype=bool)


# -- phones, sources and voices (chapter "Phones, sources and voices") --------------------------------------------

@register_target("phone", "classification", "speech: the phone (Festival's phone set, silence included)")
def phone(labels):
    return labels["phone"].to_numpy(), _source(labels, "speech") & (labels["phone"].to_numpy() != "")


@register_target("phone_class", "classification", "speech: vowel, stop, fricative, nasal, approximant, ... or silence")
def phone_class(labels):
    return labels["phone_class"].to_numpy(), _source(labels, "speech") & (labels["phone_class"].to_numpy() != "")


@register_target("source", "classification", "speech, music or noise", strata="source")
def source(labels):
    return labels["source"].to_numpy(), np.ones(len(labels), dtype=bool)


@register_target("voice", "classification", "speech: which voice speaks", identity=True)
def voice(labels):
    return labels["voice"].to_numpy(), _source(labels, "speech")


@register_target("instrument", "classification", "music: which instrument plays", identity=True)
def instrument(labels):
    return labels["voice"].to_numpy(), _source(labels, "music")


#: The targets of the chapter "Pitch and energy" and of "Phones, sources and voices".
PITCH_TARGETS = ("pitch_music", "pitch_speech", "pitch_class_music", "energy")
PHONE_TARGETS = ("phone", "phone_class", "source", "voice", "instrument")
