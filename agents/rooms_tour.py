"""A scripted player of the rooms game (envs/rooms.py) that visits every region: the test set's player.

Each episode it draws a goal room uniformly from its rng, walks the shortest lava-free way there through
the doors, then wanders inside that room (random safe moves, the previous one kept with `repeat_prob`),
so over many episodes every room, door crossing and position is seen, which neither a random agent (it
rarely leaves room 0) nor a trained one (it goes where its reward is) records. It reads where it is off
the frame (`envs.rooms.locate`).
"""

from __future__ import annotations

import numpy as np

from agents.policy import Policy
from common.errors import UserError
from envs.rooms import CELLS, DOOR_ROW, LAVA, ROOMS, ROOMS_ACTIONS, locate, move, safe_path


class RoomsTourPolicy(Policy):
    uses_observation = True

    def __init__(self, num_actions: int, repeat_prob: float = 0.0) -> None:
        if num_actions != len(ROOMS_ACTIONS):
            raise UserError(
                f"variant=rooms_tour plays synthetic-rooms ({len(ROOMS_ACTIONS)} actions), "
                f"not a game with {num_actions}"
            )
        self.check_options(repeat_prob)
        self.repeat_prob = float(repeat_prob)
        self._goal: int | None = None
        self._previous: str | None = None

    @classmethod
    def check_options(cls, repeat_prob: float = 0.0) -> None:
        if not 0.0 <= repeat_prob < 1.0:
            raise UserError(f"agent.repeat_prob must be in [0, 1) (got {repeat_prob})")

    def reset(self) -> None:
        self._goal, self._previous = None, None

    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        # Every draw is made every step, so the rng stream does not depend on where the avatar is.
        goal, wander = int(rng.integers(ROOMS)), int(rng.integers(len(ROOMS_ACTIONS)))
        is_repeat = rng.random() < self.repeat_prob
        self._goal = goal if self._goal is None else self._goal
        room, row, col = locate(observation)
        if room < self._goal:
            path = safe_path(room, (row, col), (DOOR_ROW, CELLS - 1))
            return ROOMS_ACTIONS.index(path[0] if path else "RIGHT")  # at the door cell: step through
        safe = [
            name
            for name in ROOMS_ACTIONS
            if (target := move(room, row, col, name))[0] == room and target[1:] not in LAVA[room]
        ]
        if not safe:
            return wander
        if not (is_repeat and self._previous in safe):
            self._previous = safe[wander % len(safe)]
        return ROOMS_ACTIONS.index(self._previous)
