"""CoinRun (procgen) with the original game's 7 actions, as in the NeurIPS GenieRedux case study.

procgen exposes 15 actions (9 d-pad combinations and 6 keys CoinRun ignores). The original CoinRun
had 7: none, right, left, jump, right-jump, left-jump, down. Keeping those 7 keeps the action
distribution of a random agent (and the data) as in the study: with 15, a random agent would press
an inert key 40 % of the time.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from data.actions import COINRUN_ACTIONS
from data_generation.envs.base import OBSERVATION_IS_RESET, GameEnv

# Our vocabulary name -> the set of procgen key names that action holds down.
_PROCGEN_KEYS: dict[str, frozenset[str]] = {
    "NOOP": frozenset(),
    "RIGHT": frozenset({"RIGHT"}),
    "LEFT": frozenset({"LEFT"}),
    "UP": frozenset({"UP"}),
    "UP_RIGHT": frozenset({"RIGHT", "UP"}),
    "UP_LEFT": frozenset({"LEFT", "UP"}),
    "DOWN": frozenset({"DOWN"}),
}
DISTRIBUTION_MODES = ("easy", "hard")


def procgen_action_indices(combos: list[tuple[str, ...]]) -> np.ndarray:
    """int64 [7]: procgen action index of each COINRUN_ACTIONS entry, found by key set."""
    index_of = {frozenset(combo): i for i, combo in enumerate(combos)}
    return np.asarray([index_of[_PROCGEN_KEYS[name]] for name in COINRUN_ACTIONS], dtype=np.int64)


def _import_procgen() -> type:
    # procgen imports the unmaintained `gym`, which prints a deprecation banner to stderr on import.
    with contextlib.redirect_stderr(io.StringIO()):
        from procgen import ProcgenGym3Env
    return ProcgenGym3Env


class CoinRunEnv(GameEnv):
    """One procgen CoinRun instance; each episode is a level chosen by the episode seed."""

    def __init__(
        self,
        image_size: int,
        frame_skip: int,
        sticky_action_prob: float,
        seed: int | None,
        distribution_mode: str = "easy",
    ) -> None:
        if distribution_mode not in DISTRIBUTION_MODES:
            raise ValueError(
                f"distribution_mode must be one of {DISTRIBUTION_MODES} (got {distribution_mode!r})"
            )
        super().__init__("coinrun", COINRUN_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        self.distribution_mode = distribution_mode
        self._level_rng = np.random.default_rng(seed)
        self._procgen = None
        self._procgen_actions: np.ndarray | None = None
        self._frame: np.ndarray | None = None
        self._info: dict[str, Any] = {}

    def _restart(self, seed: int | None) -> None:
        procgen_env_cls = _import_procgen()
        if seed is None:  # no episode seed: draw one from the env's own seeded stream
            seed = int(self._level_rng.integers(2**31 - 1))
        if self._procgen is not None:
            self._procgen.close()
        # rand_seed fixes procgen's level generator; num_levels=0 lets it pick any level from that
        # seed, so the same episode seed always gives the same level (creating an env takes ~2 ms).
        self._procgen = procgen_env_cls(
            num=1,
            env_name="coinrun",
            distribution_mode=self.distribution_mode,
            start_level=0,
            num_levels=0,
            rand_seed=seed % (2**31 - 1),
            # Step in the calling thread: procgen's default pool of 4 threads only pays with many
            # envs per instance; for one env the hand-off cost a third of each step (measured:
            # 24k steps/s with the pool, 37k without). The game is the same either way.
            num_threads=0,
        )
        self._procgen_actions = procgen_action_indices(self._procgen.combos)
        _, observation, _ = self._procgen.observe()
        self._frame = observation["rgb"][0]  # [64, 64, 3]
        self._info = {}

    def _advance(self, action: int) -> tuple[float, bool]:
        self._procgen.act(self._procgen_actions[action : action + 1])
        reward, observation, first = self._procgen.observe()
        self._frame = observation["rgb"][0]  # [64, 64, 3]
        if bool(first[0]):
            level_info = self._procgen.get_info()[0]
            self._info = {
                OBSERVATION_IS_RESET: True,
                "level_complete": bool(level_info["prev_level_complete"]),
            }
            return float(reward[0]), True
        self._info = {}
        return float(reward[0]), False

    def _step_info(self) -> dict[str, Any]:
        return self._info

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return (64, 64, 3)  # procgen renders every game at 64x64

    def _screen(self) -> np.ndarray:
        if self._frame is None:
            raise RuntimeError("call reset() before step()")
        return self._frame

    def close(self) -> None:
        if self._procgen is not None:
            self._procgen.close()
            self._procgen = None
