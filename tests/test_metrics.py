"""PSNR against hand-computed values; SSIM against an independent numpy implementation of Wang et al."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.evaluation.metrics import MetricSums, delta_psnr, psnr, psnr_per_frame, ssim, ssim_per_frame


def test_psnr_of_known_arrays() -> None:
    target = torch.zeros(1, 2, 3, 4, 4)
    pred = torch.zeros(1, 2, 3, 4, 4)
    pred[0, 0] = 0.5  # mse 0.25 → 20·log10(1/0.5) = 6.0206 dB
    pred[0, 1] = 0.1  # mse 0.01 → 20 dB
    per_frame = psnr_per_frame(pred, target)
    assert per_frame.shape == (1, 2)
    assert per_frame[0, 0].item() == pytest.approx(20 * math.log10(2), abs=1e-5)
    assert per_frame[0, 1].item() == pytest.approx(20.0, abs=1e-4)
    # The mean is over per-frame PSNRs, not the PSNR of the mean MSE.
    assert psnr(pred, target) == pytest.approx((20 * math.log10(2) + 20.0) / 2, abs=1e-4)


def test_psnr_mse_is_over_channels_and_pixels_and_identical_frames_are_capped() -> None:
    target = torch.zeros(1, 1, 3, 2, 2)
    pred = target.clone()
    pred[0, 0, 0, 0, 0] = 1.0  # one of 12 values off by 1: mse 1/12 → 10·log10(12)
    assert psnr(pred, target) == pytest.approx(10 * math.log10(12), abs=1e-4)
    assert psnr(target, target) == pytest.approx(100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_same(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    # torchmetrics (1.9) reflect-pads and averages the SSIM map over every pixel of the image.
    padded = np.pad(image, window.shape[0] // 2, mode="reflect")
    patches = np.lib.stride_tricks.sliding_window_view(padded, window.shape)
    return np.einsum("ijkl,kl->ij", patches, window)


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 SSIM, Gaussian 11×11 σ=1.5, K1=0.01, K2=0.03, L=1, per channel, mean over pixels."""
    window, c1, c2 = _gaussian_window(), 0.01**2, 0.03**2
    maps = []
    for channel_a, channel_b in zip(a, b):
        mu_a, mu_b = _filter_same(channel_a, window), _filter_same(channel_b, window)
        var_a = _filter_same(channel_a**2, window) - mu_a**2
        var_b = _filter_same(channel_b**2, window) - mu_b**2
        cov = _filter_same(channel_a * channel_b, window) - mu_a * mu_b
        maps.append(
            ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        )
    return float(np.mean(maps))


def test_ssim_matches_independent_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 2, 3, 24, 24, generator=generator, dtype=torch.float64).float()
    pred = (target + 0.15 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    per_frame = ssim_per_frame(pred, target)
    assert per_frame.shape == (2, 2)
    for b in range(2):
        for t in range(2):
            expected = _reference_ssim(pred[b, t].double().numpy(), target[b, t].double().numpy())
            assert per_frame[b, t].item() == pytest.approx(expected, abs=1e-4)
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-6)


def test_delta_psnr_is_difference_of_psnrs() -> None:
    target = torch.zeros(2, 3, 4, 4)
    assert delta_psnr(target, torch.full_like(target, 0.1), torch.full_like(target, 0.5)) == pytest.approx(
        20.0 - 20 * math.log10(2), abs=1e-4
    )
    assert delta_psnr(target, torch.full_like(target, 0.3), torch.full_like(target, 0.3)) == 0.0


def test_metric_sums_scatter_by_index_and_nan_for_empty_slots() -> None:
    sums = MetricSums({"psnr": (3,), "count": (3,)})
    sums.add("psnr", torch.tensor([10.0, 20.0, 30.0]), index=torch.tensor([0, 0, 2]))
    sums.add("count", torch.ones(3), index=torch.tensor([0, 0, 2]))
    means = sums.ratio("psnr", "count")
    assert means[0].item() == 15.0 and means[2].item() == 30.0 and math.isnan(means[1].item())
