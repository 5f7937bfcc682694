"""Speech: sentences from a small grammar, spoken by Festival voices, with phone and word timings.

One Scheme batch file per voice synthesizes all its sentences in one Festival process (spawning ``text2wave`` per
sentence costs 0.3 s each); voices run in parallel.  Festival's ``utt.save.segs`` gives phone end times; words
come from ``utt.save.words``.  Diphone voices get F0-shifted, time-stretched variants as extra speakers.

Used by :func:`wmlib.data.corpus.build_corpus`; chapter 1 plays and plots what it makes.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from .audio import SAMPLE_RATE, write_wav
from .phones import SILENCE, normalize_phone
from .profiles import VOICES, Profile

RECIPE_VERSION = "speech-2"
APT_PACKAGES = "festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k festlex-cmu"
WORDS_PER_SECOND = 2.6  # measured speaking rate of the three voices at stretch 1.0, to size the first batch

# A small grammar: [adverbial] determiner [adjective] noun verb [determiner [adjective] noun] [prepositional phrase].
DETERMINERS = "the a this that every one some my your our their".split()
ADJECTIVES = ("quiet loud bright dark small large early late gentle rapid yellow purple ancient modern "
              "frozen golden hollow narrow wooden silver careful happy tired hungry distant").split()
NOUNS = ("river garden window teacher engine village doctor music painter kitten mountain harbour letter "
         "singer morning station pilot forest machine bottle lantern judge violin rabbit ocean").split()
VERBS = ("watches carries finds paints follows opens hears answers moves reaches lifts breaks sees "
         "builds cleans drives").split()
PREPOSITIONS = "near under behind beside across above below".split()
ADVERBIALS = ("yesterday", "today", "at noon", "in the evening", "every spring", "after dinner", "slowly")
WORD_LIST = Path("/usr/share/dict/american-english")


class MissingToolError(RuntimeError):
    """A program the corpus needs is not installed; the message names the package."""


def _extra_nouns(rng: np.random.Generator, count: int = 400) -> list[str]:
    """Common lower-case words from the system word list, to widen the phone inventory beyond the grammar."""
    if not WORD_LIST.exists():
        return []
    words = [w for w in WORD_LIST.read_text(errors="ignore").split()
             if w.isalpha() and w.islower() and 4 <= len(w) <= 8 and w.isascii()]
    return list(rng.choice(words, size=min(count, len(words)), replace=False))


def make_sentences(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` sentences from the grammar; deterministic for a given generator state."""
    nouns = NOUNS + _extra_nouns(rng)
    pick = lambda words: words[rng.integers(len(words))]

    def noun_phrase():
        adjective = f"{pick(ADJECTIVES)} " if rng.random() < 0.6 else ""
        return f"{pick(DETERMINERS)} {adjective}{pick(nouns)}"

    sentences = []
    for _ in range(count):
        parts = [pick(ADVERBIALS).capitalize()] if rng.random() < 0.25 else []
        parts += [noun_phrase(), pick(VERBS)]
        if rng.random() < 0.8:
            parts.append(noun_phrase())
        if rng.random() < 0.4:
            parts += [pick(PREPOSITIONS), noun_phrase()]
        sentence = " ".join(parts)
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return sentences


def check_festival() -> str:
    """Path of the ``festival`` binary, or a :class:`MissingToolError` naming the packages to install."""
    path = shutil.which("festival")
    if path is None:
        raise MissingToolError(
            f"Festival is not installed; the speech corpus needs it: `apt-get install {APT_PACKAGES}` "
            "(or run `make setup`)"
        )
    return path


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _voice_setup(voice: dict) -> str:
    lines = [f"(voice_{voice['festival']})"]
    if voice["f0_mean"] is not None:
        spread = voice.get("f0_std", 14)
        lines.append(f"(set! int_lr_params '((target_f0_mean {voice['f0_mean']}) (target_f0_std {spread}) "
                     "(model_f0_mean 170) (model_f0_std 34)))")
    lines.append(f"(Parameter.set 'Duration_Stretch {voice['stretch']})")
    return "\n".join(lines)


