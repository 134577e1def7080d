"""MaskGIT iterative decoding: start fully masked, and at each of `steps` iterations sample every
masked token, keep the most confident ones, re-mask the rest according to the schedule.

Temperature: tokens are sampled from softmax(logits / temperature), fixed over the steps, or with
`anneal_temperature` scaled by the share of steps left after this one (temperature * (S - s - 1) / S at
step s, argmax at the last: upstream GenieRedux's one-go sampler); the confidence used for ranking gets
Gumbel noise scaled by temperature * (1 - progress), annealed to zero at the last step (MaskGIT's choice
temperature). temperature = 0 is greedy and deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SCHEDULES = ("cosine", "linear")


def masked_fraction(progress: float, schedule: str) -> float:
    """Fraction of tokens still masked after `progress` in [0, 1] of the iterations."""
    if schedule == "cosine":
        return math.cos(math.pi / 2 * progress)
    if schedule == "linear":
        return 1.0 - progress
    raise ValueError(f"unknown MaskGIT schedule '{schedule}'; use one of {SCHEDULES}")


def gumbel(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    uniform = torch.rand(shape, device=device, generator=generator).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(uniform))


def maskgit_sample(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    num_tokens: int,
    mask_id: int,
    device: torch.device,
    steps: int = 25,
    temperature: float = 1.0,
    schedule: str = "cosine",
    generator: torch.Generator | None = None,
    anneal_temperature: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits_fn(token_ids [B, N] with mask_id) -> logits [B, N, K].

    Returns (token_ids int64 [B, N], logits [B, N, K] each token was sampled from).
    """
    if steps < 1:
        raise ValueError(f"MaskGIT needs steps >= 1, got {steps}")
    masked_fraction(0.0, schedule)  # validate the name before any work
    token_ids = torch.full((batch_size, num_tokens), mask_id, dtype=torch.long, device=device)
    is_masked = torch.ones(batch_size, num_tokens, dtype=torch.bool, device=device)
    chosen_logits: torch.Tensor | None = None
    num_masked = num_tokens
    for step in range(steps):
        logits = logits_fn(token_ids).float()  # [B, N, K]
        if chosen_logits is None:
            chosen_logits = torch.zeros_like(logits)
        log_probs = torch.log_softmax(logits, dim=-1)
        token_temperature = temperature * (steps - step - 1) / steps if anneal_temperature else temperature
        if token_temperature > 0:
            # Gumbel-max: argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T); 4x faster
            # than torch.multinomial over [B*N, K] on CPU (measured at 512 x 1024: 7.4 vs 29.7 ms)
            sampled = (logits / token_temperature + gumbel(logits.shape, device, generator)).argmax(-1)
        else:
            sampled = logits.argmax(-1)
        confidence = log_probs.gather(-1, sampled[..., None]).squeeze(-1)  # [B, N]
        progress = (step + 1) / steps
        if temperature > 0:
            confidence = confidence + temperature * (1.0 - progress) * gumbel(
                confidence.shape, device, generator
            )
        confidence = torch.where(is_masked, confidence, torch.full_like(confidence, math.inf))
        # at least one new token per step, none left at the end
        num_masked_after = min(math.floor(num_tokens * masked_fraction(progress, schedule)), num_masked - 1)
        num_masked_after = max(num_masked_after, 0) if step < steps - 1 else 0
        rank = confidence.argsort(dim=-1, descending=True).argsort(dim=-1)  # 0 = most confident
        keep = rank < num_tokens - num_masked_after
        newly = keep & is_masked
        token_ids = torch.where(newly, sampled, token_ids)
        chosen_logits = torch.where(newly[..., None], logits, chosen_logits)
        is_masked = ~keep
        num_masked = num_masked_after
    return token_ids, chosen_logits
