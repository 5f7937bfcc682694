"""The one place that deals with ``torchaudio``, which several pretrained pitch encoders import at import time.

torchcrepe, pesto-pitch and torchfcpe ``import torchaudio`` at the top of a module, but PyPI has no torchaudio
build for torch 2.13 (the newest, 2.11, fails to load its C++ extension).  None of the three needs torchaudio for
what the book asks of them (embedding a waveform already in memory): torchcrepe and pesto call ``torchaudio.load``
only in their file helpers, torchfcpe builds a ``torchaudio.transforms.Resample`` only for input that is not at
its own rate.  So, when the real torchaudio cannot be imported, :func:`ensure_torchaudio` registers a small
stand-in that provides exactly those two names, implemented with soundfile and scipy, and says so.

The encoders of :mod:`wmlib.analysis.encoders` call :func:`ensure_torchaudio` before importing any of these
packages; the project installs them with ``pip install --no-deps`` (``requirements-encoders.txt``) so that pip
does not pull the broken torchaudio wheel in.
"""
from __future__ import annotations

import importlib
import sys
import types
from fractions import Fraction

import numpy as np

#: ``torchaudio.__version__`` of the stand-in.
SHIM_VERSION = "0.0+wmlib.shim"


def _load(path, *args, **kwargs):
    """``torchaudio.load``: ``(channels, samples)`` float32 tensor and the sample rate, read with soundfile."""
    import soundfile as sf
    import torch

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    return torch.from_numpy(np.ascontiguousarray(audio.T)), int(rate)


def _resample_class():
    import torch
    from scipy.signal import resample_poly

    class Resample(torch.nn.Module):
        """``torchaudio.transforms.Resample(orig_freq, new_freq)`` along the last axis (polyphase, scipy)."""

        def __init__(self, orig_freq: int = 16000, new_freq: int = 16000, *args, **kwargs):
            super().__init__()
            ratio = Fraction(int(new_freq), int(orig_freq))
            self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
            self.up, self.down = ratio.numerator, ratio.denominator

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            if self.up == self.down:
                return waveform
            out = resample_poly(waveform.detach().cpu().double().numpy(), self.up, self.down, axis=-1)
            return torch.from_numpy(out.astype(np.float32)).to(waveform.device, waveform.dtype)

    return Resample


def _shim() -> types.ModuleType:
    module = types.ModuleType("torchaudio", "wmlib's stand-in for torchaudio: load and transforms.Resample only.")
    module.__version__ = SHIM_VERSION
    module.load = _load
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Resample = _resample_class()
    module.transforms = transforms
    return module


def ensure_torchaudio() -> str:
    """Make ``import torchaudio`` work: the real package when it loads, otherwise the stand-in.

    Returns:
        ``"torchaudio <version>"`` when the real package loaded, or a sentence saying the stand-in is in use and why.
    """
    current = sys.modules.get("torchaudio")
    if current is not None and getattr(current, "__version__", "") == SHIM_VERSION:
        return f"stand-in for torchaudio ({SHIM_VERSION}): load and transforms.Resample only"
    try:
        real = importlib.import_module("torchaudio")
        return f"torchaudio {real.__version__}"
    except (ImportError, OSError) as error:  # not installed, or its C++ extension does not match this torch
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    for name in [name for name in sys.modules if name == "torchaudio" or name.startswith("torchaudio.")]:
        del sys.modules[name]  # a half-imported real package must not shadow the stand-in
    module = _shim()
    sys.modules["torchaudio"] = module
    sys.modules["torchaudio.transforms"] = module.transforms
    return (f"stand-in for torchaudio ({SHIM_VERSION}): load and transforms.Resample only; the real one failed "
            f"({reason})")
