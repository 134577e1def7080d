"""The one named action vocabulary shared by every game (GenieRedux-G embeds actions by name).

Episodes store actions as ids into ACTION_VOCABULARY, so a model trained on many games sees one
action space: RIGHT means "the game's right" everywhere (RetroAct's control annotations).
"""

from __future__ import annotations

ACTION_VOCABULARY: tuple[str, ...] = (
    "NOOP",
    "RIGHT",
    "LEFT",
    "UP",
    "DOWN",
    "ACTION_PRIMARY",
    "UP_RIGHT",
    "UP_LEFT",
)

# Upstream RetroAct generation: 5 discrete actions, ACTION_PRIMARY mapped per platform.
RETRO_ACTIONS: tuple[str, ...] = ("RIGHT", "LEFT", "UP", "DOWN", "ACTION_PRIMARY")
# CoinRun: the original game's 7 actions (none, right, left, jump, right-jump, left-jump, down).
COINRUN_ACTIONS: tuple[str, ...] = ("NOOP", "RIGHT", "LEFT", "UP", "UP_RIGHT", "UP_LEFT", "DOWN")

NUM_ACTIONS = len(ACTION_VOCABULARY)


def action_id(name: str) -> int:
    """Vocabulary id of an action name (case-insensitive)."""
    upper = name.upper()
    if upper not in ACTION_VOCABULARY:
        raise ValueError(f"unknown action '{name}'; known: {', '.join(ACTION_VOCABULARY)}")
    return ACTION_VOCABULARY.index(upper)


def action_ids(names: tuple[str, ...] | list[str]) -> list[int]:
    return [action_id(n) for n in names]
