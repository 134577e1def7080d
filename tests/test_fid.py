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
