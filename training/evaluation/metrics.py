"""Frame metrics on `[B, T, 3, H, W]` frames in [0, 1], and the sums that aggregate them across batches.

Per-frame values are returned so callers can average them any way they need (over frames, sequences,
games) and so multi-process runs can add *sums and counts*, never average already-averaged means.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

# A perfect prediction has MSE 0 and infinite PSNR; clamping the MSE caps it at 100 dB so a single
# identical frame cannot turn a mean into inf.
MIN_MSE = 1e-10


def _check_frames(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 5 or pred.shape[2] != 3:
        raise ValueError(
            f"expected two [B, T, 3, H, W] tensors of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR of each frame, 20·log10(1/√mse) with the MSE over C, H, W; returns float32 [B, T]."""
    _check_frames(pred, target)
    mse = (pred.float() - target.float()).pow(2).mean(dim=(2, 3, 4))  # [B, T]
    return -10.0 * torch.log10(mse.clamp_min(MIN_MSE))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame PSNR (dB) over all frames of all sequences."""
    return float(psnr_per_frame(pred, target).mean())


def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each frame (torchmetrics, Gaussian 11×11 window σ 1.5, data_range 1); returns [B, T]."""
    _check_frames(pred, target)
    batch, num_frames = pred.shape[:2]
    values = structural_similarity_index_measure(
        pred.float().flatten(0, 1),  # [B*T, 3, H, W]
        target.float().flatten(0, 1),
        data_range=1.0,
        reduction="none",
    )
    return values.reshape(batch, num_frames)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame SSIM over all frames of all sequences."""
    return float(ssim_per_frame(pred, target).mean())


def delta_psnr(
    target: torch.Tensor, pred_from_actions: torch.Tensor, pred_from_random: torch.Tensor
) -> float:
    """Genie's ΔPSNR on one frame index: PSNR(x_t, x̂_t) − PSNR(x_t, x̂'_t), averaged over the batch.

    All three tensors are `[B, 3, H, W]` frames at the same t: ground truth, the prediction from the
    real (or LAM-inferred) actions, and the prediction from random actions. Positive means the model's
    output depends on the actions in the way the data does.
    """
    as_clip = [
        frames.unsqueeze(1) for frames in (target, pred_from_actions, pred_from_random)
    ]  # [B, 1, 3, H, W]
    from_actions = psnr_per_frame(as_clip[1], as_clip[0])
    from_random = psnr_per_frame(as_clip[2], as_clip[0])
    return float((from_actions - from_random).mean())


class MetricSums:
    """Named float64 sums that add up across batches and processes; means are taken only at the end."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.values = {name: torch.zeros(shape, dtype=torch.float64) for name, shape in shapes.items()}

    def add(self, name: str, value: torch.Tensor | float, index: torch.Tensor | None = None) -> None:
        """Add `value` into sum `name`; with `index` ([B] ids), scatter-add each row into its slot."""
        value = torch.as_tensor(value, dtype=torch.float64).cpu()
        if index is None:
            self.values[name] += value
        else:
            self.values[name].index_add_(0, index.cpu().long(), value)

    def reduce(self, accelerator: object | None) -> None:
        """Sum every entry over processes (Accelerate); a no-op for one process."""
        if accelerator is None or getattr(accelerator, "num_processes", 1) == 1:
            return
        for name, value in self.values.items():
            # gloo/nccl reduce float64 fine; move to the process device so NCCL accepts it.
            reduced = accelerator.reduce(value.to(accelerator.device), reduction="sum")
            self.values[name] = reduced.cpu()

    def ratio(self, name: str, count_name: str) -> torch.Tensor:
        """Elementwise sum / count, NaN where the count is zero."""
        count = self.values[count_name]
        return torch.where(
            count > 0, self.values[name] / count.clamp_min(1), torch.full_like(count, math.nan)
        )
