"""The random agent of the RetroAct and CoinRun datasets: uniform over the env's actions.

With `repeat_prob` > 0 it repeats its previous action with that probability instead of drawing a
new one, which gives longer runs of one action (a random walk that actually travels), at the cost
of a less uniform action distribution per frame. 0.0 (the default) is the upstream behaviour.
"""

from __future__ import annotations

import numpy as np

from agents.policy import Policy
from common.errors import UserError


class RandomPolicy(Policy):
    uses_observation = False

    def __init__(self, num_actions: int, repeat_prob: float = 0.0) -> None:
        self.check_options(repeat_prob=repeat_prob)
        self.num_actions = int(num_actions)
        self.repeat_prob = float(repeat_prob)
        self._previous: int | None = None

    @classmethod
    def check_options(cls, repeat_prob: float = 0.0) -> None:
        if not 0.0 <= repeat_prob < 1.0:
            raise UserError(
                f"agent.repeat_prob must be in [0, 1) (got {repeat_prob}); e.g. agent.repeat_prob=0.5"
            )

    def reset(self) -> None:
        self._previous = None

    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        # Draw the repeat coin only when it can matter, so repeat_prob=0 uses one draw per step.
        if self._previous is not None and self.repeat_prob > 0.0 and rng.random() < self.repeat_prob:
            return self._previous
        self._previous = int(rng.integers(self.num_actions))
        return self._previous
