"""The driver interface: what plays a GameEnv while it is recorded (see the package docstring)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Driver(ABC):
    # False when `act` ignores the observation (the random agent): the recorder then gives it None
    # and resizes the episode's frames on the writer thread, off the emulator's critical path.
    uses_observation: bool = True

    @abstractmethod
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    @abstractmethod
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        """observation uint8 [S, S, 3] (None if not `uses_observation`) -> local action index."""
