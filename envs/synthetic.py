"""A synthetic game in which the action is the only thing that moves: the controllability check.

A fixed striped background and one 8x8 block; RIGHT/LEFT/UP/DOWN move the block by 4 px (stopping
at the border) and NOOP leaves it still. Nothing else changes, so a world model that does not follow
its actions cannot predict this game beyond "the block stays where it was", and one that does can
predict it exactly. Native screen 32x32 on a 4 px grid: at patch 4 the block covers 2x2 patches and
moves one patch per step. The episode seed picks the block's start cell.
"""

from __future__ import annotations

import numpy as np

from envs.base import GameEnv

BLOCK_GAME = "synthetic-block"
BLOCK_ACTIONS: tuple[str, ...] = ("NOOP", "RIGHT", "LEFT", "UP", "DOWN")
BLOCK_MOVES = {"NOOP": (0, 0), "RIGHT": (0, 1), "LEFT": (0, -1), "UP": (-1, 0), "DOWN": (1, 0)}  # (dy, dx)
SCREEN_SIZE = 32
BLOCK_SIZE = 8
STEP_PX = 4
BLOCK_COLOUR = (230, 40, 40)
STRIPE_COLOURS = ((30, 60, 110), (70, 90, 40))


def block_background() -> np.ndarray:
    """uint8 [32, 32, 3]: vertical stripes 4 px wide, alternating two dark colours."""
    columns = (np.arange(SCREEN_SIZE) // STEP_PX) % 2  # [32] stripe index per column
    stripes = np.asarray(STRIPE_COLOURS, dtype=np.uint8)[columns]  # [32, 3]
    return np.broadcast_to(stripes[None], (SCREEN_SIZE, SCREEN_SIZE, 3)).copy()


def move_block(position: tuple[int, int], action_name: str) -> tuple[int, int]:
    """The game's whole physics: (row, col) of the block's top-left corner after `action_name`."""
    dy, dx = BLOCK_MOVES[action_name]
    limit = SCREEN_SIZE - BLOCK_SIZE
    row, col = position
    return min(max(row + dy * STEP_PX, 0), limit), min(max(col + dx * STEP_PX, 0), limit)


def find_block(frames: np.ndarray, tolerance: int = 60) -> np.ndarray:
    """Block centres in native pixels, float [..., 2] (row, col); NaN where no block-coloured pixel is seen.

    frames uint8 [..., S, S, 3] at any size S (coordinates are rescaled to the 32 px screen). A pixel is
    the block's when every channel is within `tolerance` of BLOCK_COLOUR (the stripes are far from it).
    """
    size = frames.shape[-2]
    distance = np.abs(frames.astype(np.int16) - np.asarray(BLOCK_COLOUR, dtype=np.int16)).max(
        -1
    )  # [..., S, S]
    is_block = distance <= tolerance
    count = is_block.sum((-2, -1))  # [...]
    coords = (np.arange(size) + 0.5) * SCREEN_SIZE / size  # pixel centres in native px
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = (is_block * coords[:, None]).sum((-2, -1)) / count
        cols = (is_block * coords[None, :]).sum((-2, -1)) / count
    return np.stack([rows, cols], axis=-1)


class BlockGameEnv(GameEnv):
    """Discrete(5) over NOOP, RIGHT, LEFT, UP, DOWN; the block's top-left corner is (row, col) in px."""

    def __init__(self, image_size: int, frame_skip: int, sticky_action_prob: float, seed: int | None) -> None:
        super().__init__(BLOCK_GAME, BLOCK_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        self._background = block_background()
        self._start_rng = np.random.default_rng(seed)
        self._position: tuple[int, int] | None = None

    def _restart(self, seed: int | None) -> None:
        rng = np.random.default_rng(seed) if seed is not None else self._start_rng
        num_cells = (SCREEN_SIZE - BLOCK_SIZE) // STEP_PX + 1  # 7 start cells per axis
        row, col = rng.integers(num_cells, size=2)
        self._position = (int(row) * STEP_PX, int(col) * STEP_PX)

    def _advance(self, action: int) -> tuple[float, bool]:
        self._position = move_block(self._position, self.action_names[action])
        return 0.0, False

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return (SCREEN_SIZE, SCREEN_SIZE, 3)

    def _screen(self) -> np.ndarray:
        if self._position is None:
            raise RuntimeError("call reset() before step()")
        screen = self._background.copy()
        row, col = self._position
        screen[row : row + BLOCK_SIZE, col : col + BLOCK_SIZE] = BLOCK_COLOUR
        return screen

    def coverage_keys(self) -> dict[str, tuple[int, int]]:
        return {"position": self._position}  # the block's top-left corner: the game's whole state


CUE_GAME = "synthetic-cue"
CUE_ACTIONS: tuple[str, ...] = ("NOOP", "RIGHT", "LEFT")
CUE_EPISODE_STEPS = 16
CUE_COLOUR = (240, 220, 60)


class CueGameEnv(GameEnv):
    """A contextual bandit for testing learners: each step one half of the screen is lit, and the action
    pointing at it (LEFT or RIGHT) earns 1; anything else earns 0. A new side is drawn every step from
    the episode's seed; episodes last 16 steps, so a uniform random policy returns 16/3 and the best 16.
    """

    def __init__(self, image_size: int, frame_skip: int, sticky_action_prob: float, seed: int | None) -> None:
        super().__init__(CUE_GAME, CUE_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        self._episode_rng = np.random.default_rng(seed)
        self._is_left: bool | None = None
        self._num_steps = 0

    def _restart(self, seed: int | None) -> None:
        if seed is not None:
            self._episode_rng = np.random.default_rng(seed)
        self._num_steps = 0
        self._is_left = bool(self._episode_rng.integers(2))

    def _advance(self, action: int) -> tuple[float, bool]:
        rewarded = "LEFT" if self._is_left else "RIGHT"
        reward = float(self.action_names[action] == rewarded)
        self._num_steps += 1
        self._is_left = bool(self._episode_rng.integers(2))
        return reward, self._num_steps >= CUE_EPISODE_STEPS

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return (SCREEN_SIZE, SCREEN_SIZE, 3)

    def _screen(self) -> np.ndarray:
        if self._is_left is None:
            raise RuntimeError("call reset() before step()")
        screen = np.zeros((SCREEN_SIZE, SCREEN_SIZE, 3), dtype=np.uint8)
        half = SCREEN_SIZE // 2
        columns = slice(0, half) if self._is_left else slice(half, SCREEN_SIZE)
        screen[:, columns] = CUE_COLOUR
        return screen

    def get_state(self) -> dict:
        """Everything the next steps depend on, as JSON-able data (for resumable training)."""
        return {
            "rng": self._episode_rng.bit_generator.state,
            "is_left": self._is_left,
            "num_steps": self._num_steps,
        }

    def set_state(self, state: dict) -> None:
        self._episode_rng.bit_generator.state = state["rng"]
        self._is_left, self._num_steps = state["is_left"], state["num_steps"]
