"""FID through the real accumulation + Fréchet code with a tiny feature extractor built here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.evaluation import fid
from training.evaluation.fid import FidAccumulator, frechet_distance, load_inception


class TinyFeatures(nn.Module):
    """Fixed random conv features: a deterministic stand-in for InceptionV3."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(images)).mean(dim=(2, 3))  # [N, 8]


def test_frechet_distance_of_diagonal_gaussians_has_closed_form() -> None:
    mean_a, mean_b = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0])
    var_a, var_b = torch.tensor([4.0, 1.0]), torch.tensor([1.0, 9.0])
    # ‖Δμ‖² + Σ (√a − √b)² for commuting (diagonal) covariances: 5 + (1 + 4) = 10.
    assert frechet_distance(mean_a, torch.diag(var_a), mean_b, torch.diag(var_b)) == pytest.approx(
        10.0, abs=1e-9
    )


def test_fid_of_set_with_itself_is_zero_and_of_different_sets_positive() -> None:
    generator = torch.Generator().manual_seed(1)
    frames = torch.rand(4, 5, 3, 16, 16, generator=generator)  # 20 frames
    same = FidAccumulator(TinyFeatures())
    same.update(frames, frames)
    assert same.compute() == pytest.approx(0.0, abs=1e-6)

    different = FidAccumulator(TinyFeatures())
    different.update(frames, (frames * 0.5 + 0.3).clamp(0, 1))
    assert different.compute() > 1e-3


def test_fid_accumulates_batches_like_one_big_batch() -> None:
    generator = torch.Generator().manual_seed(2)
    real, generated = torch.rand(2, 6, 3, 3, 16, 16, generator=generator)
    whole = FidAccumulator(TinyFeatures())
    whole.update(real, generated)
    parts = FidAccumulator(TinyFeatures())
    parts.update(real[:3], generated[:3])
    parts.update(real[3:], generated[3:])
    assert parts.compute() == pytest.approx(whole.compute(), rel=1e-9)
    assert FidAccumulator(TinyFeatures()).compute() is None


def test_missing_inception_weights_give_one_line_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    extractor, message = load_inception(None)
    assert extractor is None
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / fid.INCEPTION_WEIGHTS_NAME) in message
    assert fid.INCEPTION_WEIGHTS_URL in message


def test_fid_of_known_features_matches_a_hand_computed_frechet_distance() -> None:
    """Features chosen by hand (the extractor reads two pixels), FID from numpy's own eigendecomposition."""
    import numpy as np

    class TwoPixels(nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return images[:, 0, 0, :2]  # [N, 2]: the first two pixels of the red channel

    rng = np.random.default_rng(0)
    real = rng.uniform(0, 1, size=(50, 2))
    generated = np.clip(real * 0.5 + 0.2 + rng.normal(0, 0.05, size=(50, 2)), 0, 1)

    def as_frames(values: np.ndarray) -> torch.Tensor:  # [50, 2] -> frames whose first two pixels hold them
        padded = torch.from_numpy(np.pad(values, ((0, 0), (0, 14)))).float()  # [50, 16]
        return padded[:, None, None, :].expand(50, 3, 16, 16)

    accumulator = FidAccumulator(TwoPixels())
    accumulator.update(as_frames(real), as_frames(generated))

    def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
        values, vectors = np.linalg.eigh(matrix)
        return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T

    real32, gen32 = (
        real.astype(np.float32).astype(np.float64),
        generated.astype(np.float32).astype(np.float64),
    )
    mu_r, mu_g = real32.mean(0), gen32.mean(0)
    cov_r, cov_g = np.cov(real32, rowvar=False), np.cov(gen32, rowvar=False)
    root_r = sqrtm_psd(cov_r)
    expected = (
        ((mu_r - mu_g) ** 2).sum()
        + np.trace(cov_r)
        + np.trace(cov_g)
        - 2 * np.trace(sqrtm_psd(root_r @ cov_g @ root_r))
    )
    assert accumulator.compute() == pytest.approx(expected, rel=1e-6)


def test_inception_input_is_nearest_resized_to_299_as_upstream() -> None:
    frames = torch.zeros(1, 3, 2, 2)
    frames[0, :, 0, 0] = 1.0  # one white pixel in a 2x2 frame
    resized = fid.inception_input(frames)
    assert resized.shape == (1, 3, 299, 299) and resized.dtype == torch.uint8
    assert set(resized.unique().tolist()) == {0, 255}  # nearest: no blended grey values
    assert (resized[0, 0, :149, :149] == 255).all() and (resized[0, 0, 150:, 150:] == 0).all()