def synthesize(voice_name: str, sentences: list[str], workdir: Path, on_done=None) -> list[Path]:
    """Synthesize sentences with one voice in one Festival process.

    Args:
        voice_name: a key of :data:`wmlib.data.profiles.VOICES`.
        sentences: texts to speak.
        workdir: where ``<i>.wav``, ``<i>.segs`` and ``<i>.words`` are written.
        on_done: called once per finished sentence (progress bars).

    Returns:
        The stems (``workdir / str(i)``) of the files written, in order.
    """
    festival = check_festival()
    workdir.mkdir(parents=True, exist_ok=True)
    script = [_voice_setup(VOICES[voice_name])]
    stems = [workdir / str(index) for index in range(len(sentences))]
    for stem, text in zip(stems, sentences):
        script.append(
            f"(set! utt (SynthText {_scheme_string(text)}))\n"
            f'(utt.save.wave utt "{stem}.wav" \'riff)\n(utt.save.segs utt "{stem}.segs")\n'
            f'(utt.save.words utt "{stem}.words")\n(format t "done\\n")'
        )
    batch = workdir / "batch.scm"
    batch.write_text("\n".join(script) + "\n")
    process = subprocess.Popen([festival, "-b", str(batch)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    for line in process.stdout:
        if line.strip() == "done" and on_done is not None:
            on_done()
    stderr = process.stderr.read()
    process.wait()
    if process.returncode != 0 or "SIOD ERROR" in stderr or not all(Path(f"{s}.wav").exists() for s in stems):
        hint = ""
        if "unbound variable" in stderr and "voice_" in stderr:
            hint = f" The voice {VOICES[voice_name]['festival']} is missing: `apt-get install {APT_PACKAGES}`."
        raise MissingToolError(f"Festival failed for voice {voice_name}.{hint}\n{stderr[-2000:]}")
    return stems


def read_segments(segs_path: Path, duration_s: float) -> pd.DataFrame:
    """Festival ``.segs`` (phone end times) to ``start_s, end_s, phone`` rows covering ``[0, duration_s]``.

    Diphone voices stop their last segment up to ~30 ms before the end of the waveform; that tail is silence,
    so the final silence is extended to the file's end (or one is appended) and every sample has a phone.
    """
    ends, phones = [], []
    lines = segs_path.read_text().splitlines()
    for line in lines[lines.index("#") + 1:]:
        end, _, phone = line.split()
        ends.append(min(float(end), duration_s))
        phones.append(normalize_phone(phone))
    starts = [0.0] + ends[:-1]
    frame = pd.DataFrame({"start_s": starts, "end_s": ends, "phone": phones})
    frame = frame[frame["end_s"] > frame["start_s"]].reset_index(drop=True)
    if frame["end_s"].iloc[-1] < duration_s:
        if frame["phone"].iloc[-1] == SILENCE:
            frame.loc[frame.index[-1], "end_s"] = duration_s
        else:
            frame.loc[len(frame)] = [frame["end_s"].iloc[-1], duration_s, SILENCE]
    return frame


def read_words(words_path: Path, phones: pd.DataFrame) -> pd.DataFrame:
    """Festival ``.words`` (word end times) to ``start_s, end_s, word`` rows.

    A word starts where the previous word ended, or later if a silence lies between them.
    """
    lines = words_path.read_text().splitlines()
    rows, previous_end = [], 0.0
    silence_ends = phones.loc[phones["phone"] == SILENCE, "end_s"].to_numpy()
    for line in lines[lines.index("#") + 1:]:
        end, _, word = line.split(maxsplit=2)
        end = float(end)
        pauses = silence_ends[(silence_ends >= previous_end) & (silence_ends < end)]
        start = float(pauses.max()) if pauses.size else previous_end
        rows.append((start, end, word.strip().lower()))
        previous_end = end
    return pd.DataFrame(rows, columns=["start_s", "end_s", "word"])


def _voice_seconds(profile: Profile) -> dict[str, float]:
    return {name: profile.seconds_speech / len(profile.voices) for name in profile.voices}


def generate(profile: Profile, root: Path, seed: int, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Make the speech part of a profile's corpus under ``root/speech``.

    Each voice gets an equal share of ``profile.seconds_speech``; a first batch is sized by the typical speaking
    rate and topped up until the share is reached.

    Returns:
        ``utterances``, ``phones`` and ``words`` tables (split still unassigned).
    """
    check_festival()
    targets = _voice_seconds(profile)
    bar = tqdm(total=round(profile.seconds_speech), desc="speech (s of audio)", unit="s", disable=not progress)
    lock = threading.Lock()

    def one_voice(index_and_name):
        index, name = index_and_name
        rng = np.random.default_rng([seed, index])
        rows, phone_rows, word_rows, spoken = [], [], [], 0.0
        with tempfile.TemporaryDirectory(prefix=f"festival-{name}-") as tmp:
            round_ = 0
            while spoken < targets[name]:
                words_needed = (targets[name] - spoken) * WORDS_PER_SECOND / VOICES[name]["stretch"]
                sentences = make_sentences(rng, max(1, int(np.ceil(words_needed / 7.0))))
                stems = synthesize(name, sentences, Path(tmp) / str(round_))
                for stem, text in zip(stems, sentences):
                    if spoken >= targets[name]:
                        break
                    utt_id = f"speech-{name}-{len(rows):04d}"
                    audio, rate = sf.read(f"{stem}.wav", dtype="float32")
                    if rate != SAMPLE_RATE:  # the HTS voice speaks at 32 kHz
                        import soxr

                        audio = soxr.resample(audio, rate, SAMPLE_RATE)
                    audio = np.clip(audio, -1.0, 1.0)
                    duration = len(audio) / SAMPLE_RATE
                    write_wav(root / "speech" / f"{utt_id}.wav", audio)
                    phones = read_segments(Path(f"{stem}.segs"), duration)
                    words = read_words(Path(f"{stem}.words"), phones)
                    phone_rows.append(phones.assign(utt_id=utt_id))
                    word_rows.append(words.assign(utt_id=utt_id))
                    rows.append({"utt_id": utt_id, "path": f"speech/{utt_id}.wav", "source": "speech",
                                 "voice": name, "duration_s": duration, "text": text})
                    spoken += duration
                    with lock:
                        bar.update(round(duration))
                round_ += 1
        return rows, phone_rows, word_rows

    with ThreadPoolExecutor(max_workers=2) as pool:  # Festival is single-threaded; two voices at a time
        results = list(pool.map(one_voice, enumerate(profile.voices)))
    bar.close()
    return {
        "utterances": pd.DataFrame([row for rows, _, _ in results for row in rows]),
        "phones": pd.concat([frame for _, frames, _ in results for frame in frames], ignore_index=True),
        "words": pd.concat([frame for _, _, frames in results for frame in frames], ignore_index=True),
    }
