"""Where the training reward comes from: one interface, chosen by `reward.type`.

- `env`: the game's own reward (the CoinRun task agent);
- `none`: zero everywhere (exploration by entropy alone; a baseline);
- `world_model` (AutoExplore, issue 11) plugs in here: it sees every env's frame and action each step,
  keeps each env's context (restarted where `dones`), and scores all envs in one batched call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from common.errors import UserError
from data_generation.envs.vector import VecStep

REWARD_TYPES = ("env", "none")


class RewardSource(ABC):
    def reset(self, observations: np.ndarray) -> None:  # noqa: B027 (an optional hook: stateless sources ignore it)
        """Every env starts an episode with these frames, uint8 [N, S, S, 3]."""

    @abstractmethod
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        """actions int64 [N] that led to `step` -> training rewards float32 [N] for that step."""


class EnvReward(RewardSource):
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        return step.rewards.astype(np.float32)


class NoReward(RewardSource):
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        return np.zeros_like(step.rewards, dtype=np.float32)


def build_reward_source(reward_type: str) -> RewardSource:
    sources = {"env": EnvReward, "none": NoReward}
    if reward_type not in sources:
        hint = (
            " (the world-model reward comes with AutoExplore, issue 11)"
            if reward_type == "world_model"
            else ""
        )
        raise UserError(
            f"unknown reward.type '{reward_type}'; choose one of: {', '.join(REWARD_TYPES)}{hint}"
        )
    return sources[reward_type]()
