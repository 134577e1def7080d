"""A synthetic game made to test exploration: a chain of rooms joined by narrow doors, with lava.

The world is ROOMS rooms in a row, each 8x8 cells of 4 px (one room fills the 32 px screen, as the camera
shows the room the avatar is in, like Montezuma's Revenge). Walls surround every room; a room's right
wall has a one-cell door at DOOR_ROW into the next room's left door, so leaving a room takes reaching
that row at the wall and stepping through. Every room has its own floor colour (and a stripe pattern of
its own), so rooms look different from each other. Lava cells end the episode when stepped on, so
surviving pays for an agent rewarded per step whatever it visits. RIGHT/LEFT/UP/DOWN move the white
avatar one cell (4 px) unless a wall is in the way. An episode starts in room 0 at a cell drawn from its
seed; nothing else is random. A random agent rarely gets out of room 0 before lava or the time limit.

Coverage keys: `region` (the room) and `region_position` (room, row, col), the measure of exploration.
"""

from __future__ import annotations

import numpy as np

from envs.base import GameEnv

ROOMS_GAME = "synthetic-rooms"
ROOMS_ACTIONS: tuple[str, ...] = ("RIGHT", "LEFT", "UP", "DOWN")
ROOMS_MOVES = {"RIGHT": (0, 1), "LEFT": (0, -1), "UP": (-1, 0), "DOWN": (1, 0)}  # (dy, dx) in cells
ROOMS = 6
CELLS = 8  # per room side; the border cells are walls
CELL_PX = 4
SCREEN_SIZE = CELLS * CELL_PX  # 32
DOOR_ROW = 4
START_CELLS = ((2, 2), (2, 3), (3, 2), (5, 2), (5, 3), (6, 2))  # room 0 cells an episode may start on
# lava cells (row, col) per room: every room has a lava-free path from its left door to its right door
LAVA = (
    ((3, 4), (5, 5), (2, 6), (6, 6)),
    ((2, 2), (5, 3), (3, 5), (6, 5)),
    ((3, 2), (2, 4), (5, 4), (6, 6)),
    ((5, 1), (2, 3), (6, 3), (3, 6)),
    ((2, 2), (3, 3), (5, 5), (6, 2)),
    ((3, 1), (5, 2), (2, 5), (6, 4)),
)
FLOOR_COLOURS = ((40, 60, 120), (30, 110, 60), (120, 90, 30), (100, 40, 110), (30, 100, 110), (110, 110, 40))
WALL_COLOUR, LAVA_COLOUR, AVATAR_COLOUR = (70, 70, 70), (240, 90, 20), (250, 250, 250)


def is_wall(room: int, row: int, col: int) -> bool:
    """Border cells are walls, except the doors: (DOOR_ROW, 7) to the next room and (DOOR_ROW, 0) back."""
    if row in (0, CELLS - 1):
        return True
    if col == CELLS - 1:
        return not (row == DOOR_ROW and room < ROOMS - 1)
    if col == 0:
        return not (row == DOOR_ROW and room > 0)
    return False


def move(room: int, row: int, col: int, action_name: str) -> tuple[int, int, int]:
    """The game's physics: (room, row, col) after `action_name` (stepping out of a door enters the next room)."""
    dy, dx = ROOMS_MOVES[action_name]
    row, col_next = row + dy, col + dx
    if col_next == CELLS:  # through the right door
        return room + 1, row, 0
    if col_next == -1:  # through the left door
        return room - 1, row, CELLS - 1
    if is_wall(room, row, col_next):
        return room, row - dy, col
    return room, row, col_next


def room_background(room: int) -> np.ndarray:
    """uint8 [32, 32, 3]: the room's floor (its own colour, with a diagonal stripe every room_index+2
    cells so rooms differ in pattern too), walls and lava."""
    floor = np.asarray(FLOOR_COLOURS[room], dtype=np.int16)
    cells = np.empty((CELLS, CELLS, 3), dtype=np.int16)
    rows, cols = np.meshgrid(np.arange(CELLS), np.arange(CELLS), indexing="ij")
    stripe = ((rows + cols) % (room + 2) == 0)[..., None]
    cells[:] = np.where(stripe, floor + 40, floor)
    for row in range(CELLS):
        for col in range(CELLS):
            if is_wall(room, row, col):
                cells[row, col] = WALL_COLOUR
    for row, col in LAVA[room]:
        cells[row, col] = LAVA_COLOUR
    return np.kron(cells.clip(0, 255).astype(np.uint8), np.ones((CELL_PX, CELL_PX, 1), dtype=np.uint8))


