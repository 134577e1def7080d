"""The one environment layer: `make_env(env_name, image_size, ...)` for stable-retro games, CoinRun and
the synthetic block game."""

from __future__ import annotations

from data_generation.envs.base import OBSERVATION_IS_RESET, GameEnv
from data_generation.names import COINRUN, SYNTHETIC_BLOCK


def make_env(
    env_name: str,
    image_size: int,
    frame_skip: int = 4,
    sticky_action_prob: float = 0.0,
    seed: int | None = None,
) -> GameEnv:
    """A GameEnv for a stable-retro game (any spelling: 'Pong-Atari2600', 'Pong-Atari2600-v0'),
    'coinrun' or 'synthetic-block'."""
    if env_name.lower() == COINRUN:
        from data_generation.envs.coinrun import CoinRunEnv

        return CoinRunEnv(image_size, frame_skip, sticky_action_prob, seed)
    if env_name.lower() == SYNTHETIC_BLOCK:
        from data_generation.envs.synthetic import BlockGameEnv

        return BlockGameEnv(image_size, frame_skip, sticky_action_prob, seed)
    from data_generation.envs.retro import RetroGameEnv

    return RetroGameEnv(env_name, image_size, frame_skip, sticky_action_prob, seed)


__all__ = ["OBSERVATION_IS_RESET", "GameEnv", "make_env"]
