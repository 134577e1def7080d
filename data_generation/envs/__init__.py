"""The one environment layer: `make_env(env_name, image_size, ...)` for stable-retro games, CoinRun and
the synthetic games; `make_vec_env(...)` for many episodes at once (actor-critic collection)."""

from __future__ import annotations

from data_generation.envs.base import OBSERVATION_IS_RESET, GameEnv
from data_generation.envs.vector import SerialVecEnv, VecEnv, VecStep
from data_generation.names import COINRUN, SYNTHETIC_BLOCK, SYNTHETIC_CUE


def make_env(
    env_name: str,
    image_size: int,
    frame_skip: int = 4,
    sticky_action_prob: float = 0.0,
    seed: int | None = None,
    levels: tuple[int, int] | None = None,
) -> GameEnv:
    """A GameEnv for a stable-retro game (any spelling: 'Pong-Atari2600', 'Pong-Atari2600-v0'),
    'coinrun', 'synthetic-block' or 'synthetic-cue'. `levels` = (start, count): CoinRun only, the
    level range episode seeds map into (data_generation/envs/coinrun.py LEVEL_RANGES)."""
    name = env_name.lower()
    if levels is not None and name != COINRUN:
        raise ValueError(f"levels= applies to coinrun only (got env {env_name!r})")
    if name == COINRUN:
        from data_generation.envs.coinrun import CoinRunEnv

        return CoinRunEnv(image_size, frame_skip, sticky_action_prob, seed, levels=levels)
    if name == SYNTHETIC_BLOCK:
        from data_generation.envs.synthetic import BlockGameEnv

        return BlockGameEnv(image_size, frame_skip, sticky_action_prob, seed)
    if name == SYNTHETIC_CUE:
        from data_generation.envs.synthetic import CueGameEnv

        return CueGameEnv(image_size, frame_skip, sticky_action_prob, seed)
    from data_generation.envs.retro import RetroGameEnv

    return RetroGameEnv(env_name, image_size, frame_skip, sticky_action_prob, seed)


def make_vec_env(
    env_name: str,
    num_envs: int,
    image_size: int,
    seed: int,
    frame_skip: int = 1,
    levels: tuple[int, int] | None = None,
    max_episode_steps: int | None = None,
) -> VecEnv:
    """`num_envs` episodes of one game stepped together. CoinRun uses procgen's native batch (levels
    drawn from `levels`, required; frame_skip 1, the game's native step); other games run as
    GameEnvs in this process."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
    if env_name.lower() == COINRUN:
        from data_generation.envs.coinrun import CoinRunVecEnv

        if frame_skip != 1:
            raise ValueError(f"CoinRun is stepped natively (frame_skip=1, got {frame_skip})")
        if levels is None:
            raise ValueError("a CoinRun VecEnv needs levels=[start, count] (see LEVEL_RANGES in coinrun.py)")
        return CoinRunVecEnv(num_envs, image_size, seed, levels)
    envs = [make_env(env_name, image_size, frame_skip, seed=seed + i) for i in range(num_envs)]
    return SerialVecEnv(envs, seed, max_episode_steps)


__all__ = ["OBSERVATION_IS_RESET", "GameEnv", "SerialVecEnv", "VecEnv", "VecStep", "make_env", "make_vec_env"]
