"""Agents that drive a GameEnv while recording: `build_agent(variant, num_actions, options)`.

An agent picks a *local* action index (the env's Discrete(n)); the generator maps it to the shared
vocabulary through `env.action_ids`. All randomness comes from the `rng` the generator passes in,
which is seeded per episode, so a recording is reproducible whatever worker runs it.
`policy` plays a trained actor-critic checkpoint (agents/: the CoinRun task agent, AutoExplore).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from common.errors import UserError


class Agent(ABC):
    # False when `act` ignores the observation (the random agent): the recorder then gives it None
    # and resizes the episode's frames on the writer thread, off the emulator's critical path.
    uses_observation: bool = True

    @abstractmethod
    def reset(self) -> None:
        """Forget everything about the previous episode."""

    @abstractmethod
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        """observation uint8 [S, S, 3] (None if not `uses_observation`) -> local action index."""


def _registry() -> dict[str, type[Agent]]:
    from data_generation.agents.policy_agent import PolicyAgent
    from data_generation.agents.random_agent import RandomAgent

    return {"random": RandomAgent, "policy": PolicyAgent}


def build_agent(variant: str, num_actions: int, options: dict[str, Any]) -> Agent:
    """The agent registered as `variant`, built with `options` (the config's `agent` section)."""
    registry = _registry()
    if variant not in registry:
        raise UserError(f"unknown variant (agent) '{variant}'; choose one of: {', '.join(registry)}")
    try:
        return registry[variant](num_actions, **options)
    except TypeError as error:
        raise UserError(f"bad agent options {options} for variant '{variant}': {error}") from None
