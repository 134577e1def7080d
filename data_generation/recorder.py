"""Record one episode: an agent plays a GameEnv; frames uint8 [T, S, S, 3], actions (vocabulary ids) [T-1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from data_generation.agents import Agent
from data_generation.envs import OBSERVATION_IS_RESET, GameEnv


@dataclass
class Recording:
    frames: np.ndarray  # uint8 [T, S, S, 3]
    actions: np.ndarray  # int64 [T - 1], ids into ACTION_VOCABULARY
    info: dict[str, Any]


def record_episode(env: GameEnv, agent: Agent, seed: int, n_steps_max: int) -> Recording:
    """Play up to `n_steps_max` steps (T <= n_steps_max + 1 frames) from a reset seeded with `seed`."""
    rng = np.random.default_rng(seed)
    observation, _ = env.reset(seed=seed)
    agent.reset()
    frames = [observation]
    local_actions: list[int] = []
    total_reward, terminated = 0.0, False
    for _ in range(n_steps_max):
        action = agent.act(observation, rng)
        observation, reward, terminated, truncated, info = env.step(action)
        total_reward += reward
        if info.get(OBSERVATION_IS_RESET):  # the frame belongs to the next episode: drop the step
            break
        frames.append(observation)
        local_actions.append(action)
        if terminated or truncated:
            break
    actions = env.action_ids[np.asarray(local_actions, dtype=np.int64)]  # local index -> vocabulary id
    info = {
        "seed": seed,
        "total_reward": total_reward,
        "terminated": bool(terminated),
        "frame_skip": env.frame_skip,
    }
    return Recording(np.stack(frames), actions.astype(np.int64), info)  # frames [T, S, S, 3]
