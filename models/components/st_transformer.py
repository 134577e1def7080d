"""Spatio-temporal transformer (Genie's ST-transformer): per block, spatial attention within each
frame, causal temporal attention across frames at each token position, then one FFN; pre-norm.

Memory is linear in the number of frames (attention is over h*w or T, never h*w*T), and because
temporal attention is causal, the keys/values of past frames can be cached for generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.components.attention import Attention

KeyValue = tuple[torch.Tensor, torch.Tensor]


class STBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm_spatial = nn.LayerNorm(dim)
        self.spatial = Attention(dim, num_heads)
        self.norm_temporal = nn.LayerNorm(dim)
        self.temporal = Attention(dim, num_heads)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, past_kv: KeyValue | None = None) -> tuple[torch.Tensor, KeyValue]:
        """x [B, T, S, D] -> (x [B, T, S, D], temporal (k, v) of these T frames, each [B*S, H, T, hd])."""
        b, t, s, d = x.shape
        spatial_in = self.norm_spatial(x).reshape(b * t, s, d)  # [B*T, S, D]: one sequence per frame
        x = x + self.spatial(spatial_in)[0].reshape(b, t, s, d)
        temporal_in = self.norm_temporal(x).transpose(1, 2).reshape(b * s, t, d)  # [B*S, T, D]
        temporal_out, new_kv = self.temporal(temporal_in, is_causal=True, past_kv=past_kv)
        x = x + temporal_out.reshape(b, s, t, d).transpose(1, 2)  # back to [B, T, S, D]
        x = x + self.mlp(self.norm_mlp(x))
        return x, new_kv


@dataclass
class FrameCache:
    """Temporal keys/values of the frames seen so far, one (k, v) per block, each [B*S, H, P, hd]."""

    layers: list[KeyValue] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def appended(self, new_layers: list[KeyValue]) -> FrameCache:
        if not self.layers:
            return FrameCache(list(new_layers))
        return FrameCache(
            [
                (torch.cat([k, nk], dim=2), torch.cat([v, nv], dim=2))
                for (k, v), (nk, nv) in zip(self.layers, new_layers, strict=True)
            ]
        )


class STTransformer(nn.Module):
    """A stack of ST blocks with a final LayerNorm; optional activation checkpointing per block."""

    def __init__(
        self, dim: int, num_blocks: int, num_heads: int, mlp_ratio: float = 4.0, checkpointing: bool = False
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(STBlock(dim, num_heads, mlp_ratio) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(dim)
        self.checkpointing = checkpointing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole clip at once: x [B, T, S, D] -> [B, T, S, D], causal in T."""
        for block in self.blocks:
            if self.checkpointing and self.training and torch.is_grad_enabled():
                # recompute activations in backward: memory per block instead of per network
                x = checkpoint(lambda inp, blk=block: blk(inp)[0], x, use_reentrant=False)
            else:
                x = block(x)[0]
        return self.norm(x)

    def forward_cached(
        self, x: torch.Tensor, cache: FrameCache | None
    ) -> tuple[torch.Tensor, list[KeyValue]]:
        """New frames x [B, Tn, S, D] attending to cached past frames -> (out, their own k/v per block).

        The caller decides whether to append the returned k/v (only once a frame is final).
        """
        new_layers: list[KeyValue] = []
        for i, block in enumerate(self.blocks):
            past = cache.layers[i] if cache is not None and cache.layers else None
            x, kv = block(x, past_kv=past)
            new_layers.append(kv)
        return self.norm(x), new_layers
