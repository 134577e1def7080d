"""What plays a GameEnv while it is recorded: `build_driver(variant, num_actions, options)`.

A driver picks a *local* action index (the env's Discrete(n)); the generator maps it to the shared
vocabulary through `env.action_ids`. All randomness comes from the `rng` the generator passes in,
which is seeded per episode, so a recording is reproducible whatever worker runs it.
`random` is the datasets' random agent; `policy` plays a trained actor-critic checkpoint (agents/:
the CoinRun task agent); `auto_explore` is the same driver under the paper's name (an
`auto_explore train` run folder).
"""

from __future__ import annotations

import importlib
from typing import Any

from common.errors import UserError
from data_generation.drivers.base import Driver

# variant -> (module, class); imported on use: the policy driver needs torch (~1 s to import), which a
# random agent's recording (every generate worker process) does without
DRIVERS: dict[str, tuple[str, str]] = {
    "random": ("data_generation.drivers.random_driver", "RandomDriver"),
    "policy": ("data_generation.drivers.policy_driver", "PolicyDriver"),
    "auto_explore": ("data_generation.drivers.policy_driver", "PolicyDriver"),
}
# the config's `agent:` keys keep the papers' names; the drivers' arguments say what they hold
CONFIG_KEY_ARGUMENTS = {"gamma": "random_action_prob"}


def driver_class(variant: str) -> type[Driver]:
    if variant not in DRIVERS:
        raise UserError(f"unknown variant (agent) '{variant}'; choose one of: {', '.join(DRIVERS)}")
    module, name = DRIVERS[variant]
    return getattr(importlib.import_module(module), name)


def build_driver(variant: str, num_actions: int, options: dict[str, Any]) -> Driver:
    """The driver registered as `variant`, built from `options` (the generate config's `agent` section)."""
    cls = driver_class(variant)
    arguments = {CONFIG_KEY_ARGUMENTS.get(key, key): value for key, value in options.items()}
    try:
        return cls(num_actions, **arguments)
    except TypeError as error:
        raise UserError(f"bad agent options {options} for variant '{variant}': {error}") from None
