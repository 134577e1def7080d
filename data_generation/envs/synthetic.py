"""A synthetic game in which the action is the only thing that moves: the controllability check.

A fixed striped background and one 8x8 block; RIGHT/LEFT/UP/DOWN move the block by 4 px (stopping
at the border) and NOOP leaves it still. Nothing else changes, so a world model that does not follow
its actions cannot predict this game beyond "the block stays where it was", and one that does can
predict it exactly. Native screen 32x32 on a 4 px grid: at patch 4 the block covers 2x2 patches and
moves one patch per step. The episode seed picks the block's start cell.
"""

from __future__ import annotations

import numpy as np

from data_generation.envs.base import GameEnv

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
        dy, dx = BLOCK_MOVES[self.action_names[action]]
        limit = SCREEN_SIZE - BLOCK_SIZE
        row, col = self._position
        self._position = (min(max(row + dy * STEP_PX, 0), limit), min(max(col + dx * STEP_PX, 0), limit))
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

    @property
    def block_position(self) -> tuple[int, int]:
        """(row, col) of the block's top-left corner in native pixels."""
        return self._position
