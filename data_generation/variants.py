"""Who plays while a game is recorded: `build_policy(variant, num_actions, options)`.

A policy picks a *local* action index (the env's Discrete(n)); the generator maps it to the shared
vocabulary through `env.action_ids`. All randomness comes from the `rng` the generator passes in,
which is seeded per episode, so a recording is reproducible whatever worker runs it.
`random` is the datasets' random agent; `policy` plays a trained actor-critic checkpoint (the CoinRun
task agent); `auto_explore` is the same under the paper's name (an `auto_explore train` run folder);
`rooms_tour` is the scripted player of the rooms game that visits every room (its test sets).
"""

from __future__ import annotations

import inspect
from typing import Any

from agents.policy import Policy
from common.errors import UserError

VARIANTS = ("random", "policy", "auto_explore", "rooms_tour")
# the config's `agent:` keys keep the papers' names; the policies' arguments say what they hold
CONFIG_KEY_ARGUMENTS = {"gamma": "random_action_prob"}


def policy_class(variant: str) -> type[Policy]:
    """The Policy class `variant` names (its `check_options` parameters are the options it takes)."""
    if variant not in VARIANTS:
        raise UserError(f"unknown variant (agent) '{variant}'; choose one of: {', '.join(VARIANTS)}")
    if variant == "random":
        from agents.random_policy import RandomPolicy

        return RandomPolicy
    if variant == "rooms_tour":
        from agents.rooms_tour import RoomsTourPolicy

        return RoomsTourPolicy
    # imported on use: the trained policy needs torch (~1 s to import), which a random agent's
    # recording (every generate worker process) does without
    from agents.trained_policy import TrainedPolicy

    return TrainedPolicy


def policy_arguments(variant: str, options: dict[str, Any]) -> dict[str, Any]:
    """The config's `agent` options as the policy's arguments, checked without building it (no game,
    no checkpoint loaded): names first, then values."""
    cls = policy_class(variant)
    arguments = {CONFIG_KEY_ARGUMENTS.get(key, key): value for key, value in options.items()}
    try:
        inspect.signature(cls.check_options).bind(**arguments)
    except TypeError as error:
        raise UserError(f"bad agent options {options} for variant '{variant}': {error}") from None
    cls.check_options(**arguments)
    return arguments


def build_policy(variant: str, num_actions: int, options: dict[str, Any]) -> Policy:
    """The policy `variant` names, built from `options` (the generate config's `agent` section)."""
    return policy_class(variant).from_options(num_actions, **policy_arguments(variant, options))
