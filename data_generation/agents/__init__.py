"""Agents that drive a GameEnv while recording: `build_agent(variant, num_actions, options)`.

An agent picks a *local* action index (the env's Discrete(n)); the generator maps it to the shared
vocabulary through `env.action_ids`. All randomness comes from the `rng` the generator passes in,
which is seeded per episode, so a recording is reproducible whatever worker runs it.
`policy` plays a trained actor-critic checkpoint (agents/: the CoinRun task agent, AutoExplore);
`auto_explore` is the same agent under the paper's name (an `auto_explore train` run folder).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from common.errors import UserError
from data_generation.agents.base import Agent

# variant -> (module, class); imported on use: the policy agent needs torch (~1 s to import), which a
# random agent's recording (every generate worker process) does without
AGENTS: dict[str, tuple[str, str]] = {
    "random": ("data_generation.agents.random_agent", "RandomAgent"),
    "policy": ("data_generation.agents.policy_agent", "PolicyAgent"),
    "auto_explore": ("data_generation.agents.policy_agent", "PolicyAgent"),
}


def agent_class(variant: str) -> type[Agent]:
    if variant not in AGENTS:
        raise UserError(f"unknown variant (agent) '{variant}'; choose one of: {', '.join(AGENTS)}")
    module, name = AGENTS[variant]
    return getattr(importlib.import_module(module), name)


def check_agent(variant: str, options: dict[str, Any]) -> None:
    """The variant and its options, checked without building the agent (no game, no checkpoint loaded)."""
    cls = agent_class(variant)
    try:
        inspect.signature(cls).bind(0, **options)  # 0: num_actions, which only a game knows
    except TypeError as error:
        raise UserError(f"bad agent options {options} for variant '{variant}': {error}") from None
    cls.check_options(**options)


def build_agent(variant: str, num_actions: int, options: dict[str, Any]) -> Agent:
    """The agent registered as `variant`, built with `options` (the config's `agent` section)."""
    check_agent(variant, options)
    return agent_class(variant)(num_actions, **options)
