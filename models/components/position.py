"""Fixed 2-D sinusoidal position encodings of a frame's patches (row, column).

Only space is encoded in the tokens. Time is never added: an absolute frame index stamped into every
token made an unchanged frame encode to different tokens at every t (issue 8: 2-14 % of a static
clip's tokens kept). Temporal attention carries time instead, as a relative bias (attention.py).
"""

from __future__ import annotations

import math

import torch


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [L] -> [L, dim] (sin on the first half, cos on the second)."""
    if dim % 2 != 0:
        raise ValueError(f"sinusoidal encoding needs an even width, got {dim}")
    freqs = torch.exp(-math.log(10000.0) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    angles = positions.float()[:, None] * freqs[None, :].to(positions.device)  # [L, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def spatial_encoding(height: int, width: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """[h*w, dim]: first half encodes the row, second half the column (row-major patch order)."""
    if dim % 4 != 0:
        raise ValueError(f"2-D sinusoidal encoding needs a width divisible by 4, got {dim}")
    rows = sinusoid(torch.arange(height, device=device), dim // 2)  # [h, dim/2]
    cols = sinusoid(torch.arange(width, device=device), dim // 2)  # [w, dim/2]
    grid = torch.cat(
        [rows[:, None, :].expand(height, width, -1), cols[None, :, :].expand(height, width, -1)], dim=-1
    )  # [h, w, dim]
    return grid.reshape(height * width, dim)


def add_positions(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """x [B, T, S, D] (S = h*w, or h*w + extra leading tokens) -> x + spatial codes (same for every t)."""
    num_tokens, dim = x.shape[-2:]
    spatial = spatial_encoding(grid[0], grid[1], dim, x.device)  # [h*w, D]
    num_extra = num_tokens - spatial.shape[0]
    if num_extra > 0:  # extra tokens (e.g. a prepended action token) get their own fixed code
        spatial = torch.cat([sinusoid(torch.arange(-num_extra, 0, device=x.device) - 1000, dim), spatial])
    return x + spatial.to(x.dtype)
