"""One long episode per game with a policy: its game return, its training-reward return and a gif.

AutoExplore's evaluation (every `evaluation.every` epochs, and `auto_explore eval`): env i plays game
i of the config's games, sampled from the policy (temperature 1, no epsilon) until the episode ends or
`evaluation.num_steps` steps pass. The training reward is the run's own source (for AutoExplore, the
world model's uncertainty), so the intrinsic return is comparable across evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.actor_critic import ActorCritic, sample_actions
from agents.config import AgentTrainConfig
from agents.rewards import RewardSource
from envs import make_vec_env
from training.evaluation.gifs import save_gif


def config_games(config: AgentTrainConfig) -> list[str]:
    return [config.env.game] if isinstance(config.env.game, str) else list(config.env.game)


@torch.no_grad()
def play_long_episodes(
    model: ActorCritic,
    config: AgentTrainConfig,
    build_reward: Callable[[], RewardSource],
    device: torch.device,
    out_dpath: Path,
    tag: str,
) -> list[dict[str, Any]]:
    """-> one row per game: game, steps, return, reward_return, gif path (gifs under out_dpath)."""
    games, env = config_games(config), config.env
    vec_env = make_vec_env(games, len(games), env.image_size, config.common.seed + 1_000_003, env.frame_skip,
                           max_episode_steps=config.evaluation.num_steps)  # fmt: skip
    generator = torch.Generator().manual_seed(config.common.seed)
    try:
        frames = torch.from_numpy(vec_env.reset())  # uint8 [G, S, S, 3]
        reward_source = build_reward()
        reward_source.reset(frames.numpy())
        state = model.initial_state(len(games))
        firsts = torch.ones(len(games), dtype=torch.bool)
        is_playing = np.ones(len(games), dtype=bool)
        returns, reward_returns = np.zeros(len(games)), np.zeros(len(games))
        steps = np.zeros(len(games), dtype=np.int64)
        recorded = [[frame] for frame in frames.numpy()]
        while is_playing.any():
            state = (state[0].to(device), state[1].to(device))
            logits, _, state = model.step(frames.to(device), state, firsts.to(device))
            uniforms = torch.rand(len(games), generator=generator)  # [G]
            actions = sample_actions(logits.cpu(), 1.0, 0.0, uniforms)[0].numpy()  # [G]
            step = vec_env.step(actions)
            rewards = reward_source(actions, step)
            returns += np.where(is_playing, step.rewards, 0.0)
            reward_returns += np.where(is_playing, rewards, 0.0)
            steps += is_playing
            for i in np.flatnonzero(is_playing & ~step.dones):
                recorded[i].append(step.observations[i])
            is_playing &= ~step.dones
            frames, firsts = torch.from_numpy(step.observations), torch.from_numpy(step.dones)
    finally:
        vec_env.close()
    rows = []
    for i, game in enumerate(games):
        gif_fpath = save_gif(Path(out_dpath) / f"{tag}_{game}.gif", np.stack(recorded[i]), fps=15.0)
        rows.append({"game": game, "steps": int(steps[i]), "return": float(returns[i]),
                     "reward_return": float(reward_returns[i]), "gif": str(gif_fpath)})  # fmt: skip
    return rows
