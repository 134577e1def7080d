"""How good is a trained agent: episodes it never trained on, the random agent beside it on the same ones.

One evaluation for every agent (`python run.py agent eval`, `python run.py auto_explore eval`, and the
trainer's periodic look): every game of the run plays `num_episodes` held-out episodes (CoinRun: the
test levels LEVEL_RANGES agent_test, level i for episode i at seed 0; other games: episode seeds of
their own stream) with the trained policy sampled at `temperature`, and the random agent on the same
seeds. Per game and agent: mean game return ± standard error, the share of episodes with a positive
return (CoinRun: the coin), mean length, and the mean return of the run's training reward (for
AutoExplore: the world model's uncertainty), plus gifs of the first episodes. Figures go to
<run>/eval_<checkpoint>.json; `python run.py bench agent_eval` records them for the docs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.actor_critic import ActorCritic
from agents.checkpoint import CHECKPOINT_NAMES, load_policy, resolve_checkpoint
from agents.config import AgentTrainConfig, parse_config
from agents.episodes import play_episodes
from agents.policy import Policy
from agents.random_policy import RandomPolicy
from agents.rewards import RewardSource
from agents.run_folder import named_run_dpath
from agents.trained_policy import TrainedPolicy
from common.atomic import atomic_write_json
from common.errors import UserError
from common.gifs import save_gif
from common.seeds import SEED_STRIDE, episode_seed
from envs import GameEnv, make_env
from envs.coinrun import LEVEL_RANGES
from envs.names import COINRUN
from envs.vector import VecStep

RewardBuilder = Callable[[tuple[str, ...]], RewardSource]  # the game's action names -> its reward source


@dataclass(frozen=True)
class EvalCommonConfig:
    resume_id: int | None  # N: evaluate <runs_dpath>/run_NNN (upstream's way)
    resume_ckpt_id: str | None  # upstream's spelling of `checkpoint`


@dataclass(frozen=True)
class EvalConfig:
    run_dpath: str | None  # the agent's run folder
    runs_dpath: str  # where common.resume_id looks
    checkpoint: str  # best_reward | last
    num_episodes: int  # held-out episodes per game and agent
    max_episode_steps: int | None  # cut episodes here; null: the run's evaluation.num_steps
    temperature: float  # the trained policy is sampled at this temperature
    seed: int  # which held-out episodes (CoinRun seed 0: test levels 0, 1, 2, ...)
    num_threads: int  # torch CPU threads
    num_gifs: int  # episodes per game and agent written as gifs
    with_random: bool  # also play the random agent on the same episodes
    common: EvalCommonConfig


@dataclass(frozen=True)
class EpisodeResult:
    game_return: float  # the game's reward summed (CoinRun: 10 for the coin)
    reward_return: float  # the run's training reward summed (reward.type), unscaled
    length: int
    gif: str | None


def evaluation_env(game: str, image_size: int, frame_skip: int) -> GameEnv:
    levels = LEVEL_RANGES["agent_test"] if game.lower() == COINRUN else None
    return make_env(game, image_size, frame_skip, levels=levels)


def evaluation_seeds(game: str, seed: int, num_episodes: int) -> list[int]:
    """Held-out episode seeds: CoinRun's test level i is episode i at seed 0 (a level is start + seed %
    count); other games take a stream of their own, disjoint from training's and the datasets'."""
    if game.lower() == COINRUN:
        start, count = LEVEL_RANGES["agent_test"]
        if not 1 <= num_episodes <= count:
            raise UserError(
                f"num_episodes must be in [1, {count}] on CoinRun's test levels (got {num_episodes})"
            )
        return [seed * SEED_STRIDE + i for i in range(num_episodes)]
    return [episode_seed(seed, f"evaluation/{game}", i) for i in range(num_episodes)]


def play_scored_episodes(
    env: GameEnv,
    policy: Policy,
    seeds: list[int],
    max_episode_steps: int | None,
    reward_source: RewardSource | None,
    gif_fpaths: list[Path],
) -> list[EpisodeResult]:
    """The episodes of `seeds`, scored by the game and by `reward_source` (one env: a batch of 1); the
    first len(gif_fpaths) episodes are saved as gifs."""
    results: list[EpisodeResult] = []
    game_return = reward_return = 0.0
    frames: list[np.ndarray] = []
    for transition in play_episodes(env, policy, seeds, max_episode_steps):
        if transition.t == 0:
            game_return = reward_return = 0.0
            frames = [transition.observation]
            if reward_source is not None:
                reward_source.reset(
                    np.array(transition.observation[None])
                )  # a copy: env frames are read-only
        game_return += transition.reward
        if reward_source is not None:
            step = VecStep(np.array(transition.next_observation[None]), np.asarray([transition.reward], np.float32),
                           np.asarray([transition.is_last]))  # fmt: skip
            reward_return += float(reward_source(np.asarray([transition.action]), step)[0])
        if transition.episode < len(gif_fpaths) and not transition.is_last:
            frames.append(transition.next_observation)
        if transition.is_last:
            gif = None
            if transition.episode < len(gif_fpaths):
                gif = str(save_gif(gif_fpaths[transition.episode], np.stack(frames), fps=15.0))
            results.append(EpisodeResult(game_return, reward_return, transition.t + 1, gif))
    return results


def summary(game: str, agent: str, episodes: list[EpisodeResult]) -> dict[str, Any]:
    returns = np.asarray([e.game_return for e in episodes])
    n = len(returns)
    return {
        "game": game, "agent": agent, "episodes": n, "mean_return": float(returns.mean()),
        "stderr": float(returns.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        "success_pct": float(100.0 * (returns > 0).mean()),
        "mean_length": float(np.mean([e.length for e in episodes])),
        "mean_reward_return": float(np.mean([e.reward_return for e in episodes])),
    }  # fmt: skip


@torch.no_grad()
def evaluate_agent(
    model: ActorCritic,
    config: AgentTrainConfig,
    build_reward: RewardBuilder,
    out_dpath: Path,
    tag: str,
    num_episodes: int = 1,
    max_episode_steps: int | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    num_gifs: int = 1,
    with_random: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every game of `config` -> (summary rows per game and agent, one row per episode). Gifs go to
    out_dpath/<tag>_<game>[_random]_<i>.gif."""
    collection = config.collection
    max_steps = max_episode_steps or config.evaluation.num_steps
    rows, episode_rows = [], []
    for game in collection.games:
        env = evaluation_env(game, collection.image_size, collection.frame_skip)
        try:
            seeds = evaluation_seeds(game, seed, num_episodes)
            agents: dict[str, Policy] = {"trained": TrainedPolicy(model, temperature=temperature)}
            if with_random:
                agents["random"] = RandomPolicy(int(env.action_space.n))
            for agent, policy in agents.items():
                suffix = "" if agent == "trained" else f"_{agent}"
                gifs = [
                    out_dpath / f"{tag}_{game}{suffix}_{i}.gif" for i in range(min(num_gifs, num_episodes))
                ]
                episodes = play_scored_episodes(
                    env, policy, seeds, max_steps, build_reward(env.action_names), gifs
                )
                rows.append(summary(game, agent, episodes))
                episode_rows += [{"game": game, "agent": agent, "seed": s, "steps": e.length, "return": e.game_return,
                                  "reward_return": e.reward_return, "gif": e.gif}
                                 for s, e in zip(seeds, episodes, strict=True)]  # fmt: skip
        finally:
            env.close()
    return rows, episode_rows


