"""The embedded corpus: labels checked against the audio, splits, determinism, and failure modes."""
import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from wmlib.data import corpus as corpus_module
from wmlib.data import music, noise, speech
from wmlib.data.corpus import Corpus, build_corpus
from wmlib.data.profiles import INSTRUMENTS, PROFILES, Profile, UnknownProfileError, get_profile

SMALL = Profile("small-test", seconds_speech=8, seconds_music=8, seconds_noise=4, voices=("kal", "slt"),
                instruments=("piano_timgm", "flute_timgm"), heldout_voices=("slt",), heldout_instruments=(),
                noise_kinds=("pink", "impulses"), seconds_real_speech=6, seconds_real_music=4,
                real_speakers=("fr_june", "ru_ivrvoice"), real_tracks=("cold_day", "system"),
                heldout_real=("ru_ivrvoice", "system"))


def test_every_voice_instrument_and_noise_kind_is_present(tiny_corpus):
    utterances = tiny_corpus.utterances
    profile = PROFILES["tiny"]
    real = utterances[utterances["domain"] == "real"]
    assert set(real["voice"]) == set(profile.real_speakers) | set(profile.real_tracks)
    utterances = utterances[utterances["domain"] != "real"]
    assert set(utterances.loc[utterances["source"] == "speech", "voice"]) == set(profile.voices)
    assert set(utterances.loc[utterances["source"] == "music", "voice"]) == set(profile.instruments)
    assert set(utterances.loc[utterances["source"] == "noise", "voice"]) == set(profile.noise_kinds)
    programs = {(INSTRUMENTS[name]["soundfont"], INSTRUMENTS[name]["program"]) for name in profile.instruments}
    assert len({program for _, program in programs}) >= 12
    assert {sf for sf, _ in programs} == {"timgm", "fluidr3", "musescore", "freepats"}


def test_heldout_voices_and_instruments_never_train(tiny_corpus):
    utterances = tiny_corpus.utterances
    profile = PROFILES["tiny"]
    heldout = utterances["voice"].isin(profile.heldout_voices + profile.heldout_instruments + profile.heldout_real)
    assert (utterances.loc[heldout, "split"] == "heldout").all()
    assert (utterances.loc[~heldout, "split"] != "heldout").all()
    generated = utterances[utterances["domain"] == "generated"]
    for source in ("speech", "music", "noise"):  # each generated source is evaluated, even in tiny
        assert {"train", "valid", "test"} <= set(generated.loc[generated["source"] == source, "split"])
    real = utterances[utterances["domain"] == "real"]
    assert {"train", "heldout"} <= set(real["split"])
    assert not set(real.loc[real["split"] == "heldout", "voice"]) & set(real.loc[real["split"] != "heldout", "voice"])


def test_durations_match_the_files(tiny_corpus):
    for utt in tiny_corpus.utterances.itertuples():
        info = sf.info(tiny_corpus.root / utt.path)
        assert info.samplerate == 16000 and info.channels == 1
        assert info.duration == pytest.approx(utt.duration_s, abs=1e-6)


def test_phone_segments_lie_inside_the_file_and_end_at_its_end(tiny_corpus):
    for utt in tiny_corpus.utterances.query("source == 'speech' and domain != 'real'").itertuples():
        phones = tiny_corpus.segments("phones", utt.utt_id)
        assert len(phones) > 3
        assert (phones["start_s"] >= 0).all() and (phones["end_s"] <= utt.duration_s + 1e-9).all()
        assert (phones["end_s"] > phones["start_s"]).all()
        np.testing.assert_allclose(phones["start_s"].iloc[1:].to_numpy(), phones["end_s"].iloc[:-1].to_numpy())
        assert phones["end_s"].iloc[-1] == pytest.approx(utt.duration_s, abs=1e-3)
        words = tiny_corpus.segments("words", utt.utt_id)
        assert len(words) == len(utt.text.split())
        assert (words["start_s"] >= 0).all() and (words["end_s"] <= utt.duration_s + 1e-9).all()


def test_silence_segments_are_quieter_than_speech(tiny_corpus):
    quieter = []
    for utt in tiny_corpus.utterances.query("source == 'speech' and domain == 'generated'").itertuples():
        audio = tiny_corpus.audio(utt.utt_id)
        phones = tiny_corpus.segments("phones", utt.utt_id)
        def rms(rows):
            samples = np.concatenate([audio[int(r.start_s * 16000):int(r.end_s * 16000)]  # noqa: B023 (used at once)
                                      for r in rows.itertuples()])
            return np.sqrt(np.mean(samples**2))
        quieter.append(rms(phones[phones["phone"] == "sil"]) < 0.25 * rms(phones[phones["phone"] != "sil"]))
    assert all(quieter)


def test_notes_lie_inside_the_file_and_are_monophonic(tiny_corpus):
    for utt in tiny_corpus.utterances.query("source == 'music' and domain != 'real'").itertuples():
        notes = tiny_corpus.segments("notes", utt.utt_id)
        assert len(notes) > 2 and notes["end_s"].max() < utt.duration_s
        assert (notes["start_s"].iloc[1:].to_numpy() >= notes["end_s"].iloc[:-1].to_numpy()).all()
        assert notes["velocity"].between(1, 127).all() and notes["pitch"].between(21, 108).all()


