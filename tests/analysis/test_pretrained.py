"""The pretrained encoders of wmlib.analysis.pretrained: shapes, millisecond timestamps that cover the sound,
determinism, the HEAR functions and the token grid, for each registered encoder (each loaded once)."""
import sys

import numpy as np
import pytest
import torch

from wmlib.analysis import hear_api
from wmlib.analysis.hear_api import EncoderUnavailable, to_token_grid
from wmlib.analysis.pretrained import PRETRAINED, BasicPitch, SwiftF0, load_pretrained

RATE = 16_000
SECONDS = 1.2
N_TOKENS = 30  # 1.2 s of 40 ms tokens


def tones(f0s, seconds=SECONDS, seed=0) -> np.ndarray:
    """One harmonic tone (5 partials, 1/k amplitudes) per f0, plus a little noise: ``(len(f0s), n_samples)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    sounds = [sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6)) for f0 in f0s]
    return (np.stack(sounds) + 0.01 * rng.standard_normal((len(f0s), len(t)))).astype(np.float32)


@pytest.fixture(scope="module")
def audio():
    return tones((220.0, 330.0))


@pytest.fixture(scope="module", params=list(PRETRAINED))
def encoded(request, audio):
    """(model, layers, timestamps) of one encoder on the two tones: loaded and run once per encoder."""
    model = load_pretrained(request.param)  # the project installs every encoder: one that cannot load fails here
    layers, timestamps = model.layer_embeddings(audio)
    return model, layers, timestamps


def test_registry_names_and_class_attributes():
    assert list(PRETRAINED) == ["crepe-tiny", "crepe-full", "pesto", "fcpe", "resemblyzer", "silero-vad",
                                "basic-pitch", "swift-f0"]
    for name, (factory, description) in PRETRAINED.items():
        assert factory.name == name and factory.sample_rate == RATE
        assert 1 <= len(factory.layers) <= 3 and factory.timestamp_embedding_size == factory.scene_embedding_size > 0
        assert "layer" in description and factory.layers[0] in description


def test_shapes_and_timestamps(encoded):
    model, layers, timestamps = encoded
    assert tuple(layers) == model.layers
    n_frames = timestamps.shape[1]
    assert timestamps.shape == (2, n_frames) and n_frames >= 10
    for layer, values in layers.items():
        assert values.dtype == np.float32 and values.ndim == 3 and values.shape[:2] == (2, n_frames), layer
        assert np.isfinite(values).all(), layer
    assert layers[model.layers[0]].shape[2] == model.timestamp_embedding_size
    # milliseconds, increasing, from the start of the sound to its end
    assert (np.diff(timestamps, axis=1) > 0).all()
    assert (timestamps[:, 0] <= 40).all() and (timestamps[:, -1] >= SECONDS * 1000 - 80).all()
    assert (timestamps[:, -1] <= SECONDS * 1000 + 40).all()
    np.testing.assert_array_equal(timestamps[0], timestamps[1])


def test_hear_functions_are_deterministic(encoded, audio):
    model, layers, timestamps = encoded
    embeddings, times = hear_api.get_timestamp_embeddings(torch.from_numpy(audio), model)
    assert isinstance(embeddings, torch.Tensor) and isinstance(times, torch.Tensor)
    assert embeddings.shape == (2, timestamps.shape[1], model.timestamp_embedding_size)
    assert times.shape == (2, timestamps.shape[1])
    # a second run on the same audio gives the same numbers
    np.testing.assert_array_equal(embeddings.numpy(), layers[model.layers[0]])
    np.testing.assert_array_equal(times.numpy(), timestamps)


def test_sounds_are_embedded_independently(encoded, audio):
    model, layers, _ = encoded
    alone, _ = model.layer_embeddings(audio[1:])
    for layer, values in layers.items():
        np.testing.assert_allclose(alone[layer][0], values[1], rtol=1e-4, atol=1e-5, err_msg=layer)
        # the 220 Hz and 330 Hz tones differ in every layer
        gap = np.abs(values[0] - values[1]).mean()
        assert gap > 1e-3 * (np.abs(values).mean() + 1e-12), layer


def test_token_grid(encoded):
    model, layers, timestamps = encoded
    for layer, values in layers.items():
        for sound in range(2):
            grid = to_token_grid(values[sound], timestamps[sound], N_TOKENS)
            assert grid.shape == (N_TOKENS, values.shape[2]) and np.isfinite(grid).all(), layer


def test_short_sound_covers_its_tokens(encoded):
    model, _, _ = encoded
    sound = tones((261.6,), seconds=0.5, seed=2)
    layers, timestamps = model.layer_embeddings(sound)
    assert (timestamps[0, 0] <= 40) and timestamps[0, -1] >= 500 - 80
    grid = to_token_grid(layers[model.layers[0]][0], timestamps[0], 12)
    assert grid.shape == (12, model.timestamp_embedding_size)


def test_basic_pitch_windows_join_on_one_grid():
    model = BasicPitch()  # the project installs every encoder: one that cannot load fails here
    sound = tones((196.0,), seconds=4.0, seed=3)  # 3 windows of 142 kept frames
    layers, timestamps = model.layer_embeddings(sound)
    n_frames = int(np.ceil(4.0 * 22_050)) // 256 + 1
    assert timestamps.shape == (1, n_frames)
    np.testing.assert_allclose(np.diff(timestamps[0]), 1000 * 256 / 22_050)
    # a steady tone: the frames either side of a seam between windows are alike
    seam = model.keep
    steady = layers["note-hidden"][0]
    assert np.abs(steady[seam] - steady[seam - 1]).mean() < 0.2 * np.abs(steady[seam]).mean() + 1e-6


def test_swift_f0_windows_give_the_values_of_one_pass():
    model = SwiftF0()  # the project installs every encoder: one that cannot load fails here
    sound = tones((150.0,), seed=4)
    whole, _ = model.layer_embeddings(sound)
    model.window_frames = 20  # swift-f0 reads 1875 frames at a time; 20 makes 1.2 s take four windows
    windowed, _ = model.layer_embeddings(sound)
    for layer in model.layers:
        np.testing.assert_allclose(windowed[layer], whole[layer], rtol=1e-4, atol=1e-5, err_msg=layer)


def test_crepe_layers_give_torchcrepes_own_output():
    model = load_pretrained("crepe-tiny")  # the project installs every encoder: one that cannot load fails here
    frames = model._frames(tones((440.0,), seconds=0.3, seed=6)[0])
    with torch.no_grad():
        ours = model._forward(frames)["posterior"]
        theirs = model.network(frames).numpy()  # torchcrepe's Crepe.forward: the pitch bins' sigmoids
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # 440 Hz: CREPE's bins are 20 cents apart from 1997.38 cents (about 31.7 Hz)
    cents = 1200 * np.log2(440 / 10) - 1997.3794084376191
    assert np.abs(ours.argmax(axis=1) - cents / 20).max() <= 1


def test_silero_submodules_give_the_models_speech_probability():
    model = load_pretrained("silero-vad")  # the project installs every encoder: one that cannot load fails here
    sound = tones((180.0,), seed=5)[0]
    ours = model._run(sound)["probability"]
    model.jit.reset_states()
    padded = np.pad(sound, (0, len(ours) * 512 - len(sound)))
    with torch.no_grad():
        theirs = [model.jit(torch.from_numpy(padded[i * 512 : (i + 1) * 512])[None], RATE).item()
                  for i in range(len(ours))]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_unknown_name():
    with pytest.raises(EncoderUnavailable, match="known: crepe-tiny, crepe-full"):
        load_pretrained("wav2vec-enormous")


@pytest.mark.parametrize("module, name", [("swift_f0", "swift-f0"), ("basic_pitch", "basic-pitch"),
                                          ("torchcrepe", "crepe-tiny")])
def test_a_package_that_does_not_import_is_unavailable(monkeypatch, module, name):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(EncoderUnavailable, match=f"^{PRETRAINED[name][0].package}: "):
        PRETRAINED[name][0]()