def run_evaluation(
    settings: EvalConfig, build_reward_for: Callable[[AgentTrainConfig], RewardBuilder]
) -> dict:
    """`agent eval` / `auto_explore eval`: a run's checkpoint -> <run>/eval_<checkpoint>.json (and gifs
    under <run>/eval/). `build_reward_for(config)` gives the run's training reward source per game."""
    run_dpath = named_run_dpath(settings.run_dpath, settings.runs_dpath, settings.common.resume_id)
    if run_dpath is None:
        raise UserError("eval needs run_dpath=<the agent's run folder> (or common.resume_id=N)")
    name = settings.common.resume_ckpt_id or settings.checkpoint
    if name not in CHECKPOINT_NAMES:
        raise UserError(f"checkpoint must be one of {CHECKPOINT_NAMES} (got '{name}')")
    checkpoint_dpath = resolve_checkpoint(run_dpath / "checkpoints", name)
    if checkpoint_dpath is None:
        raise UserError(f"{run_dpath} has no checkpoint '{name}' (train longer, or choose checkpoint=last)")
    if settings.num_threads > 0:
        torch.set_num_threads(settings.num_threads)
    model, values = load_policy(checkpoint_dpath)
    config = parse_config(values)
    state = json.loads((checkpoint_dpath / "trainer_state.json").read_text())
    rows, episodes = evaluate_agent(model, config, build_reward_for(config), run_dpath / "eval", name,
                                    settings.num_episodes, settings.max_episode_steps, settings.temperature,
                                    settings.seed, settings.num_gifs, settings.with_random)  # fmt: skip
    result = {"checkpoint": name, "rows": rows, "episodes": episodes, "budget": training_budget(model, config, state),
              "settings": {"num_episodes": settings.num_episodes, "temperature": settings.temperature,
                           "seed": settings.seed, "max_episode_steps": settings.max_episode_steps}}  # fmt: skip
    atomic_write_json(run_dpath / f"eval_{name}.json", result)
    for row in rows:
        print(f"{row['game']} {row['agent']:>8}: mean return {row['mean_return']:.2f} ± {row['stderr']:.2f} over "
              f"{row['episodes']} held-out episodes, {row['success_pct']:.1f}% with a positive return, mean length "
              f"{row['mean_length']:.0f}, training-reward return {row['mean_reward_return']:.3f}")  # fmt: skip
    print(f"written: {run_dpath / f'eval_{name}.json'}, gifs in {run_dpath / 'eval'}")
    return result


def training_budget(model: ActorCritic, config: AgentTrainConfig, state: dict[str, Any]) -> dict[str, Any]:
    """What the evaluated checkpoint cost: for the record beside its figures."""
    collection = config.collection
    return {
        "epochs": state["epoch"], "env_steps": state["env_steps"], "train_wall_s": round(state["wall_s"]),
        "algorithm": config.actor_critic.algorithm, "agent_size": config.agent.size,
        "parameters": sum(p.numel() for p in model.parameters()), "image_size": collection.image_size,
        "num_envs": config.steps.num_envs, "train_levels": collection.levels, "games": collection.games,
        "reward": config.reward.type,
    }  # fmt: skip
