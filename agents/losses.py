"""The actor-critic loss over a batch of sequences: policy gradient on the log-probabilities of the
actions actually taken, value regression to lambda-returns, and an entropy bonus.

- `ppo`: advantages and returns come with the batch (GAE over the whole rollout at collection time);
  the policy term is PPO's clipped surrogate on pi_new(a) / mu(a), mu the behaviour policy (epsilon
  mixture included), so several passes over one rollout stay close to it.
- `actor_critic`: lambda-returns are recomputed inside each sequence with the current critic
  (bootstrapped from the value of the frame after the last step), A = G - V, and the policy term is
  -log pi(a) * A (AutoExplore's form; sequences may come from a replay of recent rollouts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from agents.returns import advantages as gae
from agents.rollout import SequenceBatch

ALGORITHMS = ("ppo", "actor_critic")


@dataclass
class LossTerms:
    loss: torch.Tensor  # scalar, what is minimised
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    clip_fraction: torch.Tensor  # ppo: share of steps whose ratio was clipped (0 for actor_critic)


def sequence_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    batch: SequenceBatch,
    algorithm: str,
    gamma: float,
    lam: float,
    clip: float,
    entropy_coef: float,
    value_coef: float,
    normalize_advantages: bool,
) -> LossTerms:
    """logits [B, L+1, A], values [B, L+1] from unrolling the batch's L+1 frames -> the loss terms."""
    length = batch.actions.shape[1]
    logits, step_values = logits[:, :length].float(), values[:, :length].float()  # [B, L, A], [B, L]
    log_probs_all = F.log_softmax(logits, dim=-1)
    log_probs = log_probs_all.gather(-1, batch.actions[..., None]).squeeze(-1)  # [B, L]
    entropy = -(log_probs_all.exp() * log_probs_all).sum(-1).mean()
    if algorithm == "ppo":
        advantages, returns = batch.advantages, batch.returns
    elif algorithm == "actor_critic":
        with torch.no_grad():  # time-major for the recursion: [L, B]
            advantages, returns = gae(batch.rewards.T, values.detach().float().T, batch.dones.T, gamma, lam)
            advantages, returns = advantages.T, returns.T  # [B, L]
    else:
        raise ValueError(f"unknown algorithm '{algorithm}'; choose one of: {', '.join(ALGORITHMS)}")
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    if algorithm == "ppo":
        ratio = (log_probs - batch.log_probs).exp()
        clipped = ratio.clamp(1.0 - clip, 1.0 + clip)
        policy_loss = -torch.minimum(ratio * advantages, clipped * advantages).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip).float().mean()
    else:
        policy_loss = -(log_probs * advantages).mean()
        clip_fraction = torch.zeros(())
    value_loss = 0.5 * (step_values - returns).pow(2).mean()
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return LossTerms(
        loss, policy_loss.detach(), value_loss.detach(), entropy.detach(), clip_fraction.detach()
    )
