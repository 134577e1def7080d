"""A policy that plays one GameEnv step by step: the random agent and the trained actor-critic.

Recording (data_generation), coverage and evaluation all drive envs through this interface; all
randomness comes from the `rng` the caller passes in, seeded per episode, so an episode is a function
of its seed whichever process plays it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Policy(ABC):
    # False when `act` ignores the observation (the random agent): the recorder then gives it None
    # and resizes the episode's frames on the writer thread, off the emulator's critical path.
    uses_observation: bool = True

    @classmethod
    def check_options(cls, **options: object) -> None:
        """UserError for option values this policy cannot use; its parameters are the options it takes.
        The generator calls it before any worker starts, with the config's `agent` options (names
        already matched to the policy's)."""
        return  # no options to check: a policy with options overrides this

    @classmethod
    def from_options(cls, num_actions: int, **options: object) -> Policy:
        """The policy for a game with `num_actions` actions, built from checked options."""
        cls.check_options(**options)
        return cls(num_actions, **options)

    @abstractmethod
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    @abstractmethod
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        """observation uint8 [S, S, 3] (None if not `uses_observation`) -> local action index."""
