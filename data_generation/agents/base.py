"""The agent interface: a GameEnv's driver while recording (see the package docstring)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Agent(ABC):
    # False when `act` ignores the observation (the random agent): the recorder then gives it None
    # and resizes the episode's frames on the writer thread, off the emulator's critical path.
    uses_observation: bool = True

    @classmethod
    def check_options(cls, **options: object) -> None:
        """UserError for option values this agent cannot use. The generator calls it before any worker
        starts, with the config's `agent` options (names already matched to the constructor's)."""
        return  # no options to check: an agent with options overrides this

    @abstractmethod
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    @abstractmethod
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        """observation uint8 [S, S, 3] (None if not `uses_observation`) -> local action index."""
