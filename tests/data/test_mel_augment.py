"""On-the-fly log-mel augmentation: seeded, off in evaluation, keeps labels, mixes at the drawn SNR."""
import numpy as np
import pytest
import torch

from wmlib.data.mel_augment import (
    FLOOR_DB,
    MelAugment,
    MelAugmentConfig,
    augment_from_dict,
    mix_at_snr,
)


def windows(seed, batch=6, length=16, n_mels=64, frames=4):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(-90, 10, (batch, length, n_mels, frames)).astype(np.float32))


def test_mixing_snr_is_the_drawn_one_in_the_power_domain():
    signal, other = windows(0), windows(1) - 20.0
    snr = torch.tensor([-5.0, 0.0, 3.0, 10.0, 20.0, 35.0])
    mixed = mix_at_snr(signal, other, snr)
    power_signal = 10.0 ** (signal.double() / 10)
    added = 10.0 ** (mixed.double() / 10) - power_signal  # the other window's share of the mix
    measured = 10 * torch.log10(power_signal.sum((1, 2, 3)) / added.sum((1, 2, 3)))
    assert torch.all((measured - snr.double()).abs() < 0.5), (measured, snr)
    assert torch.all(mixed >= signal - 1e-4), "adding power never lowers a bin"


def test_augmentation_through_the_module_mixes_within_half_a_db():
    config = MelAugmentConfig(mix_probability=1.0, snr_db=(10.0, 10.0), band_probability=0.0, gain_db=(0.0, 0.0),
                              tilt_db=(0.0, 0.0), mask_probability=0.0)
    signal, other = windows(2), windows(3)
    out = MelAugment(config).train()(signal, other, torch.Generator().manual_seed(0))
    added = 10.0 ** (out.double() / 10) - 10.0 ** (signal.double() / 10)
    measured = 10 * torch.log10((10.0 ** (signal.double() / 10)).sum((1, 2, 3)) / added.sum((1, 2, 3)))
    assert torch.all((measured - 10.0).abs() < 0.5)


def test_seeded_and_different_per_seed():
    augment, signal, other = MelAugment().train(), windows(4), windows(5)
    first = augment(signal, other, torch.Generator().manual_seed(7))
    again = augment(signal, other, torch.Generator().manual_seed(7))
    other_seed = augment(signal, other, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(first, signal)


def test_off_in_evaluation():
    augment, signal = MelAugment(), windows(6)
    augment.eval()
    assert augment(signal, windows(7), torch.Generator().manual_seed(0)) is signal


def test_keeps_every_token_in_place():
    """No perturbation moves sound in time, so every token keeps its labels: a loud token stays the loudest."""
    signal = torch.full((8, 16, 64, 4), -80.0)
    signal[:, 5] = 0.0  # token 5 of every window is loud
    config = MelAugmentConfig(time_masks=0, freq_masks=0, snr_db=(15.0, 25.0))
    out = MelAugment(config).train()(signal, windows(8, batch=8) - 40, torch.Generator().manual_seed(1))
    assert out.shape == signal.shape
    loudness = (10 ** (out.double() / 10)).mean(dim=(2, 3))  # (B, T)
    assert torch.all(loudness.argmax(dim=1) == 5)
    assert out.min() >= FLOOR_DB - 10.0 - 1e-3  # band limits floor at -100 dB, then at most -10 dB of gain


def test_band_limit_to_the_telephone_band():
    config = MelAugmentConfig(mix_probability=0.0, band_probability=1.0, telephone_share=1.0, gain_db=(0.0, 0.0),
                              tilt_db=(0.0, 0.0), mask_probability=0.0)
    signal = torch.zeros(2, 4, 64, 4)
    out = MelAugment(config).train()(signal, signal, torch.Generator().manual_seed(0))
    assert torch.all(out[:, :, :3] == -60.0), "the bins below 300 Hz are attenuated"
    assert torch.all(out[:, :, 20:30] == 0.0), "speech's main band passes"
    assert torch.all(out[:, :, -10:] == -60.0), "the bins above 3,400 Hz are attenuated"


def test_settings_checked():
    assert augment_from_dict(None) is None
    assert augment_from_dict({}).config == MelAugmentConfig()
    assert augment_from_dict({"snr_db": [5, 10]}).config.snr_db == (5, 10)
    with pytest.raises(AssertionError, match="unknown augmentation settings"):
        augment_from_dict({"snr": 3})
    with pytest.raises(AssertionError, match="mix_probability"):
        MelAugmentConfig(mix_probability=2.0)


def test_masks_set_whole_frames_and_bins_to_the_window_mean():
    config = MelAugmentConfig(mix_probability=0.0, band_probability=0.0, gain_db=(0.0, 0.0), tilt_db=(0.0, 0.0),
                              mask_probability=1.0, time_masks=1, time_mask_frames=8, freq_masks=0)
    signal = windows(9, batch=16)
    out = MelAugment(config).train()(signal, signal, torch.Generator().manual_seed(2))
    frames = out.permute(0, 1, 3, 2).reshape(16, -1, 64)  # (B, T * F, M): one row per frame
    changed = (frames != signal.permute(0, 1, 3, 2).reshape(16, -1, 64)).any(dim=2)  # (B, T * F)
    assert changed.any() and (changed.sum(dim=1) <= 8).all(), "at most one mask of at most 8 frames a window"
    mean = signal.mean(dim=(1, 2, 3))
    for b, t in zip(*torch.nonzero(changed, as_tuple=True)):
        assert torch.allclose(frames[b, t], mean[b].expand(64))
