"""What the learner sees of a reward: the remedies for a reward that is positive at every step.

An intrinsic reward that is positive everywhere (AutoExplore's uncertainty) pays an agent for merely
staying alive: a longer episode earns more whatever it visits. The curiosity literature's remedies,
each a switch of the `reward:` config section (the paper's behaviour is all three off/true):

- `normalize`: divide rewards by a running estimate of the standard deviation of their discounted
  returns (Burda et al. 2018, RND), so the scale of the reward no longer depends on the game or on how
  far training has come;
- `center`: subtract a running mean of the per-step reward, so a step is worth something only when its
  reward is above what a step usually earns (a per-step baseline);
- `episodic: false`: the return does not stop at an episode end (RND's non-episodic intrinsic return),
  so ending an episode costs nothing, and avoiding it earns nothing, by itself. Applied where returns are
  computed (the collector stores the episode ends the returns should see).

`RewardShaping` keeps its statistics as tensors so a resumed run continues them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RunningMoments:
    """Mean and variance of everything seen so far (parallel update: Chan et al.)."""

    count: torch.Tensor  # float64 scalar
    mean: torch.Tensor  # float64 scalar
    var: torch.Tensor  # float64 scalar

    @classmethod
    def empty(cls) -> RunningMoments:
        zero = torch.zeros((), dtype=torch.float64)
        return cls(zero.clone(), zero.clone(), torch.ones((), dtype=torch.float64))

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """{prefix_count, prefix_mean, prefix_var}: 1-element tensors (how checkpoints store them)."""
        return {f"{prefix}_{key}": getattr(self, key).reshape(-1) for key in ("count", "mean", "var")}

    @classmethod
    def from_state_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str) -> RunningMoments:
        return cls(*(tensors[f"{prefix}_{key}"].reshape(()).clone() for key in ("count", "mean", "var")))

    def update(self, values: torch.Tensor) -> None:
        values = values.double().flatten()
        n, mean, var = values.numel(), values.mean(), values.var(unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.var = (self.var * self.count + var * n + delta.pow(2) * self.count * n / total) / total
        self.mean = self.mean + delta * n / total
        self.count = total


class RewardShaping:
    """rewards [N] per step -> what training sees, with running statistics over all steps so far."""

    def __init__(self, num_envs: int, normalize: bool, center: bool, gamma: float) -> None:
        self.normalize, self.center, self.gamma = normalize, center, gamma
        self.returns = torch.zeros(num_envs, dtype=torch.float64)  # running discounted return per env
        self.return_moments = RunningMoments.empty()
        self.reward_moments = RunningMoments.empty()

    @property
    def is_identity(self) -> bool:
        return not (self.normalize or self.center)

    def __call__(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards float [N] of one step -> shaped rewards float32 [N]."""
        if self.is_identity:
            return rewards.float()
        shaped = rewards.double()
        if self.center:
            self.reward_moments.update(shaped)
            shaped = shaped - self.reward_moments.mean
        if self.normalize:
            # the return runs on across episode ends, as in RND: it estimates the reward's scale, not a value
            self.returns = self.gamma * self.returns + rewards.double()
            self.return_moments.update(self.returns)
            shaped = shaped / (self.return_moments.var.sqrt() + 1e-8)
        return shaped.float()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"returns": self.returns.reshape(-1), **self.return_moments.state_tensors("return"),
                **self.reward_moments.state_tensors("reward")}  # fmt: skip

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.returns = tensors["returns"].clone()
        self.return_moments = RunningMoments.from_state_tensors(tensors, "return")
        self.reward_moments = RunningMoments.from_state_tensors(tensors, "reward")
