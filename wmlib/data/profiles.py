"""Corpus profiles: how much audio of each kind, which voices and instruments, which are held out.

A profile fixes the whole embedded corpus from one seed, so ``tiny`` (tests, CI), ``default`` (the book) and
``large`` (GPU-scale) are each reproducible bit for bit on the same machine.

Used by every chapter (through :func:`wmlib.data.corpus.build_corpus`) and by ``python -m wmlib corpus``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# One speaker = a Festival voice plus an optional F0 target (diphone voices only) and a duration stretch.
# Names are what labels and plots show.
VOICES: dict[str, dict] = {
    "slt": {"festival": "cmu_us_slt_arctic_hts", "f0_mean": None, "stretch": 1.0},  # female, HTS
    "kal": {"festival": "kal_diphone", "f0_mean": None, "stretch": 1.0},  # male, ~105 Hz
    "kal_high": {"festival": "kal_diphone", "f0_mean": 165, "stretch": 0.95},
    "kal_slow": {"festival": "kal_diphone", "f0_mean": 130, "stretch": 1.25},
    "ked": {"festival": "ked_diphone", "f0_mean": None, "stretch": 1.0},  # male, held out
    "ked_high": {"festival": "ked_diphone", "f0_mean": 175, "stretch": 1.0},  # held out
}

# One instrument = (soundfont, General MIDI program, pitch range).  Soundfonts: "timgm" is TimGM6mb.sf2 from
# pretty_midi's wheel, "fluidr3" is Debian's FluidR3_GM.sf2.  Ranges keep each melody where the
# instrument sounds natural and its fundamental is strong.  (Marimba, TimGM's acoustic bass and FluidR3's string
# ensemble were tried and dropped: an independent pYIN estimate agreed with their note labels on only 63-86% of
# tokens — fast decay, weak fundamental, detuned chorus — against 93-99% for these.)
INSTRUMENTS: dict[str, dict] = {
    "piano_fluidr3": {"soundfont": "fluidr3", "program": 0, "low": 48, "high": 84},
    "piano_timgm": {"soundfont": "timgm", "program": 0, "low": 48, "high": 84},
    "vibraphone_fluidr3": {"soundfont": "fluidr3", "program": 11, "low": 53, "high": 84},
    "harpsichord_timgm": {"soundfont": "timgm", "program": 6, "low": 48, "high": 84},
    "nylon_guitar_fluidr3": {"soundfont": "fluidr3", "program": 24, "low": 45, "high": 76},
    "electric_bass_fluidr3": {"soundfont": "fluidr3", "program": 33, "low": 36, "high": 60},
    "violin_fluidr3": {"soundfont": "fluidr3", "program": 40, "low": 55, "high": 88},
    "cello_timgm": {"soundfont": "timgm", "program": 42, "low": 36, "high": 67},
    "harmonica_fluidr3": {"soundfont": "fluidr3", "program": 22, "low": 55, "high": 84},
    "trumpet_timgm": {"soundfont": "timgm", "program": 56, "low": 55, "high": 82},
    "trombone_fluidr3": {"soundfont": "fluidr3", "program": 57, "low": 40, "high": 70},
    "alto_sax_timgm": {"soundfont": "timgm", "program": 65, "low": 49, "high": 78},
    "clarinet_fluidr3": {"soundfont": "fluidr3", "program": 71, "low": 50, "high": 84},
    "flute_timgm": {"soundfont": "timgm", "program": 73, "low": 60, "high": 93},
    "square_lead_fluidr3": {"soundfont": "fluidr3", "program": 80, "low": 48, "high": 84},
    "oboe_fluidr3": {"soundfont": "fluidr3", "program": 68, "low": 58, "high": 86},
}

NOISE_KINDS = ("white", "pink", "brown", "blue", "filtered_bursts", "impulses")


@dataclass(frozen=True)
class Profile:
    """How big the embedded corpus is and what it holds.

    Args:
        name: profile name (also the cache folder name).
        seconds_speech / seconds_music / seconds_noise: target audio per source (reached within one utterance).
        voices / instruments: names from :data:`VOICES` / :data:`INSTRUMENTS` used by this profile.
        heldout_voices / heldout_instruments: subsets never put in train/valid/test; their split is ``heldout``.
        seed: the one seed every random choice of the corpus derives from.
        valid_fraction / test_fraction: per-utterance split fractions of the non-held-out material.
    """

    name: str
    seconds_speech: float
    seconds_music: float
    seconds_noise: float
    voices: tuple[str, ...] = tuple(VOICES)
    instruments: tuple[str, ...] = tuple(INSTRUMENTS)
    heldout_voices: tuple[str, ...] = ("ked", "ked_high")
    heldout_instruments: tuple[str, ...] = ("vibraphone_fluidr3", "cello_timgm", "oboe_fluidr3")
    seed: int = 0
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    noise_kinds: tuple[str, ...] = field(default=NOISE_KINDS)

    def __post_init__(self):
        for name in self.voices:
            assert name in VOICES, f"profile {self.name}: unknown voice {name!r}; known: {sorted(VOICES)}"
        for name in self.instruments:
            assert name in INSTRUMENTS, (
                f"profile {self.name}: unknown instrument {name!r}; known: {sorted(INSTRUMENTS)}")
        assert set(self.heldout_voices) <= set(self.voices), "held-out voices must be among the profile's voices"
        assert set(self.heldout_instruments) <= set(self.instruments), "held-out instruments must be in the profile"

    @property
    def total_seconds(self) -> float:
        return self.seconds_speech + self.seconds_music + self.seconds_noise


PROFILES: dict[str, Profile] = {
    # Seconds to build; every voice, instrument and noise kind appears at least once.
    "tiny": Profile("tiny", seconds_speech=60, seconds_music=60, seconds_noise=20),
    # The book: 64 minutes, 45% speech / 40% music / 15% noise.
    "default": Profile("default", seconds_speech=1740, seconds_music=1540, seconds_noise=580),
    # GPU scale: about 10 hours.
    "large": Profile("large", seconds_speech=16200, seconds_music=14400, seconds_noise=5400),
}


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not in :data:`PROFILES`."""


def get_profile(name: str | Profile | None = None) -> Profile:
    """Return a profile by name; ``None`` reads ``$WMLIB_PROFILE`` (default ``"default"``).

    Raises:
        UnknownProfileError: naming the profiles that exist.
    """
    if isinstance(name, Profile):
        return name
    name = name or os.environ.get("WMLIB_PROFILE", "default")
    if name not in PROFILES:
        raise UnknownProfileError(
            f"unknown profile {name!r}; choose one of {', '.join(PROFILES)} "
            "(e.g. `python -m wmlib corpus --profile tiny` or WMLIB_PROFILE=tiny)"
        )
    return PROFILES[name]


def data_root() -> Path:
    """Where generated corpora and caches live: ``$WMLIB_DATA`` or ``data/generated`` in the repository."""
    env = os.environ.get("WMLIB_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "generated"