class RoomsEnv(GameEnv):
    """Discrete(4) over RIGHT, LEFT, UP, DOWN; the state is (room, row, col) of the avatar."""

    def __init__(self, image_size: int, frame_skip: int, sticky_action_prob: float, seed: int | None) -> None:
        super().__init__(ROOMS_GAME, ROOMS_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        self._backgrounds = [room_background(room) for room in range(ROOMS)]
        self._start_rng = np.random.default_rng(seed)
        self._state: tuple[int, int, int] | None = None

    def _restart(self, seed: int | None) -> None:
        rng = np.random.default_rng(seed) if seed is not None else self._start_rng
        row, col = START_CELLS[int(rng.integers(len(START_CELLS)))]
        self._state = (0, row, col)

    def _advance(self, action: int) -> tuple[float, bool]:
        self._state = move(*self._state, self.action_names[action])
        room, row, col = self._state
        return 0.0, (row, col) in LAVA[room]

    @property
    def state(self) -> tuple[int, int, int]:
        """(room, row, col) of the avatar."""
        return self._state

    def coverage_keys(self) -> dict[str, object]:
        return {"region": self._state[0], "region_position": self._state}

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return (SCREEN_SIZE, SCREEN_SIZE, 3)

    def _screen(self) -> np.ndarray:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        room, row, col = self._state
        screen = self._backgrounds[room].copy()
        screen[row * CELL_PX : (row + 1) * CELL_PX, col * CELL_PX : (col + 1) * CELL_PX] = AVATAR_COLOUR
        return screen

    def get_state(self) -> dict:
        """Everything the next steps depend on, as JSON-able data (for resumable training)."""
        return {"state": list(self._state), "start_rng": self._start_rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._state = tuple(state["state"])
        self._start_rng.bit_generator.state = state["start_rng"]


def safe_path(room: int, start: tuple[int, int], goal: tuple[int, int]) -> list[str]:
    """Actions of a shortest lava-free walk within `room` from cell `start` to `goal` (BFS); [] if none."""
    frontier, came_from = [start], {start: None}
    while frontier:
        cell = frontier.pop(0)
        if cell == goal:
            break
        for name in ROOMS_ACTIONS:
            next_room, row, col = move(room, *cell, name)
            if next_room == room and (row, col) not in LAVA[room] and (row, col) not in came_from:
                came_from[(row, col)] = (cell, name)
                frontier.append((row, col))
    if goal not in came_from:
        return []
    actions, cell = [], goal
    while came_from[cell] is not None:
        cell, name = came_from[cell]
        actions.append(name)
    return actions[::-1]


def locate(frame: np.ndarray) -> tuple[int, int, int]:
    """(room, row, col) read off a frame uint8 [S, S, 3] (any S): the avatar's cell, and the room whose
    floor colours (plain or striped) most interior cells show."""
    size = frame.shape[0]
    centres = ((np.arange(CELLS) + 0.5) * size / CELLS).astype(int)
    cells = frame[centres][:, centres].astype(np.int16)  # [8, 8, 3]: one pixel per cell
    row, col = np.unravel_index(cells.min(-1).argmax(), (CELLS, CELLS))  # the avatar: the whitest cell
    floors = np.asarray(FLOOR_COLOURS, dtype=np.int16)  # [R, 3]
    palette = np.concatenate([floors, (floors + 40).clip(0, 255)])  # [2R, 3]: plain, striped
    distance = np.abs(cells[1:-1, 1:-1, None] - palette).sum(-1)  # [6, 6, 2R]
    nearest = distance.argmin(-1) % ROOMS  # [6, 6]: the room each interior cell's colour belongs to
    is_floor = distance.min(-1) < 30  # lava, avatar and walls are far from every floor colour
    room = int(np.bincount(nearest[is_floor], minlength=ROOMS).argmax())
    return room, int(row), int(col)
