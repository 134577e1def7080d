"""Advantages from lambda-returns with a learned baseline (GAE, Schulman et al. 2016).

    G_t = r_t + gamma (1 - d_t) [(1 - lambda) V(s_{t+1}) + lambda G_{t+1}],   G_T = V(s_T)
    A_t = G_t - V(s_t)

d_t is 1 when step t ended the episode (s_{t+1} then belongs to the next episode and is not used).
"""

from __future__ import annotations

import torch


def lambda_returns(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """rewards [T, ...], dones [T, ...] (bool), values [T + 1, ...] (V of s_0..s_T) -> G [T, ...]."""
    num_steps = rewards.shape[0]
    if values.shape[0] != num_steps + 1:
        raise ValueError(f"values need T + 1 = {num_steps + 1} entries along dim 0 (got {values.shape[0]})")
    continues = 1.0 - dones.to(values.dtype)
    returns = torch.empty_like(rewards, dtype=values.dtype)
    next_return = values[-1]
    for t in reversed(range(num_steps)):
        bootstrap = (1.0 - lam) * values[t + 1] + lam * next_return
        next_return = rewards[t] + gamma * continues[t] * bootstrap
        returns[t] = next_return
    return returns


def advantages(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (advantages [T, ...], lambda-returns [T, ...]); A = G - V, the GAE(gamma, lambda) estimate."""
    returns = lambda_returns(rewards, values, dones, gamma, lam)
    return returns - values[:-1], returns
