"""Real recordings from Debian's packages: read from small files written in the packages' layout."""
import gzip

import numpy as np
import pytest
import soundfile as sf

from wmlib.data import real
from wmlib.data.profiles import Profile

PROFILE = Profile("real-test", seconds_speech=0, seconds_music=0, seconds_noise=0, voices=(), instruments=(),
                  heldout_voices=(), heldout_instruments=(), seconds_real_speech=9, seconds_real_music=6,
                  real_speakers=("fr_june", "fr_armelle", "it_carlo"), real_tracks=("cold_day", "system"),
                  heldout_real=("it_carlo", "system"))


def tone(seconds, rate, hz=200.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def share(tmp_path):
    """A /usr/share with a few prompts of three speakers (WAV and raw GSM), two tracks and a transcript list."""
    sounds = tmp_path / "asterisk" / "sounds"
    for folder, names in (("fr_CA_f_June", ["hello", "digits/1", "silence/1", "beep", "ascending-2tone"]),
                          ("it_IT_m_Carlo", ["ciao", "letters/a", "vm-goodbye"])):
        for name in names:
            (sounds / folder / name).parent.mkdir(parents=True, exist_ok=True)
            audio = np.zeros(8000, np.float32) if name.startswith("silence") else tone(1.5, 8000)
            sf.write(sounds / folder / f"{name}.wav", audio, 8000, subtype="PCM_16")
    (sounds / "fr").mkdir(parents=True)
    for name in ("agent-pass", "vm-next"):
        sf.write(sounds / "fr" / f"{name}.gsm", tone(2.0, 8000, 300.0), 8000, format="RAW", subtype="GSM610")
    moh = tmp_path / "asterisk" / "moh"
    moh.mkdir(parents=True)
    for track in ("macroform-cold_day", "reno_project-system"):
        sf.write(moh / f"{track}.wav", tone(20.0, 8000, 440.0), 8000, subtype="PCM_16")
    doc = tmp_path / "doc" / "asterisk-core-sounds-it"
    doc.mkdir(parents=True)
    with gzip.open(doc / "core-sounds-it.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("; Core Asterisk Sounds in Italian\n\nciao: Ciao.\nletters/a: A\nvm-goodbye: Arrivederci.\n")
    return tmp_path


def test_speakers_and_tracks_are_read_in_the_packages_layout(share, tmp_path):
    out = tmp_path / "corpus"
    utterances = real.generate(PROFILE, out, seed=0, progress=False, root=share)["utterances"]
    assert set(utterances["voice"]) == {"fr_june", "fr_armelle", "it_carlo", "cold_day", "system"}
    assert set(utterances["domain"]) == {"real"}
    speech = utterances[utterances["source"] == "speech"]
    assert dict(zip(speech["voice"], speech["language"])) == {"fr_june": "fr", "fr_armelle": "fr", "it_carlo": "it"}
    origins = ";".join(speech["origin"])
    assert "silence/" not in origins and "beep" not in origins and "tone" not in origins  # not speech: left out
    assert "agent-pass.gsm" in origins or "vm-next.gsm" in origins
    carlo = speech[speech["voice"] == "it_carlo"].iloc[0]
    assert "Ciao." in carlo["text"] or "Arrivederci." in carlo["text"]  # the package's transcripts
    for row in utterances.itertuples():
        info = sf.info(out / row.path)
        assert info.samplerate == 16000 and info.channels == 1
        assert info.duration == pytest.approx(row.duration_s, abs=1e-3)
    music = utterances[utterances["source"] == "music"]
    assert music.groupby("voice")["duration_s"].sum().to_dict() == pytest.approx({"cold_day": 3.0, "system": 3.0})


def test_every_prompt_belongs_to_one_utterance_only(share, tmp_path):
    utterances = real.generate(PROFILE, tmp_path / "c", seed=3, progress=False, root=share)["utterances"]
    files = [f"{row.voice}/{name}" for row in utterances[utterances["source"] == "speech"].itertuples()
             for name in row.origin.split(";")]
    assert len(files) == len(set(files))


def test_the_same_seed_gives_the_same_bytes(share, tmp_path):
    first = real.generate(PROFILE, tmp_path / "a", seed=5, progress=False, root=share)["utterances"]
    second = real.generate(PROFILE, tmp_path / "b", seed=5, progress=False, root=share)["utterances"]
    assert first.equals(second)
    for path in first["path"]:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()


def test_gsm_prompts_decode_at_16_khz(share):
    audio = real.read_recording(share / "asterisk" / "sounds" / "fr" / "agent-pass.gsm")
    assert audio.dtype == np.float32 and len(audio) == pytest.approx(2.0 * 16000, abs=320)  # GSM frames: 20 ms
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()] == pytest.approx(300.0, abs=2.0)


def test_a_missing_package_is_named(tmp_path):
    with pytest.raises(real.MissingPackageError, match="asterisk-core-sounds-fr-wav") as error:
        real.generate(PROFILE, tmp_path / "c", seed=0, progress=False, root=tmp_path)
    message = str(error.value)
    assert "asterisk-moh-opsound-wav" in message and "apt-get install" in message


def test_a_missing_track_alone_is_named(share):
    (share / "asterisk" / "moh" / "reno_project-system.wav").unlink()
    with pytest.raises(real.MissingPackageError, match="asterisk-moh-opsound-wav"):
        real.check_packages(PROFILE, share)


def test_the_default_profile_holds_out_a_language_a_speaker_and_tracks():
    from wmlib.data.profiles import PROFILES, REAL_SPEAKERS

    profile = PROFILES["default"]
    held = set(profile.heldout_real)
    languages = {REAL_SPEAKERS[s]["language"] for s in profile.real_speakers}
    trained = {REAL_SPEAKERS[s]["language"] for s in profile.real_speakers if s not in held}
    assert languages - trained, "a whole language is held out"
    assert any(REAL_SPEAKERS[s]["language"] in trained for s in held if s in REAL_SPEAKERS), "and a whole speaker"
    assert held & set(profile.real_tracks), "and whole tracks"


KT_PROFILE = Profile("kt-test", seconds_speech=0, seconds_music=0, seconds_noise=0, voices=(), instruments=(),
                     heldout_voices=(), heldout_instruments=(), seconds_real_speech=8, seconds_real_music=0,
                     real_speakers=("kt_fr", "kt_lt"), real_tracks=(), heldout_real=("kt_lt",))


@pytest.fixture
def ktuberling(tmp_path):
    """KTuberling's layout: one folder of word recordings per language, in Ogg Vorbis, Opus or 8 kHz WAV."""
    sounds = tmp_path / "ktuberling" / "sounds"
    (sounds / "fr").mkdir(parents=True)
    (sounds / "lt").mkdir(parents=True)
    for word in ("ballon", "chapeau", "fleur"):
        sf.write(sounds / "fr" / f"{word}.wav", tone(1.0, 8000), 8000, subtype="PCM_16")
    sf.write(sounds / "lt" / "kamuolys.ogg", np.stack([tone(1.2, 44100)] * 2, axis=1), 44100, format="OGG",
             subtype="VORBIS")  # stereo
    sf.write(sounds / "lt" / "skrybele.opus", tone(0.9, 48000, 250.0), 48000, format="OGG", subtype="OPUS")
    sf.write(sounds / "lt" / "tyla.ogg", np.zeros(22050, np.float32), 22050, format="OGG", subtype="VORBIS")
    return tmp_path


def test_ktuberling_words_are_chained_with_language_labels(ktuberling, tmp_path):
    out = tmp_path / "corpus"
    utterances = real.generate(KT_PROFILE, out, seed=0, progress=False, root=ktuberling)["utterances"]
    assert dict(zip(utterances["voice"], utterances["language"])) == {"kt_fr": "fr", "kt_lt": "lt"}
    assert set(utterances["source"]) == {"speech"} and set(utterances["domain"]) == {"real"}
    lt = utterances[utterances["voice"] == "kt_lt"].iloc[0]
    assert sorted(lt["origin"].split(";")) == ["kamuolys.ogg", "skrybele.opus"], "the silent word is left out"
    assert lt["duration_s"] == pytest.approx(1.2 + 0.9, abs=0.01)
    for row in utterances.itertuples():
        info = sf.info(out / row.path)
        assert info.samplerate == 16000 and info.channels == 1
    again = real.generate(KT_PROFILE, tmp_path / "again", seed=0, progress=False, root=ktuberling)["utterances"]
    assert again["origin"].tolist() == utterances["origin"].tolist(), "seeded"


def test_missing_ktuberling_names_its_package(tmp_path):
    with pytest.raises(real.MissingPackageError, match="ktuberling-data"):
        real.check_packages(KT_PROFILE, tmp_path)


def test_the_default_profile_holds_out_spoken_words_of_a_held_out_language_and_of_english():
    from wmlib.data.profiles import PROFILES, REAL_SPEAKERS

    profile = PROFILES["default"]
    words = [name for name in profile.real_speakers if name.startswith("kt_")]
    held = [name for name in words if name in profile.heldout_real]
    assert len(words) >= 10 and held
    assert {REAL_SPEAKERS[name]["language"] for name in held} == {"ru", "en"}
    assert "ru_ivrvoice" in profile.heldout_real, "Russian is held out whole: its words and its prompts"
