"""The one named action vocabulary shared by every game (GenieRedux-G embeds actions by name).

Episodes store actions as ids into ACTION_VOCABULARY, so a model trained on many games sees one
action space: RIGHT means "the game's right" everywhere (RetroAct's control annotations).

The vocabulary only ever grows at its end: a stored id and a trained model's action embedding (row i
is ACTION_VOCABULARY[i]) keep their meaning. The first FIRST_VOCABULARY_SIZE names are the ones the
stable-retro, CoinRun and synthetic games use; the rest came with gymnasium games (the Atari joystick's
diagonals and direction + fire combinations, a second action button).
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
    # appended for gymnasium games (ALE's 18 joystick actions, Taxi's second key)
    "DOWN_RIGHT",
    "DOWN_LEFT",
    "UP_ACTION_PRIMARY",
    "RIGHT_ACTION_PRIMARY",
    "LEFT_ACTION_PRIMARY",
    "DOWN_ACTION_PRIMARY",
    "UP_RIGHT_ACTION_PRIMARY",
    "UP_LEFT_ACTION_PRIMARY",
    "DOWN_RIGHT_ACTION_PRIMARY",
    "DOWN_LEFT_ACTION_PRIMARY",
    "ACTION_SECONDARY",
)
# The vocabulary's size before gymnasium games: what GenieRedux-G is built with unless its data needs more
# (models/config.py DynamicsConfig.num_actions), so models and stores made before keep their sizes.
FIRST_VOCABULARY_SIZE = 8

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


def vocabulary_size_for(action_names: set[str] | list[str] | tuple[str, ...]) -> int:
    """The action-embedding size a model needs for these names: FIRST_VOCABULARY_SIZE when they are all
    among the first names (as for every game before gymnasium's), else the whole vocabulary."""
    needed = max((action_id(name) + 1 for name in action_names), default=0)
    return FIRST_VOCABULARY_SIZE if needed <= FIRST_VOCABULARY_SIZE else NUM_ACTIONS
