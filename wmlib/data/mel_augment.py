"""Augmentation on the fly, in the log-mel domain: every training window freshly perturbed.

The corpus's randomized copies (:mod:`wmlib.data.augment`) are drawn once, when the corpus is built, so a model
trained for many epochs sees each of them again and again.  The perturbations here cost almost nothing per step
and are drawn anew for every window of every step, so the model rarely sees one window twice in the same form
(SpecAugment, Park et al. 2019; WavAugment, Kharitonov et al. 2021, where augmentation raised CPC's phone
accuracy).  Each acts on a whole window the same way (a channel, a room, a background), so what the model must
predict stays predictable; none moves a token in time, so every token keeps its labels.

- **mixing** with another training window at an SNR drawn in dB, summed in the power domain (log-mels are dB of
  power: ``10 log10(P_a + g P_b)``, ``g`` chosen so that the window's total powers are ``snr_db`` apart);
- **band limits**: a low-pass or a high-pass at a random mel bin, or the telephone band (300–3,400 Hz), the bins
  outside it attenuated by ``band_attenuation_db`` (floored at the features' -100 dB);
- **gain** and **spectral tilt** (dB added per window, and dB added linearly along the mel axis);
- **time and frequency masks** (SpecAugment): a few frames or mel bins set to the window's mean level.

Seeded: :class:`MelAugment` draws from the ``torch.Generator`` it is given (training seeds one per window, by
``(seed, step, window in the global batch)``), so a run is reproducible bit for bit, a resumed run is the
uninterrupted one, and several processes perturb as one.  Off in evaluation: a
module in ``eval()`` mode returns its input unchanged, and only :func:`wmlib.model.train.train` calls it.

Used by :func:`wmlib.model.train.train` (``TrainConfig.augment``) and the chapter "Training and prediction".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import numpy as np
import torch

FLOOR_DB = -100.0  # the features' floor: librosa.power_to_db(amin=1e-10)


def mix_at_snr(signal_db: torch.Tensor, other_db: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """Mix two windows in the power domain so that the signal's power is ``snr_db`` above the other's.

    Args:
        signal_db, other_db: ``(B, T, M, F)`` log-mel windows in dB of power.
        snr_db: ``(B,)`` signal-to-other ratio per window, over the window's total power (every bin and frame).

    Returns:
        ``(B, T, M, F)`` ``10 log10(P_signal + g P_other)`` with ``10 log10(sum P_signal / sum g P_other) = snr_db``.
    """
    assert signal_db.shape == other_db.shape, f"windows differ in shape: {signal_db.shape} vs {other_db.shape}"
    power, other = 10.0 ** (signal_db.double() / 10.0), 10.0 ** (other_db.double() / 10.0)  # float64: sums of 16k
    dims = tuple(range(1, power.ndim))
    gain = power.sum(dims) / other.sum(dims).clamp_min(1e-30) / 10.0 ** (snr_db.double() / 10.0)  # (B,)
    mixed = power + gain.view(-1, *[1] * len(dims)) * other
    return (10.0 * torch.log10(mixed.clamp_min(10.0 ** (FLOOR_DB / 10.0)))).to(signal_db.dtype)


@dataclass(frozen=True)
class MelAugmentConfig:
    """How often and how strongly each perturbation is drawn (probabilities per window; ranges are uniform).

    The defaults were chosen so that the perturbed windows still look like the corpus's own sound: SNRs from 0 to
    25 dB, a quarter of the windows band-limited (half of those to the telephone band), gain within ±10 dB,
    tilt within ±6 dB across the mel axis, at most two masks of each kind, each at most 8 frames (80 ms) or 8 bins.
    """

    mix_probability: float = 0.5
    snr_db: tuple[float, float] = (0.0, 25.0)
    band_probability: float = 0.25
    telephone_share: float = 0.5
    band_attenuation_db: float = 60.0
    gain_db: tuple[float, float] = (-10.0, 10.0)
    tilt_db: tuple[float, float] = (-6.0, 6.0)
    time_masks: int = 2
    time_mask_frames: int = 8
    freq_masks: int = 2
    freq_mask_bins: int = 8
    mask_probability: float = 0.5

    def __post_init__(self):
        for name in ("mix_probability", "band_probability", "telephone_share", "mask_probability"):
            value = getattr(self, name)
            assert 0.0 <= value <= 1.0, f"{name} must lie in [0, 1], got {value}"
        for name in ("snr_db", "gain_db", "tilt_db"):
            low, high = getattr(self, name)
            assert low <= high, f"{name} must be (low, high) with low <= high, got {(low, high)}"
        assert min(self.time_masks, self.time_mask_frames, self.freq_masks, self.freq_mask_bins) >= 0, (
            "mask counts and widths must be >= 0")

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


class MelAugment(torch.nn.Module):
    """The perturbations of :class:`MelAugmentConfig`, drawn per window; the identity in ``eval()`` mode.

    Args:
        config: the settings (default :class:`MelAugmentConfig`).
        sample_rate, fmin, fmax: the features' mel scale (:class:`wmlib.data.features.FeatureConfig`), to place the
            telephone band on the mel bins.
    """

    def __init__(self, config: MelAugmentConfig | None = None, sample_rate: int = 16_000, fmin: float = 0.0,
                 fmax: float = 8_000.0):
        super().__init__()
        self.config = config or MelAugmentConfig()
        self.sample_rate, self.fmin, self.fmax = sample_rate, fmin, fmax

    def _bin_frequencies(self, n_mels: int) -> torch.Tensor:
        """``(M,)`` the centre frequency of each mel bin, in Hz (librosa's mel scale, as the features)."""
        return torch.from_numpy(librosa.mel_frequencies(n_mels + 2, fmin=self.fmin, fmax=self.fmax)[1:-1])

    def forward(self, tokens: torch.Tensor, others: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Perturb every window of ``tokens``.

        Args:
            tokens: ``(B, T, M, F)`` windows in dB (``T`` tokens of ``M`` mel bins by ``F`` frames).
            others: ``(B, T, M, F)`` other training windows, the sound mixed in.
            generator: a CPU ``torch.Generator``; every draw comes from it.

        Returns:
            ``(B, T, M, F)`` perturbed windows in dB (``tokens`` itself in ``eval()`` mode).
        """
        if not self.training:
            return tokens
        assert tokens.ndim == 4, f"tokens must be (B, T, M, F) dB windows, got shape {tuple(tokens.shape)}"
        config, (batch, length, n_mels, frames) = self.config, tokens.shape
        device = tokens.device

        def uniform(low, high, *shape):
            return (low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)).to(device)

        def chance(probability):
            return (torch.rand(batch, generator=generator) < probability).to(device)

        out = tokens
        mix, snr = chance(config.mix_probability), uniform(*config.snr_db, batch)
        mixed = mix_at_snr(out, others, snr)
        out = torch.where(mix.view(-1, 1, 1, 1), mixed, out)

        # band limits: low-pass, high-pass or telephone, per window
        hertz = self._bin_frequencies(n_mels).to(device)  # (M,)
        band, telephone = chance(config.band_probability), chance(config.telephone_share)
        cutoff = uniform(1_000.0, 6_000.0, batch)
        highpass = chance(0.3)
        outside = torch.where(highpass[:, None], hertz[None] < cutoff[:, None] / 8, hertz[None] > cutoff[:, None])
        outside = torch.where(telephone[:, None], (hertz[None] < 300.0) | (hertz[None] > 3_400.0), outside)
        attenuation = (band[:, None] & outside).to(out.dtype) * config.band_attenuation_db  # (B, M)
        out = (out - attenuation[:, None, :, None]).clamp_min(FLOOR_DB)

        # gain and tilt (dB): the same for every token of a window
        gain, tilt = uniform(*config.gain_db, batch), uniform(*config.tilt_db, batch)
        slope = torch.linspace(-0.5, 0.5, n_mels, device=device, dtype=torch.float64)  # (M,)
        out = out + (gain[:, None] + tilt[:, None] * slope[None]).to(out.dtype)[:, None, :, None]

        # SpecAugment masks, set to the window's mean level
        masked = chance(config.mask_probability)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        keep_time = _keep_outside_masks(batch, length * frames, config.time_masks, config.time_mask_frames,
                                        generator, device)  # (B, T * F)
        keep_freq = _keep_outside_masks(batch, n_mels, config.freq_masks, config.freq_mask_bins, generator, device)
        keep_time |= ~masked[:, None]
        keep_freq |= ~masked[:, None]
        keep = keep_time.view(batch, length, 1, frames) & keep_freq.view(batch, 1, n_mels, 1)  # (B, T, M, F)
        return torch.where(keep, out, mean.expand_as(out))


def _keep_outside_masks(batch: int, size: int, count: int, max_width: int, generator: torch.Generator,
                        device) -> torch.Tensor:
    """``(B, size)`` True outside ``count`` masks per row, each of a width drawn in ``[0, max_width]``."""
    keep = torch.ones(batch, size, dtype=torch.bool, device=device)
    position = torch.arange(size, device=device)
    for _ in range(count):
        width = (torch.rand(batch, generator=generator) * (max_width + 1)).long().to(device)
        start = (torch.rand(batch, generator=generator).to(device) * (size - width + 1)).long()
        keep &= ~((position[None] >= start[:, None]) & (position[None] < (start + width)[:, None]))
    return keep


def augment_from_dict(settings: dict | None, sample_rate: int = 16_000, fmin: float = 0.0,
                      fmax: float = 8_000.0) -> MelAugment | None:
    """A :class:`MelAugment` from ``TrainConfig.augment`` (``None``: no augmentation; ``{}``: the defaults)."""
    if settings is None:
        return None
    known = set(MelAugmentConfig.__dataclass_fields__)
    unknown = set(settings) - known
    assert not unknown, f"unknown augmentation settings {sorted(unknown)}; known: {sorted(known)}"
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()}
    return MelAugment(MelAugmentConfig(**values), sample_rate=sample_rate, fmin=fmin, fmax=fmax)


def augmentation_seed(seed: int, step: int, window: int) -> int:
    """The generator seed of one window's perturbation: a function of ``(seed, step, window in the global batch)``."""
    return int(np.random.SeedSequence([seed, step, window, 0xA46]).generate_state(1, np.uint64)[0] >> 1)
