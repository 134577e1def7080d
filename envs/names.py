"""One game-name matcher for every source of names.

The same game is spelled three ways: RetroAct's main table ("SuperMarioBros-Nes"), its G-50 control
list ("supermariobros-nes") and stable-retro 1.0.1's integrations ("SuperMarioBros-Nes-v0"). They all
reduce to one key: lowercase, without stable-retro's "-vN" version suffix.
"""

from __future__ import annotations

import difflib
import functools
import re

from common.errors import UserError

_VERSION_SUFFIX = re.compile(r"-v\d+$")
COINRUN = "coinrun"
SYNTHETIC_BLOCK = "synthetic-block"  # envs/synthetic.py
SYNTHETIC_CUE = "synthetic-cue"  # envs/synthetic.py: a contextual bandit for agent tests
SYNTHETIC_ROOMS = "synthetic-rooms"  # envs/rooms.py: rooms behind narrow doors, made to test exploration
SYNTHETIC_GAMES = (SYNTHETIC_BLOCK, SYNTHETIC_CUE, SYNTHETIC_ROOMS)
NON_RETRO_GAMES = (COINRUN, *SYNTHETIC_GAMES)  # games that are not stable-retro integrations
# Any registered gymnasium env: `gymnasium:<env id>` on the command line ("gymnasium:ALE/Pong-v5"); stores and
# episode ids name it `gymnasium+<env id with + for />` ("gymnasium+ALE+Pong-v5"), a name that is a safe
# file name and maps back to the id (gymnasium ids hold at most one "/" and never a "+").
GYMNASIUM_PREFIX = "gymnasium:"
GYMNASIUM_STORE_PREFIX = "gymnasium+"


def gymnasium_env_id(name: str) -> str | None:
    """The gymnasium env id a game name holds ('gymnasium:ALE/Pong-v5' or 'gymnasium+ALE+Pong-v5' ->
    'ALE/Pong-v5'), None for a name of another kind of game."""
    for prefix in (GYMNASIUM_PREFIX, GYMNASIUM_STORE_PREFIX):
        if name.startswith(prefix):
            env_id = name[len(prefix) :]
            return env_id.replace("+", "/") if prefix == GYMNASIUM_STORE_PREFIX else env_id
    return None


def gymnasium_store_name(env_id: str) -> str:
    """'ALE/Pong-v5' -> 'gymnasium+ALE+Pong-v5': how stores, episode ids and seeds name a gymnasium env."""
    return GYMNASIUM_STORE_PREFIX + env_id.replace("/", "+")


def game_key(name: str) -> str:
    """'SuperMarioBros-Nes-v0' / 'supermariobros-nes' -> 'supermariobros-nes'."""
    return _VERSION_SUFFIX.sub("", name.strip()).lower()


def platform_of(name: str) -> str:
    """stable-retro platform of a game name: 'Airstriker-Genesis-v0' -> 'Genesis'."""
    return _VERSION_SUFFIX.sub("", name.strip()).rsplit("-", 1)[-1]


@functools.cache
def retro_integrations() -> dict[str, str]:
    """game_key -> stable-retro integration name, for every integration stable-retro knows."""
    import stable_retro.data

    return {game_key(name): name for name in stable_retro.data.list_games()}


def close_matches(name: str, candidates: list[str], count: int = 3) -> str:
    """A ' (did you mean: a, b?)' hint, or '' when nothing is close."""
    keys = {game_key(c): c for c in candidates}
    # Compare titles too: a user often omits the platform ("Pongg" for "Pong-Atari2600").
    titles = {key.rsplit("-", 1)[0]: key for key in keys}
    found = difflib.get_close_matches(game_key(name), list(keys), n=count, cutoff=0.6)
    found += [titles[t] for t in difflib.get_close_matches(game_key(name), list(titles), n=count, cutoff=0.6)]
    found = list(dict.fromkeys(found))[:count]
    return f" (did you mean: {', '.join(keys[k] for k in found)}?)" if found else ""


def resolve_retro_game(name: str) -> str:
    """Any spelling of a stable-retro game -> its integration name; unknown -> UserError with hints."""
    integrations = retro_integrations()
    key = game_key(name)
    if key in integrations:
        return integrations[key]
    hint = close_matches(name, list(integrations.values()))
    raise UserError(f"unknown game '{name}'{hint}; list games with `python run.py roms list`")
