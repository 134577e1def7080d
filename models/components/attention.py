"""Multi-head attention over one axis, always through `scaled_dot_product_attention` (fused kernels).

The ST-transformer uses two instances: spatial attention (sequence = the patches of one frame) and
causal temporal attention (sequence = the frames at one patch position). Temporal attention can
attend to keys/values cached from earlier frames, so generating a new frame never recomputes the past.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Self-attention on `[N, L, D]` sequences; optional causal mask and key/value prefix."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; pick dim = k * num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, length, _ = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.num_heads, self.head_dim)  # [N, L, 3, H, hd]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, H, L, hd]
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        is_causal: bool = False,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x [N, L, D] -> (out [N, L, D], (k, v) of x alone, each [N, H, L, hd]).

        With `past_kv` (keys/values of P earlier positions) the L new positions attend to all P past
        positions and, if causal, to new positions up to themselves.
        """
        n, length, dim = x.shape
        q, k, v = self.split_heads(x)
        new_kv = (k, v)
        mask = None
        if past_kv is not None and past_kv[0].shape[2] > 0:
            num_past = past_kv[0].shape[2]
            k = torch.cat([past_kv[0], k], dim=2)  # [N, H, P+L, hd]
            v = torch.cat([past_kv[1], v], dim=2)
            if is_causal and length > 1:
                # query i (absolute position P+i) sees keys 0..P+i
                mask = torch.ones(length, num_past + length, dtype=torch.bool, device=x.device).tril(num_past)
            is_causal = False  # a single new query sees every past key: no mask needed
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and length > 1)
        out = out.transpose(1, 2).reshape(n, length, dim)  # [N, L, D]
        return self.proj(out), new_kv
