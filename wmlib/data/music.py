"""Music: monophonic melodies with exact note labels, rendered through General MIDI soundfonts.

Melodies are seeded random walks on a scale inside each instrument's natural range; the labels are the MIDI notes
themselves (pitch, onset, offset, velocity), so pitch is exact rather than estimated.  Four sample sets give
timbre variety: ``TimGM6mb.sf2`` (inside pretty_midi's wheel), Debian's ``FluidR3_GM.sf2`` and MuseScore's
``MuseScore_General_Lite.sf3``, played by FluidSynth, and Debian's ``freepats`` (recordings of real instruments),
played by TiMidity.

Used by :func:`wmlib.data.corpus.build_corpus`; chapter 1 plays and plots what it makes.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .audio import SAMPLE_RATE, write_wav
from .profiles import INSTRUMENTS, Profile
from .speech import MissingToolError

RECIPE_VERSION = "music-3"
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FREEPATS = Path("/etc/timidity/freepats.cfg")  # Debian's freepats: sampled instruments, played by TiMidity
MUSESCORE = Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")  # Ogg-compressed samples (sf3)
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10], "pentatonic": [0, 2, 4, 7, 9]}
NOTE_SECONDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
TAIL_SECONDS = 0.6  # release and reverb after the last note-off, kept in the file
MELODY_SECONDS = (5.0, 9.0)


def soundfont_path(name: str) -> Path:
    """Path of a soundfont by short name (``timgm``, ``fluidr3``, ``musescore`` or ``freepats``, the last a TiMidity
    configuration); clear error if it is not installed."""
    if name == "timgm":
        import pretty_midi

        path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        if not path.exists():
            raise MissingToolError(f"{path} is missing: reinstall pretty_midi (`pip install pretty_midi`)")
        return path
    if name == "fluidr3":
        if not FLUIDR3.exists():
            raise MissingToolError(f"{FLUIDR3} is missing: `apt-get install fluid-soundfont-gm` (or `make setup`)")
        return FLUIDR3
    if name == "musescore":
        if not MUSESCORE.exists():
            raise MissingToolError(f"{MUSESCORE} is missing: `apt-get install musescore-general-soundfont-small` "
                                   "(or `make setup`)")
        return MUSESCORE
    if name == "freepats":
        if not FREEPATS.exists() or shutil.which("timidity") is None:
            raise MissingToolError(f"TiMidity with the freepats samples is missing ({FREEPATS}): "
                                   "`apt-get install timidity freepats` (or `make setup`)")
        return FREEPATS
    raise ValueError(f"unknown soundfont {name!r}; known: timgm, fluidr3, musescore, freepats")


def new_synthesizer(soundfont: str):
    """A FluidSynth synthesizer at 16 kHz with one soundfont loaded; returns ``(synth, sfid)``."""
    try:
        import fluidsynth
    except ImportError as error:  # pyfluidsynth raises ImportError when libfluidsynth is absent
        raise MissingToolError(
            f"FluidSynth is not available ({error}); `apt-get install fluidsynth libfluidsynth3` and "
            "`pip install pyfluidsynth` (or `make setup`)"
        ) from error
    synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE))
    synth.setting("synth.reverb.active", 0)  # labels end at note-off; keep the tail short and honest
    sfid = synth.sfload(str(soundfont_path(soundfont)))
    if sfid < 0:
        raise MissingToolError(f"FluidSynth could not load soundfont {soundfont}")
    return synth, sfid


def make_melody(rng: np.random.Generator, low: int, high: int, seconds: float) -> pd.DataFrame:
    """A monophonic melody: a random walk on a random scale and key within ``[low, high]`` (MIDI pitches).

    Returns:
        ``start_s, end_s, pitch, velocity`` rows; notes never overlap (a short gap separates them).
    """
    scale = SCALES[rng.choice(list(SCALES))]
    key = int(rng.integers(12))
    pitches = [p for p in range(low, high + 1) if (p - key) % 12 in scale]
    position = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
    tempo = rng.uniform(0.8, 1.25)
    rows, time = [], 0.1
    while time < seconds:
        duration = float(rng.choice(NOTE_SECONDS)) * tempo
        if rng.random() < 0.08:  # a rest
            time += duration
            continue
        gap = float(rng.uniform(0.02, 0.08))
        velocity = int(np.clip(rng.normal(85, 18), 40, 127))
        rows.append((time, time + duration - gap, pitches[position], velocity))
        step = int(rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]))
        position = int(np.clip(position + step, 0, len(pitches) - 1))
        time += duration
    return pd.DataFrame(rows, columns=["start_s", "end_s", "pitch", "velocity"])


def _midi(notes: pd.DataFrame, program: int):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    for row in notes.itertuples():
        instrument.notes.append(pretty_midi.Note(velocity=int(row.velocity), pitch=int(row.pitch),
                                                 start=float(row.start_s), end=float(row.end_s)))
    midi.instruments.append(instrument)
    return midi


def render(notes: pd.DataFrame, program: int, synth, sfid: int) -> np.ndarray:
    """Render notes with one General MIDI program through FluidSynth; float32 at 16 kHz, peak-normalised."""
    synth.system_reset()  # no state carried over from the previous melody
    audio = _midi(notes, program).fluidsynth(synthesizer=synth, sfid=sfid)
    length = int(round((notes["end_s"].max() + TAIL_SECONDS) * SAMPLE_RATE))
    audio = np.pad(audio, (0, max(0, length - len(audio))))[:length]
    return audio.astype(np.float32)


def render_timidity(notes: pd.DataFrame, program: int) -> np.ndarray:
    """Render notes with one General MIDI program through TiMidity and Debian's freepats (sampled real
    instruments); float32 at 16 kHz, peak-normalised.  Reverb and chorus are off and the leading silence is kept,
    so the notes sound where their labels say."""
    import soundfile as sf

    config = soundfont_path("freepats")
    with tempfile.TemporaryDirectory(prefix="timidity-") as folder:
        _midi(notes, program).write(f"{folder}/melody.mid")
        result = subprocess.run(["timidity", "-c", str(config), "-Ow", "--output-mono", "-s", str(SAMPLE_RATE),
                                 "-EFreverb=0", "-EFchorus=0", "--preserve-silence", "-o", f"{folder}/melody.wav",
                                 f"{folder}/melody.mid"], capture_output=True, text=True)
        if result.returncode != 0 or not Path(f"{folder}/melody.wav").exists():
            raise MissingToolError(f"TiMidity failed: {result.stderr[-1000:]}")
        audio, _ = sf.read(f"{folder}/melody.wav", dtype="float32")
    length = int(round((notes["end_s"].max() + TAIL_SECONDS) * SAMPLE_RATE))
    audio = np.pad(audio, (0, max(0, length - len(audio))))[:length]
    return (audio / max(float(np.abs(audio).max()), 1e-6)).astype(np.float32)


def generate(profile: Profile, root: Path, seed: int, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Make the music part of a profile's corpus under ``root/music``.

    Each instrument gets an equal share of ``profile.seconds_music``.  Levels vary per melody (peak 0.2–0.9) so
    energy is not constant across the corpus.

    Returns:
        ``utterances`` and ``notes`` tables (split still unassigned).
    """
    share = profile.seconds_music / len(profile.instruments)
    bar = tqdm(total=round(profile.seconds_music), desc="music (s of audio)", unit="s", disable=not progress)
    rows, note_rows = [], []
    synths: dict[str, tuple] = {}
    for index, name in enumerate(profile.instruments):
        spec = INSTRUMENTS[name]
        if spec["soundfont"] == "freepats":
            soundfont_path("freepats")
        elif spec["soundfont"] not in synths:
            synths[spec["soundfont"]] = new_synthesizer(spec["soundfont"])
        rng = np.random.default_rng([seed, index])
        made = 0.0
        while made < share:
            notes = make_melody(rng, spec["low"], spec["high"], rng.uniform(*MELODY_SECONDS))
            if spec["soundfont"] == "freepats":
                audio = render_timidity(notes, spec["program"])
            else:
                audio = render(notes, spec["program"], *synths[spec["soundfont"]])
            audio *= rng.uniform(0.2, 0.9)
            utt_id = f"music-{name}-{sum(r['voice'] == name for r in rows):04d}"
            write_wav(root / "music" / f"{utt_id}.wav", audio)
            duration = len(audio) / SAMPLE_RATE
            note_rows.append(notes.assign(utt_id=utt_id))
            rows.append({"utt_id": utt_id, "path": f"music/{utt_id}.wav", "source": "music", "voice": name,
                         "duration_s": duration, "text": ""})
            made += duration
            bar.update(round(duration))
    for synth, _ in synths.values():
        synth.delete()
    bar.close()
    return {"utterances": pd.DataFrame(rows), "notes": pd.concat(note_rows, ignore_index=True)}
