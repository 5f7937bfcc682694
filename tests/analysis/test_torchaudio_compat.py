"""ensure_torchaudio: the stand-in when the real torchaudio is absent or broken, its two functions, idempotence."""
import importlib
import importlib.util
import sys

import numpy as np
import pytest
import torch

from wmlib.analysis.torchaudio_compat import SHIM_VERSION, ensure_torchaudio


def _torchaudio_modules() -> list[str]:
    return [name for name in sys.modules if name == "torchaudio" or name.startswith("torchaudio.")]


@pytest.fixture
def no_torchaudio_loaded():
    """No ``torchaudio`` in ``sys.modules`` during the test (other tests may have registered the stand-in), and
    the entries as they were afterwards (the test's own stand-in or half-imported package removed)."""
    saved = {name: sys.modules.pop(name) for name in _torchaudio_modules()}
    yield
    for name in _torchaudio_modules():
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.fixture
def stand_in(no_torchaudio_loaded):
    if importlib.util.find_spec("torchaudio") is not None:
        pytest.skip("a real torchaudio is installed here")
    sentence = ensure_torchaudio()
    import torchaudio

    return sentence, torchaudio


def test_the_stand_in_when_torchaudio_is_absent(stand_in):
    sentence, torchaudio = stand_in
    assert "stand-in" in sentence and "ModuleNotFoundError" in sentence
    assert torchaudio.__version__ == SHIM_VERSION
    from torchaudio.transforms import Resample  # torchfcpe's import

    assert Resample is torchaudio.transforms.Resample


def test_resample_halves_and_matches_scipy(stand_in):
    from scipy.signal import resample_poly

    _, torchaudio = stand_in
    rng = np.random.default_rng(0)
    waveform = torch.from_numpy(rng.standard_normal((1, 16000)).astype(np.float32))
    out = torchaudio.transforms.Resample(16000, 8000)(waveform)
    assert out.shape == (1, 8000) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), resample_poly(waveform.double().numpy(), 1, 2, axis=-1), atol=1e-6)
    same = torchaudio.transforms.Resample(16000, 16000)(waveform)
    assert same is waveform


def test_load_reads_a_wav(stand_in, tmp_path):
    import soundfile as sf

    _, torchaudio = stand_in
    t = np.arange(2205) / 22050
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 660 * t)], axis=1)  # (n, 2)
    path = tmp_path / "tone.wav"
    sf.write(path, stereo, 22050, subtype="FLOAT")
    waveform, rate = torchaudio.load(path)
    assert rate == 22050 and waveform.shape == (2, 2205) and waveform.dtype == torch.float32
    np.testing.assert_allclose(waveform.numpy(), stereo.T, atol=1e-6)


def test_a_broken_real_torchaudio_gives_the_stand_in(no_torchaudio_loaded, monkeypatch, tmp_path):
    # a torchaudio package whose import fails as the PyPI 2.11 wheel does with torch 2.13 (its C++ extension)
    package = tmp_path / "torchaudio"
    package.mkdir()
    (package / "__init__.py").write_text("raise OSError('libtorchaudio.so: undefined symbol: _ZN3c10 (simulated)')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sentence = ensure_torchaudio()
    assert "stand-in" in sentence and "OSError" in sentence and "undefined symbol" in sentence
    torchaudio = importlib.import_module("torchaudio")
    assert torchaudio.__version__ == SHIM_VERSION and not hasattr(torchaudio, "__file__")


def test_twice_is_idempotent(stand_in):
    _, torchaudio = stand_in
    again = ensure_torchaudio()
    assert "stand-in" in again
    assert sys.modules["torchaudio"] is torchaudio and sys.modules["torchaudio.transforms"] is torchaudio.transforms
