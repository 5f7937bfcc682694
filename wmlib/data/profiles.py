"""Corpus profiles: how much audio of each kind, which voices and instruments, which are held out.

A profile fixes the whole embedded corpus from one seed, so ``tiny`` (tests, CI), ``default`` (the book) and
``large`` (GPU-scale) are each reproducible bit for bit on the same machine.

Used by every chapter (through :func:`wmlib.data.corpus.build_corpus`) and by ``python -m wmlib corpus``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# One speaker = a Festival voice plus an optional F0 target and range (diphone voices only: mean and standard
# deviation in Hz) and a duration stretch (> 1 is slower).  Names are what labels and plots show.
VOICES: dict[str, dict] = {
    "slt": {"festival": "cmu_us_slt_arctic_hts", "f0_mean": None, "stretch": 1.0},  # female, HTS
    "kal": {"festival": "kal_diphone", "f0_mean": None, "stretch": 1.0},  # male, ~105 Hz
    "kal_high": {"festival": "kal_diphone", "f0_mean": 165, "stretch": 0.95},
    "kal_slow": {"festival": "kal_diphone", "f0_mean": 130, "stretch": 1.25},
    "kal_low_wide": {"festival": "kal_diphone", "f0_mean": 95, "f0_std": 32, "stretch": 1.1},  # lively, low
    "kal_fast_flat": {"festival": "kal_diphone", "f0_mean": 145, "f0_std": 5, "stretch": 0.8},  # monotone, fast
    "ked": {"festival": "ked_diphone", "f0_mean": None, "stretch": 1.0},  # male, held out
    "ked_high": {"festival": "ked_diphone", "f0_mean": 175, "stretch": 1.0},  # held out
}

# Real recordings that Debian ships (installed by `make book`; see data/README.md for licences).  Speech: 8 kHz
# telephone prompts of real speakers; ``files`` is the folder under /usr/share/asterisk/sounds, ``format`` the
# file type (``gsm`` = raw GSM 06.10), ``transcripts`` the gzipped "name: text" list (under /usr/share) where a
# package ships one (the French and Spanish lists come in packages that conflict with armelle's and July's).
REAL_SPEAKERS: dict[str, dict] = {
    "fr_june": {"package": "asterisk-core-sounds-fr-wav", "files": "fr_CA_f_June", "format": "wav",
                "language": "fr", "sex": "female"},
    "fr_armelle": {"package": "asterisk-prompt-fr-armelle", "files": "fr", "format": "gsm", "language": "fr",
                   "sex": "female"},
    "es_allison": {"package": "asterisk-core-sounds-es-wav", "files": "es_MX_f_Allison", "format": "wav",
                   "language": "es", "sex": "female"},
    "es_july": {"package": "asterisk-prompt-es-co", "files": "es", "format": "gsm", "language": "es",
                "sex": "female"},
    "it_carlo": {"package": "asterisk-core-sounds-it-wav", "files": "it_IT_m_Carlo", "format": "wav",
                 "language": "it", "sex": "male",
                 "transcripts": "doc/asterisk-core-sounds-it/core-sounds-it.txt.gz"},
    "it_menardi": {"package": "asterisk-prompt-it-menardi-wav", "files": "it_IT_f_Menardi", "format": "wav",
                   "language": "it", "sex": "female"},
    "ru_ivrvoice": {"package": "asterisk-core-sounds-ru-wav", "files": "ru_RU_f_IvrvoiceRU", "format": "wav",
                    "language": "ru", "sex": "female",
                    "transcripts": "doc/asterisk-core-sounds-ru/core-sounds-ru.txt.gz"},
}
# KTuberling's spoken words (Debian `ktuberling-data`): real people reading single words (~1 s each; the file
# name is the word) in many languages, wideband (22-48 kHz Ogg Vorbis or Opus; French at 8 kHz), chained like the
# Asterisk prompts.  One folder per language; the package does not say who recorded which, so the voice label is
# the language's folder (one recorded voice per language, as far as listening tells).  Only the 13 languages with
# more than 50 s of words are used.
KTUBERLING_LANGUAGES = ("lt", "da", "fr", "nn", "ca", "uk", "ru", "el", "en", "gl", "wa", "sl", "de")
REAL_SPEAKERS |= {f"kt_{language}": {"package": "ktuberling-data", "folder": f"ktuberling/sounds/{language}",
                                    "format": ("ogg", "opus", "wav"), "language": language, "sex": None}
                  for language in KTUBERLING_LANGUAGES}
ASTERISK_SPEAKERS = tuple(name for name in REAL_SPEAKERS if not name.startswith("kt_"))
# Real recorded music: the five tracks of Asterisk's music on hold (8 kHz), by file name under
# /usr/share/asterisk/moh.
REAL_TRACKS: dict[str, dict] = {
    name: {"package": "asterisk-moh-opsound-wav", "file": f"{file}.wav", "artist": file.split("-")[0]}
    for name, file in [("cold_day", "macroform-cold_day"), ("robot_dity", "macroform-robot_dity"),
                       ("the_simplicity", "macroform-the_simplicity"),
                       ("morning_coffee", "manolo_camp-morning_coffee"), ("system", "reno_project-system")]
}

# One instrument = (soundfont, General MIDI program, pitch range).  Soundfonts: "timgm" is TimGM6mb.sf2 from
# pretty_midi's wheel, "fluidr3" is Debian's FluidR3_GM.sf2, "freepats" Debian's freepats through TiMidity.
# Ranges keep each melody where the instrument sounds natural and its fundamental is strong.  (Marimba, TimGM's
# acoustic bass and FluidR3's string ensemble were tried and dropped: an independent pYIN estimate agreed with
# their note labels on only 63-86% of tokens — fast decay, weak fundamental, detuned chorus — against 93-99% for
# these.)
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
    # Debian's freepats: samples of real instruments, played by TiMidity (pYIN agreed with the labels on 100% of
    # the notes of a test melody for these four; accordion 86% and sitar 43% were left out).
    "steel_guitar_freepats": {"soundfont": "freepats", "program": 25, "low": 45, "high": 76},
    "bassoon_freepats": {"soundfont": "freepats", "program": 70, "low": 36, "high": 65},
    "tuba_freepats": {"soundfont": "freepats", "program": 58, "low": 30, "high": 55},
    "harp_freepats": {"soundfont": "freepats", "program": 46, "low": 48, "high": 84},
    # MuseScore's General MIDI soundfont (Debian `musescore-general-soundfont-small`): eight more timbres (pYIN
    # agreed with the labels on 95-100% of their voiced tokens; its organ, 11%, octave errors, and choir, 89%, were
    # left out).
    "piano_musescore": {"soundfont": "musescore", "program": 0, "low": 48, "high": 84},
    "electric_piano_musescore": {"soundfont": "musescore", "program": 4, "low": 48, "high": 84},
    "accordion_musescore": {"soundfont": "musescore", "program": 21, "low": 55, "high": 84},
    "steel_guitar_musescore": {"soundfont": "musescore", "program": 25, "low": 45, "high": 76},
    "viola_musescore": {"soundfont": "musescore", "program": 41, "low": 48, "high": 79},
    "horn_musescore": {"soundfont": "musescore", "program": 60, "low": 41, "high": 72},
    "tenor_sax_musescore": {"soundfont": "musescore", "program": 66, "low": 49, "high": 80},
    "recorder_musescore": {"soundfont": "musescore", "program": 74, "low": 60, "high": 93},
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
        seconds_real_speech / seconds_real_music: real recordings (Debian's Asterisk prompts and music on hold),
            shared equally among ``real_speakers`` / ``real_tracks``.
        heldout_real: real speakers and tracks never trained on: by default a whole language (Russian: its
            Asterisk speaker and its KTuberling words), a whole speaker of a trained language (Italian, Menardi; and
            KTuberling's English reader, a real voice of the generated speech's language) and two whole tracks (one
            by an artist heard in training, one by an artist never heard).
        randomized_fraction: the share of generated train/valid/test utterances that also get a randomized copy
            (domain randomization, :mod:`wmlib.data.augment`); the copy keeps its clean source's split and labels.
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
    heldout_instruments: tuple[str, ...] = ("vibraphone_fluidr3", "cello_timgm", "oboe_fluidr3", "harp_freepats",
                                            "horn_musescore")
    seconds_real_speech: float = 0.0
    seconds_real_music: float = 0.0
    real_speakers: tuple[str, ...] = tuple(REAL_SPEAKERS)
    real_tracks: tuple[str, ...] = tuple(REAL_TRACKS)
    heldout_real: tuple[str, ...] = ("ru_ivrvoice", "it_menardi", "the_simplicity", "system", "kt_ru", "kt_en")
    randomized_fraction: float = 0.5
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
        for name in self.real_speakers:
            assert name in REAL_SPEAKERS, (
                f"profile {self.name}: unknown real speaker {name!r}; known: {sorted(REAL_SPEAKERS)}")
        for name in self.real_tracks:
            assert name in REAL_TRACKS, (
                f"profile {self.name}: unknown real track {name!r}; known: {sorted(REAL_TRACKS)}")
        assert set(self.heldout_real) <= set(self.real_speakers) | set(self.real_tracks), (
            "held-out real speakers and tracks must be among the profile's")
        assert 0.0 <= self.randomized_fraction <= 1.0, "randomized_fraction must lie in [0, 1]"

    @property
    def total_seconds(self) -> float:
        """Seconds of clean audio (generated and real; randomized copies come on top)."""
        return (self.seconds_speech + self.seconds_music + self.seconds_noise + self.seconds_real_speech
                + self.seconds_real_music)


PROFILES: dict[str, Profile] = {
    # Seconds to build; every voice, instrument, noise kind, real speaker and track appears at least once.
    "tiny": Profile("tiny", seconds_speech=60, seconds_music=84, seconds_noise=20, seconds_real_speech=140,
                    seconds_real_music=40),
    # The book: 75 minutes generated (speech 29, music 36, noise 10), half of it again randomized, and 46
    # minutes of real recordings: 14 of telephone prompts (2 minutes a speaker), 20 of spoken words (up to 2 minutes
    # a language), 12 of music.
    "default": Profile("default", seconds_speech=1740, seconds_music=2156, seconds_noise=580,
                       seconds_real_speech=2400, seconds_real_music=720),
    # GPU scale: about 10 hours generated, every real recording Debian ships of the named packages (~3.5 h).
    "large": Profile("large", seconds_speech=16200, seconds_music=14400, seconds_noise=5400,
                     seconds_real_speech=34_000, seconds_real_music=1080),
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