def test_events_are_louder_than_the_gaps_between_them(tiny_corpus):
    clean = tiny_corpus.utterances.query("domain == 'generated'")  # a randomized copy may have noise in its gaps
    for utt in clean.query("voice == 'impulses' or voice == 'filtered_bursts'").itertuples():
        audio = tiny_corpus.audio(utt.utt_id)
        inside = np.zeros(len(audio), dtype=bool)
        for event in tiny_corpus.segments("events", utt.utt_id).itertuples():
            inside[int(event.start_s * 16000):int(event.end_s * 16000)] = True
        assert np.sqrt(np.mean(audio[inside] ** 2)) > 10 * np.sqrt(np.mean(audio[~inside] ** 2))


def test_mix_of_the_default_profile():
    profile = PROFILES["default"]
    generated = profile.seconds_speech + profile.seconds_music + profile.seconds_noise
    assert generated >= 3600 and profile.seconds_real_speech > 0 and profile.seconds_real_music > 0
    shares = ((profile.seconds_speech, 0.38), (profile.seconds_music, 0.48), (profile.seconds_noise, 0.13))
    for seconds, share in shares:
        assert seconds / generated == pytest.approx(share, abs=0.02)


def _digest(corpus: Corpus) -> str:
    h = hashlib.sha256()
    for table in ("utterances", "phones", "words", "notes", "events"):
        h.update(getattr(corpus, table).drop(columns=["path"], errors="ignore").to_csv(index=False).encode())
    for path in sorted(corpus.root.rglob("*.wav")):
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_corpus_and_cache_reuse(tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path / "a"))
    first = build_corpus(SMALL, progress=False)
    built = (first.root / "build.json").stat().st_mtime_ns
    assert build_corpus(SMALL, progress=False).root == first.root
    assert (first.root / "build.json").stat().st_mtime_ns == built  # reused, not rebuilt
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path / "b"))
    second = build_corpus(SMALL, progress=False)
    assert _digest(first) == _digest(second)
    loaded = Corpus.load(first.root)
    pd.testing.assert_frame_equal(loaded.utterances, first.utterances, check_dtype=False)


def test_interrupted_build_leaves_no_finished_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(noise, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(SMALL, progress=False)
    root = corpus_module.corpus_dir(SMALL)
    assert not (root / "build.json").exists() and not (root / "utterances.csv").exists()
    assert not list(root.rglob("*.part"))
    monkeypatch.undo()
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path))
    assert len(build_corpus(SMALL, progress=False).utterances) > 0


def test_changed_recipe_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path))
    build_corpus(SMALL, progress=False)
    monkeypatch.setattr(noise, "RECIPE_VERSION", "noise-changed")
    before = (corpus_module.corpus_dir(SMALL) / "build.json").stat().st_mtime_ns
    build_corpus(SMALL, progress=False)
    assert (corpus_module.corpus_dir(SMALL) / "build.json").stat().st_mtime_ns != before


def test_unknown_profile():
    with pytest.raises(UnknownProfileError, match="tiny, default, large"):
        get_profile("huge")
    result = subprocess.run([sys.executable, "-m", "wmlib", "corpus", "--profile", "huge"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown profile 'huge'" in result.stderr


def test_missing_festival_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_DATA", str(tmp_path))
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(speech.MissingToolError, match="apt-get install festival"):
        build_corpus(SMALL, progress=False)
    assert not (corpus_module.corpus_dir(SMALL) / "build.json").exists()


def test_missing_soundfont_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(music, "FLUIDR3", tmp_path / "nope.sf2")
    with pytest.raises(speech.MissingToolError, match="fluid-soundfont-gm"):
        music.new_synthesizer("fluidr3")


def test_missing_musescore_soundfont_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(music, "MUSESCORE", tmp_path / "nope.sf3")
    with pytest.raises(speech.MissingToolError, match="musescore-general-soundfont-small"):
        music.new_synthesizer("musescore")


def test_musescore_instruments_play_their_labelled_notes():
    """Exact labels stay exact: pYIN hears each note of a MuseScore melody at its labelled pitch."""
    import librosa

    from wmlib.data.profiles import INSTRUMENTS

    synth, sfid = music.new_synthesizer("musescore")
    try:
        for name in ("viola_musescore", "horn_musescore"):
            spec = INSTRUMENTS[name]
            notes = music.make_melody(np.random.default_rng(3), spec["low"], spec["high"], 4.0)
            audio = music.render(notes, spec["program"], synth, sfid)
            f0, voiced, _ = librosa.pyin(audio, fmin=60, fmax=1200, sr=16000, frame_length=1024, hop_length=160)
            times = np.arange(len(f0)) * 0.01
            heard = []
            for note in notes.itertuples():
                inside = (times >= note.start_s + 0.05) & (times < note.end_s - 0.02) & voiced
                heard.append(abs(librosa.hz_to_midi(np.nanmedian(f0[inside])) - note.pitch) < 0.5)
            assert np.mean(heard) >= 0.9, (name, heard)
    finally:
        synth.delete()


def test_missing_freepats_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(music, "FREEPATS", tmp_path / "nope.cfg")
    with pytest.raises(speech.MissingToolError, match="apt-get install timidity freepats"):
        music.soundfont_path("freepats")


def test_missing_fluidsynth_library_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails as without libfluidsynth
    with pytest.raises(speech.MissingToolError, match="apt-get install fluidsynth"):
        music.new_synthesizer("timgm")


def test_grammar_is_deterministic():
    a = speech.make_sentences(np.random.default_rng(3), 20)
    b = speech.make_sentences(np.random.default_rng(3), 20)
    assert a == b and len(set(a)) == 20 and all(s.endswith(".") for s in a)
