"""The one seeded episode loop: a policy plays one GameEnv, episode after episode, each from its seed.

Evaluation, coverage and the novelty measurement all read episodes through `play_episodes`, so each
episode is played the same way everywhere: `env.reset(seed=s)`, `policy.reset()`, and the policy's
draws from `np.random.default_rng(s)`. Recording (data_generation/recorder.py) seeds episodes the same
way, so `seeds_like_generation` replays what a generator run with that seed would have recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import count

import numpy as np

from agents.policy import Policy
from common.seeds import episode_seed
from envs import OBSERVATION_IS_RESET, GameEnv


@dataclass(frozen=True)
class Transition:
    episode: int  # index of the episode in the seed sequence
    t: int  # step within the episode (0: the action on the reset frame)
    observation: np.ndarray  # uint8 [S, S, 3]: the frame the action was chosen on
    action: int  # local action index
    reward: float  # the game's reward for the step
    next_observation: np.ndarray  # uint8 [S, S, 3]
    is_last: bool  # the episode ended with this step: game over, or cut at max_episode_steps


def play_episodes(
    env: GameEnv,
    policy: Policy,
    seeds: Iterable[int],
    max_episode_steps: int | None = None,
    num_steps: int | None = None,
) -> Iterator[Transition]:
    """One Transition per step of consecutive episodes, one per seed, until the seeds or `num_steps`
    (steps in all) run out. After a Transition is handed out the env is in the state after that step,
    so `env.ram()` there is the state the step reached."""
    total = 0
    for index, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        observation, _ = env.reset(seed=seed)
        policy.reset()
        for t in count():
            if num_steps is not None and total >= num_steps:
                return
            action = policy.act(observation if policy.uses_observation else None, rng)
            next_observation, reward, terminated, truncated, info = env.step(action)
            total += 1
            is_cut = max_episode_steps is not None and t + 1 >= max_episode_steps
            # procgen restarts by itself: a frame of the next episode ends this one, as in recording
            is_over = terminated or truncated or bool(info.get(OBSERVATION_IS_RESET))
            is_end = is_over or is_cut or (num_steps is not None and total >= num_steps)
            yield Transition(index, t, observation, action, float(reward), next_observation, is_end)
            if is_end:
                break
            observation = next_observation


def seeds_like_generation(seed: int, env_name: str) -> Iterator[int]:
    """Episode seeds in the order the generator gives sessions 0, 1, 2, ... of `env_name`."""
    return (episode_seed(seed, env_name, session) for session in count())
