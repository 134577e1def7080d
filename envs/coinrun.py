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
from envs.base import OBSERVATION_IS_RESET, GameEnv
from envs.frames import FrameResizer, check_image_size
from envs.vector import VecEnv, VecStep

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
MAX_LEVEL = 2**31 - 1  # procgen level seeds are non-negative int32

# Disjoint procgen level ranges (start, count), so that no test level is ever trained on: the task agent
# trains on AGENT_TRAIN and is scored on AGENT_TEST; datasets are recorded on DATA_TRAIN / DATA_TEST.
LEVEL_RANGES: dict[str, tuple[int, int]] = {
    "agent_train": (0, 1_000_000),
    "agent_test": (1_000_000, 1_000_000),
    "data_train": (100_000_000, 900_000_000),
    "data_test": (1_000_000_000, 1_000_000_000),
}


def check_levels(levels: tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """Validate a (start, count) level range; None means procgen's own draw over all levels."""
    if levels is None:
        return None
    if len(levels) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in levels):
        raise ValueError(f"levels must be [start, count] integers (got {levels!r}); e.g. levels=[0,200]")
    start, count = int(levels[0]), int(levels[1])
    if start < 0 or count < 1 or start + count > MAX_LEVEL:
        raise ValueError(
            f"levels [start, count] must satisfy 0 <= start, 1 <= count, start + count <= 2^31-1 (got {levels!r})"
        )
    return start, count


def episode_level(seed: int, levels: tuple[int, int]) -> int:
    """The procgen level an episode seed plays when the env is limited to `levels` = (start, count)."""
    start, count = levels
    return start + seed % count


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
        levels: tuple[int, int] | None = None,
    ) -> None:
        """levels: (start, count) -> episode seed s plays level start + s % count (see LEVEL_RANGES);
        None -> procgen draws the level from the whole level space, seeded by s."""
        if distribution_mode not in DISTRIBUTION_MODES:
            raise ValueError(
                f"distribution_mode must be one of {DISTRIBUTION_MODES} (got {distribution_mode!r})"
            )
        super().__init__("coinrun", COINRUN_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        self.distribution_mode = distribution_mode
        self.levels = check_levels(levels)
        self.level: int | None = None  # the level being played, when `levels` is set
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
        # With a level range, the level is named outright (start_level=level, num_levels=1).
        start_level, num_levels = 0, 0
        if self.levels is not None:
            self.level = start_level = episode_level(seed, self.levels)
            num_levels = 1
        self._procgen = procgen_env_cls(
            num=1,
            env_name="coinrun",
            distribution_mode=self.distribution_mode,
            start_level=start_level,
            num_levels=num_levels,
            rand_seed=seed % MAX_LEVEL,
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

    def coverage_keys(self) -> dict[str, int]:
        return {} if self.level is None else {"level": self.level}

    def close(self) -> None:
        if self._procgen is not None:
            self._procgen.close()
            self._procgen = None


class CoinRunVecEnv(VecEnv):
    """`num_envs` CoinRun episodes in one procgen instance (its native batch), levels drawn by procgen
    from `levels` = (start, count) with its own generator seeded by `seed`; the 7 original actions.
    Episodes end at the coin, at death, or at procgen's time limit (1000 steps)."""

    def __init__(
        self,
        num_envs: int,
        image_size: int,
        seed: int,
        levels: tuple[int, int],
        distribution_mode: str = "easy",
    ) -> None:
        if distribution_mode not in DISTRIBUTION_MODES:
            raise ValueError(
                f"distribution_mode must be one of {DISTRIBUTION_MODES} (got {distribution_mode!r})"
            )
        start, count = check_levels(levels)
        self.num_envs = int(num_envs)
        self.action_names = COINRUN_ACTIONS
        self.image_size = check_image_size(image_size)
        self._resizers = [FrameResizer(self.image_size) for _ in range(self.num_envs)]
        self._procgen = _import_procgen()(
            num=self.num_envs,
            env_name="coinrun",
            distribution_mode=distribution_mode,
            start_level=start,
            num_levels=count,
            rand_seed=int(seed) % MAX_LEVEL,
            num_threads=0,  # the learner owns the cores; stepping is a small share of a step's cost
        )
        self._procgen_actions = procgen_action_indices(self._procgen.combos)

    def _observations(self, rgb: np.ndarray) -> np.ndarray:
        if self.image_size == 64:
            return rgb.copy()  # [N, 64, 64, 3]
        return np.stack([resize(frame) for resize, frame in zip(self._resizers, rgb, strict=True)])

    def reset(self) -> np.ndarray:
        """procgen starts every env on a fresh level when it is made; this returns those first frames."""
        _, observation, _ = self._procgen.observe()
        return self._observations(observation["rgb"])  # [N, S, S, 3]

    def step(self, actions: np.ndarray) -> VecStep:
        self._procgen.act(self._procgen_actions[np.asarray(actions, dtype=np.int64)])
        rewards, observation, firsts = self._procgen.observe()
        return VecStep(
            self._observations(observation["rgb"]), rewards.astype(np.float32), firsts.astype(bool)
        )

    def get_state(self) -> dict[str, Any]:
        return {"procgen": list(self._procgen.callmethod("get_state"))}  # bytes per env (~37 KB each)

    def set_state(self, state: dict[str, Any]) -> None:
        self._procgen.callmethod("set_state", list(state["procgen"]))

    def close(self) -> None:
        self._procgen.close()
