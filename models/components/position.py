"""Where a patch is: fixed 2-D sinusoidal codes added to the tokens (row, column), and a learned
continuous relative bias for spatial attention (`SpatialPositionBias`).

Only space is encoded in the tokens. Time is never added: an absolute frame index stamped into every
token made an unchanged frame encode to different tokens at every t (measured: 2-14 % of a static
clip's tokens kept). Temporal attention carries time instead, as a relative bias (attention.py).
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=16)
def _relative_offset_table_cpu(grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = grid
    rows, cols = torch.meshgrid(
        torch.arange(-(height - 1), height), torch.arange(-(width - 1), width), indexing="ij"
    )
    offsets = torch.stack([rows.flatten(), cols.flatten()], dim=-1).float()  # [(2h-1)(2w-1), 2]
    r, c = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    r, c = r.flatten(), c.flatten()  # [h*w] each, row-major
    # pair (i, j) has offset (r_i - r_j, c_i - c_j); its row in `offsets`:
    index = (r[:, None] - r[None, :] + height - 1) * (2 * width - 1) + (c[:, None] - c[None, :] + width - 1)
    return offsets, index  # index: int64 [h*w, h*w]


def relative_offset_table(grid: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Every distinct (row, column) offset of a grid and, per pair of patches, the row of its offset."""
    offsets, index = _relative_offset_table_cpu(tuple(grid))
    return offsets.to(device), index.to(device)


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
        self._cached: tuple[tuple, torch.Tensor] | None = None  # (key, bias) of the last no-grad call

    def forward(self, grid: tuple[int, int], num_tokens: int, device: torch.device) -> torch.Tensor:
        """-> bias [H, num_tokens, num_tokens] for h*w patches (row-major) after num_tokens - h*w extra ones."""
        # at inference (no grad) the table only changes when the weights do: in-place updates (optimizer
        # steps, load_state_dict) bump each parameter's _version, and a moved or cast one has a new address.
        # A compiled graph computes it (a few hundred rows through a small MLP): Dynamo cannot trace
        # data pointers, and would run every block around it eagerly
        use_cache = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        key = None
        if use_cache:
            key = (
                grid,
                num_tokens,
                str(device),
                tuple((p.data_ptr(), p._version) for p in self.mlp.parameters()),
            )
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        offsets, index = relative_offset_table(grid, device)  # [(2h-1)(2w-1), 2], [h*w, h*w]
        # the MLP runs once per distinct offset, not per pair of patches (h*w times fewer rows)
        bias = self.mlp(offsets.sign() * torch.log2(1.0 + offsets.abs()))[index].permute(
            2, 0, 1
        )  # [H, hw, hw]
        num_extra = num_tokens - index.shape[0]
        if num_extra > 0:
            bias = F.pad(bias, (num_extra, 0, num_extra, 0))  # no bias to or from extra tokens
        if use_cache:
            self._cached = (key, bias)
        return bias
