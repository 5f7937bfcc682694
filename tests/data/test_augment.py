"""Domain randomization: every effect changes the audio, keeps its length and timing, and is seeded."""
import json

import numpy as np
import pytest
import soundfile as sf

from wmlib.data import augment

RATE = 16000


def burst_signal(seconds=2.0, onset=0.8, offset=1.4, seed=0):
    """Quiet, then a noise burst from ``onset`` to ``offset`` (a boundary at each end), then quiet.  Noise, not a
    tone: its cross-correlation has one peak, so a shift in time cannot hide behind a period."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    envelope = ((t >= onset) & (t < offset)).astype(float)
    return (0.1 * rng.standard_normal(len(t)) * envelope + 1e-3 * rng.standard_normal(len(t))).astype(np.float32)


def lag_ms(reference, changed):
    """Where the cross-correlation of the two waveforms peaks, in ms (0 = nothing moved in time; a room's direct
    sound is its strongest single path, so its peak stays at 0 too)."""
    from scipy.signal import correlate

    correlation = np.abs(correlate(changed.astype(float), reference.astype(float), mode="full", method="fft"))
    return (np.argmax(correlation) - (len(reference) - 1)) / RATE * 1000


def onset_s(audio, threshold_db=-20):
    """The first 10 ms frame within ``threshold_db`` of the loudest one."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    return np.flatnonzero(level > level.max() + threshold_db)[0] * 0.01


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backgrounds")
    rng = np.random.default_rng(1)
    paths = []
    for index in range(2):
        path = folder / f"noise-{index}.wav"
        sf.write(path, (0.1 * rng.standard_normal(3 * RATE)).astype(np.float32), RATE, subtype="FLOAT")
        paths.append(str(path))
    return paths


EFFECTS = {
    "room": lambda x, bg: augment.room(x, seed=4),
    "background": lambda x, bg: augment.mix_at_snr(x, bg, 15.0, seed=4),
    "colour_noise": lambda x, bg: augment.colour_noise(x, seed=4),
    "eq": lambda x, bg: augment.equalize(x, seed=4),
    "telephone_mulaw": lambda x, bg: augment.telephone(x, "mulaw"),
    "telephone_gsm": lambda x, bg: augment.telephone(x, "gsm"),
    "lowpass": lambda x, bg: augment.lowpass(x, seed=4),
    "gain": lambda x, bg: augment.gain(x, seed=4),
}


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_changes_the_audio_and_keeps_its_timing(effect, backgrounds):
    clean = burst_signal()
    changed, record = EFFECTS[effect](clean, backgrounds)
    assert changed.shape == clean.shape and changed.dtype == np.float32 and np.all(np.isfinite(changed))
    assert not np.allclose(changed, clean, atol=1e-4), f"{effect} left the audio as it was"
    assert json.loads(json.dumps(record)) == record  # recorded per utterance as JSON
    assert abs(lag_ms(clean, changed)) <= 2.0, f"{effect} moved the audio in time"
    if effect not in ("background", "colour_noise"):  # noise fills the quiet part: no onset to find
        assert onset_s(changed) == pytest.approx(0.8, abs=0.02), f"{effect}: the boundary at 0.8 s moved"


def test_the_room_only_adds_a_tail_after_the_direct_sound():
    impulse = np.zeros(RATE, np.float32)
    impulse[4000] = 0.5
    wet, record = augment.room(impulse, seed=2)
    assert np.argmax(np.abs(wet)) == 4000 and np.abs(wet[:4000]).max() < 1e-6
    assert np.abs(wet[4001:]).sum() > 0 and 0.15 <= record["target_rt60"] <= 0.7


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_background_mixed_at_the_requested_snr(snr, backgrounds):
    clean = burst_signal()
    mixed, record = augment.mix_at_snr(clean, backgrounds, snr, seed=1)
    added = mixed - clean
    measured = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(added.astype(float) ** 2))
    assert measured == pytest.approx(snr, abs=0.5) and record["snr_db"] == snr


def test_the_telephone_channel_is_band_limited():
    t = np.arange(RATE) / RATE
    wide = (0.2 * (np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t))).astype(np.float32)
    narrow, _ = augment.telephone(wide, "gsm")
    spectrum = np.abs(np.fft.rfft(narrow))
    frequencies = np.fft.rfftfreq(len(narrow), 1 / RATE)
    assert spectrum[np.abs(frequencies - 6000) < 20].max() < 0.01 * spectrum[np.abs(frequencies - 1000) < 20].max()


def test_randomize_is_seeded_and_never_clips(backgrounds):
    clean = burst_signal()
    first, record = augment.randomize(clean, 11, backgrounds)
    second, again = augment.randomize(clean, 11, backgrounds)
    assert np.array_equal(first, second) and record == again
    assert np.abs(first).max() <= 0.99 + 1e-6 and first.shape == clean.shape
    records = [augment.randomize(clean, seed, backgrounds)[1] for seed in range(12)]
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 12
    assert {"room", "telephone", "eq"} <= set().union(*records)


def test_randomized_copies_keep_their_sources_labels(tiny_corpus):
    utterances = tiny_corpus.utterances
    copies = utterances[utterances["domain"] == "randomized"]
    assert len(copies) > 0 and set(copies["split"]) <= {"train", "valid", "test"}
    clean = utterances.set_index("utt_id").loc[copies["clean_id"]]
    assert (clean["split"].to_numpy() == copies["split"].to_numpy()).all()
    assert (clean["domain"] == "generated").all()
    for copy in copies.itertuples():
        for table in ("phones", "words", "notes", "events"):
            ours = tiny_corpus.segments(table, copy.utt_id).drop(columns="utt_id")
            theirs = tiny_corpus.segments(table, copy.clean_id).drop(columns="utt_id")
            assert ours.equals(theirs), f"{copy.utt_id}: {table} differ from its clean source's"
        assert json.loads(copy.augmentation)  # what was done is recorded


def test_randomized_speech_keeps_the_phone_boundaries_in_time(tiny_corpus):
    copies = tiny_corpus.utterances.query("domain == 'randomized' and source == 'speech'")
    for copy in copies.itertuples():
        clean, changed = tiny_corpus.audio(copy.clean_id), tiny_corpus.audio(copy.utt_id)
        assert len(clean) == len(changed)
        assert abs(lag_ms(clean, changed)) <= 5.0, f"{copy.utt_id} moved against {copy.clean_id}"


def test_randomized_tokens_take_the_clean_pitch_and_measure_their_own_energy(tiny_tokens):
    labels = tiny_tokens.labels
    copies = labels[labels["domain"] == "randomized"]
    for utt_id, rows in list(copies.groupby("utt_id"))[:5]:
        clean = labels[labels["utt_id"] == utt_id[:-2]]
        np.testing.assert_array_equal(rows["f0_hz"].to_numpy(), clean["f0_hz"].to_numpy())
        np.testing.assert_array_equal(rows["phone"].to_numpy(), clean["phone"].to_numpy())
        assert not np.allclose(rows["energy_db"].to_numpy(), clean["energy_db"].to_numpy())
