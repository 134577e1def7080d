"""GameEnv: the one gymnasium interface every game is played through (generator and AutoExplore).

A subclass wraps one emulator and says how to (re)start it, how to advance it by one emulator
frame under a local action, and how to read its screen. This base class owns everything that must
be identical across games: frame skip with summed rewards, sticky actions, seeding, and the
pad-to-square + area-resize of observations.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np

from data.actions import action_ids
from envs.frames import FrameResizer, check_image_size

# Set in a step's info when the episode ended and the returned observation already belongs to the
# next episode (procgen resets itself and never shows the final frame): recorders drop that step.
OBSERVATION_IS_RESET = "observation_is_reset"


class GameEnv(gym.Env):
    """Discrete(n) actions over `action_names`; observations uint8 [image_size, image_size, 3]."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        env_name: str,
        action_names: tuple[str, ...],
        image_size: int,
        frame_skip: int,
        sticky_action_prob: float,
        seed: int | None,
    ) -> None:
        super().__init__()
        if not isinstance(frame_skip, int) or isinstance(frame_skip, bool) or frame_skip < 1:
            raise ValueError(f"frame_skip must be an integer >= 1 (got {frame_skip!r})")
        if not 0.0 <= sticky_action_prob < 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1) (got {sticky_action_prob!r})")
        self.env_name = env_name
        self.image_size = check_image_size(image_size)
        self._resize = FrameResizer(self.image_size)
        self.frame_skip = frame_skip
        self.sticky_action_prob = float(sticky_action_prob)
        self.action_names: tuple[str, ...] = tuple(action_names)
        self.action_ids: np.ndarray = np.asarray(action_ids(self.action_names), dtype=np.int64)
        self.action_space = gym.spaces.Discrete(len(self.action_names))
        self.observation_space = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8)
        self._sticky_rng = np.random.default_rng(seed)
        self._base_seed = seed
        self._previous_action: int | None = None

    # -- what a game provides -------------------------------------------------------------------
    @abstractmethod
    def _restart(self, seed: int | None) -> None:
        """Put the emulator at the start of a new episode (seed: the episode's seed, if given)."""

    @abstractmethod
    def _advance(self, action: int) -> tuple[float, bool]:
        """One emulator frame under local `action` -> (reward, terminated).

        Called `frame_skip` times per step; only the last frame's screen and info are read, so a
        game should not read either here (reading them every frame was most of the wrapper's cost).
        """

    def _step_info(self) -> dict[str, Any]:
        """The info dict of the step that just ended (read once per step, after its last frame)."""
        return {}

    @abstractmethod
    def _screen(self) -> np.ndarray:
        """The current native screen, uint8 [H, W, 3]."""

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._sticky_rng = np.random.default_rng(seed)
        self._previous_action = None
        self._restart(seed)
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Repeat `action` for `frame_skip` emulator frames, summing rewards (gymnasium's step)."""
        reward, terminated, info = self.advance(action)
        return self._observation(), reward, terminated, False, info

    def advance(self, action: int) -> tuple[float, bool, dict[str, Any]]:
        """`step` without making the observation -> (reward, terminated, info); `screen()` reads it.

        With sticky actions (Machado et al. 2018), each emulator frame keeps the previously executed
        action with probability `sticky_action_prob`, so a fixed action sequence does not replay
        the same trajectory. The draw comes from the env's own seeded generator.
        """
        action = int(action)
        if not 0 <= action < len(self.action_names):
            raise ValueError(f"action {action} is outside Discrete({len(self.action_names)})")
        total_reward, terminated = 0.0, False
        is_sticky = self.sticky_action_prob > 0.0
        for _ in range(self.frame_skip):
            executed = action
            if (
                is_sticky
                and self._previous_action is not None
                and self._sticky_rng.random() < self.sticky_action_prob
            ):
                executed = self._previous_action
            self._previous_action = executed
            reward, terminated = self._advance(executed)
            total_reward += reward
            if terminated:
                break
        return total_reward, terminated, self._step_info()

    def coverage_keys(self) -> dict[str, Any]:
        """What identifies the game's state now beyond its screen, for coverage counts: name -> a hashable
        (CoinRun: its level; stable-retro games: the RAM bytes). {} when the game offers nothing more."""
        return {}

    def screen(self) -> np.ndarray:
        """The native screen now, uint8 [H, W, 3] of `screen_shape`; `resize_screen` makes it an observation."""
        return self._screen()

    def resize_screen(self, screen: np.ndarray) -> np.ndarray:
        """Native screen [H, W, 3] -> observation [S, S, 3]: what `step` returns for that screen."""
        return self._resize(screen)

    @property
    @abstractmethod
    def screen_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of the native screen."""

    def _observation(self) -> np.ndarray:
        return self._resize(self._screen())  # [S, S, 3] uint8
