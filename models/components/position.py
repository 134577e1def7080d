"""Where a patch is: fixed 2-D sinusoidal codes added to the tokens (row, column), and a learned
continuous relative bias for spatial attention (`SpatialPositionBias`).

Only space is encoded in the tokens. Time is never added: an absolute frame index stamped into every
token made an unchanged frame encode to different tokens at every t (issue 8: 2-14 % of a static
clip's tokens kept). Temporal attention carries time instead, as a relative bias (attention.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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


class SpatialPositionBias(nn.Module):
    """Continuous relative position bias for spatial attention (Swin v2's log-spaced CPB).

    A small MLP maps each (row, column) offset between two patches, log-spaced as sign(d) log2(1+|d|),
    to one additive attention bias per head, so "look one patch to the left" is a property of the
    offset, not something to rebuild from two absolute codes; it works for any grid. The last layer
    starts at zero (no bias), and extra leading tokens (a prepended action token) get none.
    """

    def __init__(self, num_heads: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, num_heads))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, grid: tuple[int, int], num_tokens: int, device: torch.device) -> torch.Tensor:
        """-> bias [H, num_tokens, num_tokens] for h*w patches (row-major) after num_tokens - h*w extra ones."""
        rows, cols = torch.meshgrid(
            torch.arange(grid[0], device=device), torch.arange(grid[1], device=device), indexing="ij"
        )
        coords = torch.stack([rows.flatten(), cols.flatten()], dim=-1).float()  # [h*w, 2]
        offsets = coords[:, None] - coords[None, :]  # [h*w, h*w, 2]
        offsets = offsets.sign() * torch.log2(1.0 + offsets.abs())
        bias = self.mlp(offsets).permute(2, 0, 1)  # [H, h*w, h*w]
        num_extra = num_tokens - coords.shape[0]
        if num_extra > 0:
            bias = F.pad(bias, (num_extra, 0, num_extra, 0))  # no bias to or from extra tokens
        return bias
