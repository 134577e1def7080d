"""Frames <-> non-overlapping patches."""

from __future__ import annotations

import torch


def patchify(frames: torch.Tensor, patch_size: int) -> torch.Tensor:
    """frames [B, T, C, H, W] -> patches [B, T, h*w, p*p*C] (row-major patch order)."""
    b, t, c, height, width = frames.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"frame size {height}x{width} is not a multiple of patch_size {patch_size}")
    h, w = height // patch_size, width // patch_size
    x = frames.reshape(b, t, c, h, patch_size, w, patch_size)
    x = x.permute(0, 1, 3, 5, 4, 6, 2)  # [B, T, h, w, p, p, C]
    return x.reshape(b, t, h * w, patch_size * patch_size * c)


def unpatchify(patches: torch.Tensor, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """patches [B, T, h*w, p*p*C] -> frames [B, T, C, H, W]."""
    b, t, _, features = patches.shape
    h, w = grid
    c = features // (patch_size * patch_size)
    x = patches.reshape(b, t, h, w, patch_size, patch_size, c)
    x = x.permute(0, 1, 6, 2, 4, 3, 5)  # [B, T, C, h, p, w, p]
    return x.reshape(b, t, c, h * patch_size, w * patch_size)
