"""The one environment layer: `make_env(env_name, image_size, ...)` for stable-retro games, CoinRun, the
synthetic games and any registered gymnasium env (`gymnasium:<env id>`); `make_vec_env(...)` for many
episodes at once (actor-critic collection)."""

from __future__ import annotations

from envs.base import OBSERVATION_IS_RESET, GameEnv
from envs.names import (
    COINRUN,
    SYNTHETIC_BLOCK,
    SYNTHETIC_CUE,
    SYNTHETIC_GAMES,
    SYNTHETIC_ROOMS,
    gymnasium_env_id,
)
from envs.vector import ProcessVecEnv, SerialVecEnv, VecEnv, VecStep


def make_env(
    env_name: str,
    image_size: int,
    frame_skip: int = 4,
    sticky_action_prob: float = 0.0,
    seed: int | None = None,
    levels: tuple[int, int] | None = None,
    make_kwargs: dict | None = None,
    action_names: list[str] | tuple[str, ...] | None = None,
) -> GameEnv:
    """A GameEnv for a stable-retro game (any spelling: 'Pong-Atari2600', 'Pong-Atari2600-v0'),
    'coinrun', 'synthetic-block', 'synthetic-cue', 'synthetic-rooms' or a gymnasium env ('gymnasium:ALE/Pong-v5',
    or its store name 'gymnasium+ALE+Pong-v5'). `levels` = (start, count): CoinRun only, the level range
    episode seeds map into (envs/coinrun.py LEVEL_RANGES). `make_kwargs` (passed to gymnasium.make) and
    `action_names` (the env's actions as vocabulary names, for an env that names none): gymnasium only."""
    name = env_name.lower()
    if levels is not None and name != COINRUN:
        raise ValueError(f"levels= applies to coinrun only (got env {env_name!r})")
    gymnasium_id = gymnasium_env_id(env_name)
    if gymnasium_id is not None:
        from envs.gymnasium_env import GymnasiumEnv

        return GymnasiumEnv(
            gymnasium_id, image_size, frame_skip, sticky_action_prob, seed, make_kwargs, action_names
        )
    if make_kwargs or action_names is not None:
        raise ValueError(f"make_kwargs and action_names apply to gymnasium envs only (got env {env_name!r})")
    if name == COINRUN:
        from envs.coinrun import CoinRunEnv

        return CoinRunEnv(image_size, frame_skip, sticky_action_prob, seed, levels=levels)
    if name == SYNTHETIC_BLOCK:
        from envs.synthetic import BlockGameEnv

        return BlockGameEnv(image_size, frame_skip, sticky_action_prob, seed)
    if name == SYNTHETIC_CUE:
        from envs.synthetic import CueGameEnv

        return CueGameEnv(image_size, frame_skip, sticky_action_prob, seed)
    if name == SYNTHETIC_ROOMS:
        from envs.rooms import RoomsEnv

        return RoomsEnv(image_size, frame_skip, sticky_action_prob, seed)
    from envs.retro import RetroGameEnv

    return RetroGameEnv(env_name, image_size, frame_skip, sticky_action_prob, seed)


def make_vec_env(
    env_name: str | list[str],
    num_envs: int,
    image_size: int,
    seed: int,
    frame_skip: int = 1,
    levels: tuple[int, int] | None = None,
    max_episode_steps: int | None = None,
    use_processes: bool | None = None,
) -> VecEnv:
    """`num_envs` episodes stepped together; env i plays game i % len(games) of a list of games (same
    action set). CoinRun uses procgen's native batch (levels drawn from `levels`, required; frame_skip
    1, the game's native step); stable-retro games run one emulator per worker process
    (ProcessVecEnv); the synthetic games run in this process unless `use_processes`."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
    games = [env_name] if isinstance(env_name, str) else list(env_name)
    if not games:
        raise ValueError("make_vec_env needs at least one game")
    if any(game.lower() == COINRUN for game in games):
        from envs.coinrun import CoinRunVecEnv

        if len(games) > 1:
            raise ValueError("CoinRun's VecEnv plays CoinRun only (got games {games})")
        if frame_skip != 1:
            raise ValueError(f"CoinRun is stepped natively (frame_skip=1, got {frame_skip})")
        if levels is None:
            raise ValueError("a CoinRun VecEnv needs levels=[start, count] (see LEVEL_RANGES in coinrun.py)")
        return CoinRunVecEnv(num_envs, image_size, seed, levels)
    env_kwargs = [
        {
            "env_name": games[i % len(games)],
            "image_size": image_size,
            "frame_skip": frame_skip,
            "seed": seed + i,
        }
        for i in range(num_envs)
    ]
    retro_games = [g for g in games if g.lower() not in SYNTHETIC_GAMES and gymnasium_env_id(g) is None]
    if use_processes is None:  # emulators (stable-retro, ALE) step in workers, beside the learner
        use_processes = any(game.lower() not in SYNTHETIC_GAMES for game in games)
    if retro_games and not use_processes:
        raise ValueError("stable-retro allows one emulator per process: retro games need use_processes")
    if use_processes:
        if retro_games:  # fail here, with the import command, rather than in every worker
            from envs.names import resolve_retro_game
            from envs.retro import require_rom

            for game in retro_games:
                require_rom(resolve_retro_game(game))
        return ProcessVecEnv(make_env, env_kwargs, seed, max_episode_steps)
    return SerialVecEnv([make_env(**kwargs) for kwargs in env_kwargs], seed, max_episode_steps)


__all__ = [
    "OBSERVATION_IS_RESET",
    "GameEnv",
    "ProcessVecEnv",
    "SerialVecEnv",
    "VecEnv",
    "VecStep",
    "make_env",
    "make_vec_env",
]
