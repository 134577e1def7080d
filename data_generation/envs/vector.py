"""Many environments stepped together: what an actor-critic collects from (task agent, AutoExplore).

A VecEnv steps N episodes at once and restarts each one as it ends, so the batch never waits: after a
step that ends an episode, that slot's observation is already the first frame of the next episode
(procgen's convention, which CoinRun's native batch follows). Two kinds:

- `SerialVecEnv`: N GameEnvs of the one env layer stepped in this process (synthetic games, tests;
  retro needs one emulator per process, so a process-per-env VecEnv belongs beside this one);
- `CoinRunVecEnv` (data_generation/envs/coinrun.py): one procgen instance with N envs, stepped natively.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_generation.envs.base import OBSERVATION_IS_RESET, GameEnv
from data_generation.work import episode_seed


@dataclass
class VecStep:
    observations: np.ndarray  # uint8 [N, S, S, 3]; where `dones`, the next episode's first frame
    rewards: np.ndarray  # float32 [N], the game's own reward for the step
    dones: np.ndarray  # bool [N], the episode ended with this step (game over, level done or time limit)


class VecEnv(ABC):
    num_envs: int
    action_names: tuple[str, ...]
    image_size: int

    @abstractmethod
    def reset(self) -> np.ndarray:
        """Start every episode afresh -> observations uint8 [N, S, S, 3]."""

    @abstractmethod
    def step(self, actions: np.ndarray) -> VecStep:
        """actions int64 [N] (local indices) -> one step of every env."""

    def get_state(self) -> dict[str, Any] | None:
        """A snapshot to resume from (JSON-able data and bytes), or None if these games cannot snapshot."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no snapshots (get_state returned None)")

    def close(self) -> None:  # noqa: B027 (optional: envs without emulators hold nothing)
        """Release the emulators."""


class SerialVecEnv(VecEnv):
    """GameEnvs stepped one after another; env i's k-th episode is seeded by episode_seed(seed, 'env{i}', k)."""

    def __init__(self, envs: list[GameEnv], seed: int, max_episode_steps: int | None = None) -> None:
        if not envs:
            raise ValueError("SerialVecEnv needs at least one env")
        self.envs = envs
        self.num_envs = len(envs)
        self.action_names = envs[0].action_names
        self.image_size = envs[0].image_size
        self.seed = seed
        self.max_episode_steps = max_episode_steps
        self._episode_counts = [0] * self.num_envs
        self._episode_steps = [0] * self.num_envs

    def _restart(self, index: int) -> np.ndarray:
        seed = episode_seed(self.seed, f"env{index}", self._episode_counts[index])
        self._episode_counts[index] += 1
        self._episode_steps[index] = 0
        observation, _ = self.envs[index].reset(seed=seed)
        return observation

    def reset(self) -> np.ndarray:
        return np.stack([self._restart(i) for i in range(self.num_envs)])  # [N, S, S, 3]

    def step(self, actions: np.ndarray) -> VecStep:
        observations, rewards, dones = [], np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool)
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            observation, reward, terminated, truncated, info = env.step(int(action))
            self._episode_steps[i] += 1
            is_timeout = (
                self.max_episode_steps is not None and self._episode_steps[i] >= self.max_episode_steps
            )
            rewards[i], dones[i] = (
                reward,
                terminated or truncated or is_timeout or bool(info.get(OBSERVATION_IS_RESET)),
            )
            observations.append(self._restart(i) if dones[i] else observation)
        return VecStep(np.stack(observations), rewards, dones)

    def get_state(self) -> dict[str, Any] | None:
        if not all(hasattr(env, "get_state") for env in self.envs):
            return None
        return {
            "envs": [env.get_state() for env in self.envs],
            "episode_counts": list(self._episode_counts),
            "episode_steps": list(self._episode_steps),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for env, env_state in zip(self.envs, state["envs"], strict=True):
            env.set_state(env_state)
        self._episode_counts = list(state["episode_counts"])
        self._episode_steps = list(state["episode_steps"])

    def close(self) -> None:
        for env in self.envs:
            env.close()
