"""Record one episode: an agent plays a GameEnv; frames uint8 [T, S, S, 3], actions (vocabulary ids) [T-1].

Two ways, same bytes: `record_episode` resizes each frame as it is played (the agent sees it), and
`record_screens` keeps the native screens so that `ScreenRecording.resized` can make the frames
later, on another thread, for agents that do not look (`Policy.uses_observation` is False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policy import Policy
from envs import OBSERVATION_IS_RESET, GameEnv
from envs.frames import FrameResizer


@dataclass
class Recording:
    frames: np.ndarray  # uint8 [T, S, S, 3]
    actions: np.ndarray  # int64 [T - 1], ids into ACTION_VOCABULARY
    info: dict[str, Any]


@dataclass
class ScreenRecording:
    screens: np.ndarray  # uint8 [T, H, W, 3], native, a view of the buffer recorded into
    actions: np.ndarray  # int64 [T - 1], ids into ACTION_VOCABULARY
    info: dict[str, Any]

    def resized(self, resize: FrameResizer, frames_out: np.ndarray) -> Recording:
        """The Recording `record_episode` would have made; frames are a view of `frames_out`."""
        for t, screen in enumerate(self.screens):
            frames_out[t] = resize(screen)  # [S, S, 3]
        return Recording(frames_out[: len(self.screens)], self.actions, self.info)


def frame_buffer(num_frames: int, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Uninitialised uint8 [num_frames, *frame_shape] to record into, reusable across episodes.

    np.empty maps pages lazily, so a short episode touches only what it uses. Reusing one buffer
    matters at 256 px: a fresh [T, S, S, 3] array per episode (np.stack) is ~100 MB of new pages,
    and faulting them in took ~0.45 ms per frame in a profile, a third of emulating its 4 frames.
    """
    return np.empty((num_frames, *frame_shape), dtype=np.uint8)  # [T_max, H, W, 3]


def _play(
    env: GameEnv, policy: Policy, seed: int, n_steps_max: int, out: np.ndarray, keep_screens: bool
) -> tuple[np.ndarray, dict]:
    """Play into `out` (observations, or native screens if `keep_screens`) -> (vocabulary actions [T-1], info)."""
    if out.shape[0] < n_steps_max + 1:
        raise ValueError(f"buffer of {out.shape[0]} frames cannot hold {n_steps_max + 1}")
    rng = np.random.default_rng(seed)
    observation, _ = env.reset(seed=seed)
    policy.reset()
    out[0] = env.screen() if keep_screens else observation
    observation = None if keep_screens else observation  # such an agent ignores it
    local_actions: list[int] = []
    total_reward, terminated = 0.0, False
    for _ in range(n_steps_max):
        action = policy.act(observation, rng)
        if keep_screens:
            reward, terminated, info = env.advance(action)
        else:
            observation, reward, terminated, _, info = env.step(action)
        total_reward += reward
        if info.get(OBSERVATION_IS_RESET):  # the frame belongs to the next episode: drop the step
            break
        local_actions.append(action)
        out[len(local_actions)] = env.screen() if keep_screens else observation
        if terminated:
            break
    info = {
        "seed": seed,
        "total_reward": total_reward,
        "terminated": bool(terminated),
        "frame_skip": env.frame_skip,
        "env_actions": list(env.action_names),  # this game's own actions: what "a random action" may be
    }
    local = np.asarray(local_actions, dtype=np.int64)  # [T-1]
    return env.action_ids[local].astype(np.int64), info  # local index -> vocabulary id


def record_episode(
    env: GameEnv, policy: Policy, seed: int, n_steps_max: int, frames_out: np.ndarray | None = None
) -> Recording:
    """Play up to `n_steps_max` steps (T <= n_steps_max + 1 frames) from a reset seeded with `seed`.

    With `frames_out` (uint8 [>= n_steps_max + 1, S, S, 3]), frames are written into it and the
    recording's frames are a view of it: valid until the buffer is recorded into again.
    """
    if frames_out is None:
        frames_out = frame_buffer(n_steps_max + 1, env.observation_space.shape)
    actions, info = _play(env, policy, seed, n_steps_max, frames_out, keep_screens=False)
    return Recording(frames_out[: len(actions) + 1], actions, info)


def record_screens(
    env: GameEnv, policy: Policy, seed: int, n_steps_max: int, screens_out: np.ndarray
) -> ScreenRecording:
    """`record_episode` for an agent that ignores observations, keeping native screens in `screens_out`."""
    if policy.uses_observation:
        raise ValueError(f"{type(policy).__name__} looks at observations: use record_episode")
    actions, info = _play(env, policy, seed, n_steps_max, screens_out, keep_screens=True)
    return ScreenRecording(screens_out[: len(actions) + 1], actions, info)
