"""Spatio-temporal transformer (Genie's ST-transformer): per block, spatial attention within each
frame, causal temporal attention across frames at each token position, then one FFN; pre-norm.

Memory is linear in the number of frames (attention is over h*w or T, never h*w*T), and because
temporal attention is causal with relative time (attention.py), the keys/values of past frames can
be cached for generation and stay valid when old frames leave the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.components.attention import Attention, KeyValue
from models.components.position import SpatialPositionBias


class STBlock(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, grid: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.norm_spatial = nn.LayerNorm(dim)
        self.spatial = Attention(dim, num_heads)
        self.grid = grid  # (h, w) of the patches: enables the relative spatial bias
        self.spatial_bias = SpatialPositionBias(num_heads) if grid is not None else None
        self.norm_temporal = nn.LayerNorm(dim)
        self.temporal = Attention(dim, num_heads, relative_time=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def with_spatial_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial attention: x [B, T, S, D] -> x + attention over the S tokens of each frame."""
        b, t, s, d = x.shape
        spatial_in = self.norm_spatial(x).reshape(b * t, s, d)  # [B*T, S, D]: one sequence per frame
        bias = self.spatial_bias(self.grid, s, x.device) if self.spatial_bias is not None else None
        return x + self.spatial(spatial_in, bias=bias)[0].reshape(b, t, s, d)

    @staticmethod
    def to_time_major(x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        return x.transpose(1, 2).reshape(b * s, t, d)  # [B*S, T, D]: one sequence per token position

    @staticmethod
    def from_time_major(x: torch.Tensor, b: int, s: int) -> torch.Tensor:
        return x.reshape(b, s, -1, x.shape[-1]).transpose(1, 2)  # back to [B, T, S, D]

    def forward(
        self, x: torch.Tensor, past_kv: KeyValue | None = None, window: int | None = None
    ) -> tuple[torch.Tensor, KeyValue]:
        """x [B, T, S, D] -> (x [B, T, S, D], temporal (k, v) of these T frames, each [B*S, H, T, hd])."""
        b, _, s, _ = x.shape
        x = self.with_spatial_attention(x)
        temporal_in = self.to_time_major(self.norm_temporal(x))
        temporal_out, new_kv = self.temporal(temporal_in, is_causal=True, past_kv=past_kv, window=window)
        x = x + self.from_time_major(temporal_out, b, s)
        x = x + self.mlp(self.norm_mlp(x))
        return x, new_kv

    def forward_two_stream(
        self, clean: torch.Tensor, masked: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """clean, masked [B, T, S, D] of the same clip -> both updated; masked t sees clean < t (attention.py)."""
        b, _, s, _ = clean.shape
        both = self.with_spatial_attention(torch.cat([clean, masked]))  # [2B, T, S, D]
        temporal_in = self.to_time_major(self.norm_temporal(both))  # [2B*S, T, D]
        clean_out, masked_out = self.temporal.forward_two_stream(*temporal_in.split(b * s))
        both = both + self.from_time_major(torch.cat([clean_out, masked_out]), 2 * b, s)
        both = both + self.mlp(self.norm_mlp(both))
        return both[:b], both[b:]


@dataclass
class FrameCache:
    """Temporal keys/values of the frames seen so far, one (k, v) per block, each [B*S, H, P, hd]."""

    layers: list[KeyValue] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def appended(self, new_layers: list[KeyValue]) -> FrameCache:
        if not self.layers:  # contiguous like every later cache (a compiled step then sees one layout)
            return FrameCache([(k.contiguous(), v.contiguous()) for k, v in new_layers])
        return FrameCache(
            [
                (torch.cat([k, nk], dim=2), torch.cat([v, nv], dim=2))
                for (k, v), (nk, nv) in zip(self.layers, new_layers, strict=True)
            ]
        )

    def last(self, num_frames: int) -> FrameCache:
        """The newest `num_frames` frames only: sliding the window is dropping old entries, no recompute."""
        if num_frames >= self.num_frames:
            return self
        if num_frames <= 0:
            return FrameCache()
        return FrameCache(
            [(k[:, :, -num_frames:].contiguous(), v[:, :, -num_frames:].contiguous()) for k, v in self.layers]
        )


class STTransformer(nn.Module):
    """A stack of ST blocks with a final LayerNorm; optional activation checkpointing per block."""

    def __init__(
        self,
        dim: int,
        num_blocks: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        checkpointing: bool = False,
        grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(STBlock(dim, num_heads, mlp_ratio, grid) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(dim)
        self.checkpointing = checkpointing

    def is_checkpointing(self) -> bool:
        return self.checkpointing and self.training and torch.is_grad_enabled()

    def forward(self, x: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """Whole clip at once: x [B, T, S, D] -> [B, T, S, D], causal in T.

        `window`: each frame attends to at most this many frames (itself included); None = all before it.
        """
        for block in self.blocks:
            if self.is_checkpointing():
                # recompute activations in backward: memory per block instead of per network
                x = checkpoint(lambda inp, blk=block: blk(inp, window=window)[0], x, use_reentrant=False)
            else:
                x = block(x, window=window)[0]
        return self.norm(x)

    def forward_two_stream(self, clean: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Masked-stream output [B, T, S, D] where masked frame t saw clean frames < t (training only)."""
        for block in self.blocks:
            if self.is_checkpointing():
                clean, masked = checkpoint(block.forward_two_stream, clean, masked, use_reentrant=False)
            else:
                clean, masked = block.forward_two_stream(clean, masked)
        return self.norm(masked)

    def forward_cached(
        self, x: torch.Tensor, cache: FrameCache | None
    ) -> tuple[torch.Tensor, list[KeyValue]]:
        """New frames x [B, Tn, S, D] attending to cached past frames -> (out, their own k/v per block).

        The caller decides whether to append the returned k/v (only once a frame is final) and how
        many past frames the cache keeps (`FrameCache.last`).
        """
        new_layers: list[KeyValue] = []
        for i, block in enumerate(self.blocks):
            past = cache.layers[i] if cache is not None and cache.layers else None
            x, kv = block(x, past_kv=past)
            new_layers.append(kv)
        return self.norm(x), new_layers
