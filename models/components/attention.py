"""Multi-head attention over one axis, always through `scaled_dot_product_attention` (fused kernels).

The ST-transformer uses two instances: spatial attention (sequence = the patches of one frame) and
causal temporal attention (sequence = the frames at one patch position). Temporal attention can
attend to keys/values cached from earlier frames, so generating a new frame never recomputes the past.

Time is relative: temporal attention adds no frame index to the tokens; instead each head adds
`-slope_h * (t_query - t_key)` to its scores (ALiBi, Press et al. 2022), with learned slopes that
start at ALiBi's geometric values. Identical frames therefore get identical outputs wherever they sit
in the clip, a head can learn to prefer the latest frame, and cached keys/values stay valid when the
context window slides: a key's meaning never depends on where the window starts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KeyValue = tuple[torch.Tensor, torch.Tensor]


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """[H] ALiBi's geometric slopes 2^(-8 (h+1) / H): from a strong recency bias to nearly none."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / num_heads) for h in range(num_heads)])


def time_bias(
    slopes: torch.Tensor,
    query_times: torch.Tensor,
    key_times: torch.Tensor,
    allowed: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Additive attention bias [H, Lq, Lk]: -slope * (t_q - t_k) where allowed, -inf elsewhere.

    query_times [Lq], key_times [Lk] (frame indices in any common origin), allowed bool [Lq, Lk].
    """
    distance = (query_times[:, None] - key_times[None, :]).to(slopes.dtype)  # [Lq, Lk]
    bias = -slopes[:, None, None] * distance  # [H, Lq, Lk]
    return bias.masked_fill(~allowed, float("-inf")).to(dtype)


def causal_allowed(query_times: torch.Tensor, key_times: torch.Tensor, window: int | None) -> torch.Tensor:
    """bool [Lq, Lk]: a query sees keys at or before its own frame, at most `window` frames back in all."""
    distance = query_times[:, None] - key_times[None, :]
    allowed = distance >= 0
    if window is not None:
        allowed &= distance < window
    return allowed


def as_sdpa_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A per-head mask [H, Lq, Lk] as [1, H, Lq, Lk]. PyTorch's fused CPU attention kernel accepts 2-D or
    4-D masks only; a 3-D one sends the call down the unfused math path (about 2x slower per call at the
    tiny preset's shapes in a standalone timing, same result to 1e-6). A mask that needs a gradient
    (training) takes that path anyway."""
    return mask[None] if mask is not None and mask.dim() == 3 else mask


class Attention(nn.Module):
    """Self-attention on `[N, L, D]` sequences; optional causal mask, key/value prefix, relative time."""

    def __init__(self, dim: int, num_heads: int, relative_time: bool = False) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; pick dim = k * num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_time = relative_time
        if relative_time:
            # learned in log space so slopes stay positive (recency, never a bias toward the past)
            self.log_time_slopes = nn.Parameter(alibi_slopes(num_heads).log())

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, length, _ = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.num_heads, self.head_dim)  # [N, L, 3, H, hd]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, H, L, hd]
        return q, k, v

    def merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """[N, H, L, hd] -> projected [N, L, D]."""
        n, _, length, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim))

    def slopes(self) -> torch.Tensor:
        return self.log_time_slopes.exp()  # [H]

    def forward(
        self,
        x: torch.Tensor,
        is_causal: bool = False,
        past_kv: KeyValue | None = None,
        window: int | None = None,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KeyValue]:
        """x [N, L, D] -> (out [N, L, D], (k, v) of x alone, each [N, H, L, hd]).

        With `past_kv` (keys/values of the P positions just before x) the L new positions attend to
        all P past positions and, if causal, to new positions up to themselves. `window` (causal only)
        limits every query to the last `window` positions including its own. `bias` [H, L, L]: an
        additive score bias (non-causal only; the spatial position bias).
        """
        length = x.shape[1]
        q, k, v = self.split_heads(x)
        new_kv = (k, v)
        num_past = past_kv[0].shape[2] if past_kv is not None else 0
        if num_past > 0:
            k = torch.cat([past_kv[0], k], dim=2)  # [N, H, P+L, hd]
            v = torch.cat([past_kv[1], v], dim=2)
        if not is_causal:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None if bias is None else as_sdpa_mask(bias.to(q.dtype))
            )
            return self.merge_heads(out), new_kv
        query_times = torch.arange(num_past, num_past + length, device=x.device)
        key_times = torch.arange(num_past + length, device=x.device)
        allowed = causal_allowed(query_times, key_times, window)  # [L, P+L]
        if self.relative_time:
            mask = time_bias(self.slopes(), query_times, key_times, allowed, q.dtype)  # [H, L, P+L]
        elif window is None and num_past == 0:
            mask = None  # plain causal: let SDPA pick its causal kernel
        else:
            mask = allowed
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=as_sdpa_mask(mask), is_causal=mask is None and length > 1
        )  # [N, H, L, hd]
        return self.merge_heads(out), new_kv

    def forward_two_stream(
        self, clean: torch.Tensor, masked: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal attention for two aligned streams of the same clip, clean [N, T, D] and masked [N, T, D].

        The clean stream attends causally to itself. Each masked position t attends to the clean
        positions before t and to itself only: exactly what a partially masked frame sees at
        inference, where the past comes from the cache of clean, already generated frames.
        -> (clean out [N, T, D], masked out [N, T, D]).
        """
        n, length, _ = clean.shape
        q, k, v = self.split_heads(torch.cat([clean, masked]))  # each [2N, H, T, hd]
        q_clean, q_masked = q.split(n)
        k_clean, k_masked = k.split(n)
        v_clean, v_masked = v.split(n)
        times = torch.arange(length, device=clean.device)
        sees_clean = causal_allowed(times, times, None)  # [T, T]
        before = times[:, None] > times[None, :]  # masked t sees clean j < t ...
        itself = times[:, None] == times[None, :]  # ... and its own masked self
        masked_keys_allowed = torch.cat([before, itself], dim=1)  # [T, 2T]
        key_times = torch.cat([times, times])
        if self.relative_time:
            clean_mask = time_bias(self.slopes(), times, times, sees_clean, q.dtype)
            masked_mask = time_bias(self.slopes(), times, key_times, masked_keys_allowed, q.dtype)
        else:
            clean_mask, masked_mask = sees_clean, masked_keys_allowed
        clean_out = F.scaled_dot_product_attention(
            q_clean, k_clean, v_clean, attn_mask=as_sdpa_mask(clean_mask)
        )
        masked_out = F.scaled_dot_product_attention(
            q_masked,
            torch.cat([k_clean, k_masked], dim=2),  # [N, H, 2T, hd]
            torch.cat([v_clean, v_masked], dim=2),
            attn_mask=as_sdpa_mask(masked_mask),
        )
        return self.merge_heads(clean_out), self.merge_heads(masked_out)
