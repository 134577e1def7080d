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


def frame_buffer(env: GameEnv, n_steps_max: int) -> np.ndarray:
    """Uninitialised uint8 [n_steps_max + 1, S, S, 3] to record into, reusable across episodes.

    np.empty maps pages lazily, so a short episode touches only what it uses. Reusing one buffer
    matters at 256 px: a fresh [T, S, S, 3] array per episode (np.stack) is ~100 MB of new pages,
    and faulting them in cost ~0.4 ms per frame, about a third of emulating the frame's 4 frames.
    """
    size = env.image_size
    return np.empty((n_steps_max + 1, size, size, 3), dtype=np.uint8)  # [T_max, S, S, 3]


def record_episode(
    env: GameEnv, agent: Agent, seed: int, n_steps_max: int, frames_out: np.ndarray | None = None
) -> Recording:
    """Play up to `n_steps_max` steps (T <= n_steps_max + 1 frames) from a reset seeded with `seed`.

    With `frames_out` (from `frame_buffer`), frames are written into it and the recording's frames
    are a view of it: valid until the buffer is recorded into again.
    """
    if frames_out is None:
        frames_out = frame_buffer(env, n_steps_max)
    elif frames_out.shape[0] < n_steps_max + 1 or frames_out.shape[1:] != (env.image_size, env.image_size, 3):
        raise ValueError(
            f"frames_out {frames_out.shape} cannot hold {n_steps_max + 1} frames of {env.image_size} px"
        )
    rng = np.random.default_rng(seed)
    observation, _ = env.reset(seed=seed)
    agent.reset()
    frames_out[0] = observation
    local_actions: list[int] = []
    total_reward, terminated = 0.0, False
    for _ in range(n_steps_max):
        action = agent.act(observation, rng)
        observation, reward, terminated, truncated, info = env.step(action)
        total_reward += reward
        if info.get(OBSERVATION_IS_RESET):  # the frame belongs to the next episode: drop the step
            break
        local_actions.append(action)
        frames_out[len(local_actions)] = observation
        if terminated or truncated:
            break
    actions = env.action_ids[np.asarray(local_actions, dtype=np.int64)]  # local index -> vocabulary id
    info = {
        "seed": seed,
        "total_reward": total_reward,
        "terminated": bool(terminated),
        "frame_skip": env.frame_skip,
    }
    frames = frames_out[: len(local_actions) + 1]  # [T, S, S, 3], a view
    return Recording(frames, actions.astype(np.int64), info)
