"""Choose which stable-retro games to record: RetroAct filters, then ROM availability, then n_envs.

Filters run in a fixed order so an empty result can name the filter that emptied it. The order of
games is deterministic (sorted by name key), so `n_envs=k` always takes the same k games.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.errors import UserError
from data.actions import RETRO_ACTIONS
from data_generation.retroact import NO_EFFECT, GameAnnotation, has_aligned_controls, load_annotations
from envs.names import game_key, resolve_retro_game, retro_integrations
from envs.retro import import_command_hint

SUBSETS = ("all", "g50")


@dataclass(frozen=True)
class GameFilter:
    """Every criterion is optional (None / empty / False = keep all)."""

    genres: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    motions: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    subset: str = "all"  # "g50": only the 50-game GenieRedux-G control subset
    required_controls: tuple[str, ...] = ()  # actions whose annotation must not be 'none'
    aligned_controls: bool = False  # RIGHT=right, LEFT=left, ACTION_PRIMARY=jump, UP/DOWN climb|crouch|none
    exclude_blinking: bool = False
    exclude_delayed: bool = False
    n_envs: int | None = None  # keep the first n available games


@dataclass(frozen=True)
class Selection:
    selected: tuple[str, ...]  # stable-retro integration names, ready for make_env
    unavailable: tuple[str, ...]  # passed every filter but have no ROM imported here


def rom_available(integration: str) -> bool:
    import stable_retro.data

    try:
        stable_retro.data.get_romfile_path(integration)
    except FileNotFoundError:
        return False
    return True


def _controls_of(annotation: GameAnnotation, subset: str) -> dict[str, str]:
    return annotation.g50_controls if subset == "g50" and annotation.g50_controls else annotation.controls


def _check_filter(game_filter: GameFilter) -> None:
    if game_filter.subset not in SUBSETS:
        raise UserError(f"subset must be one of {', '.join(SUBSETS)} (got '{game_filter.subset}')")
    unknown = [c for c in game_filter.required_controls if c not in RETRO_ACTIONS]
    if unknown:
        raise UserError(
            f"required_controls has unknown action(s) {unknown}; choose from {list(RETRO_ACTIONS)}"
        )
    if game_filter.n_envs is not None and game_filter.n_envs < 1:
        raise UserError(f"n_envs must be >= 1 or null (got {game_filter.n_envs})")


def _stages(f: GameFilter) -> list[tuple[str, Callable[[GameAnnotation], bool]]]:
    """(description for error messages, keep-predicate), in application order."""
    stages: list[tuple[str, Callable[[GameAnnotation], bool]]] = []
    for label, values, field in (
        ("genre", f.genres, "genre"),
        ("view", f.views, "view"),
        ("motion", f.motions, "motion"),
        ("platform", f.platforms, "platform"),
    ):
        if values:
            stages.append((f"{label}={list(values)}", lambda a, v=values, k=field: getattr(a, k) in v))
    if f.subset == "g50":
        stages.append(("subset=g50", lambda a: a.is_g50))
    if f.required_controls:
        stages.append(
            (
                f"required_controls={list(f.required_controls)}",
                lambda a: all(_controls_of(a, f.subset)[c] != NO_EFFECT for c in f.required_controls),
            )
        )
    if f.aligned_controls:
        stages.append(("aligned_controls=true", lambda a: has_aligned_controls(_controls_of(a, f.subset))))
    if f.exclude_blinking:
        stages.append(("exclude_blinking=true", lambda a: not a.is_blinking))
    if f.exclude_delayed:
        stages.append(("exclude_delayed=true", lambda a: not a.is_delayed))
    return stages


def select_games(game_filter: GameFilter, is_available: Callable[[str], bool] = rom_available) -> Selection:
    """Apply the filters to every RetroAct game; UserError naming the filter that left nothing."""
    _check_filter(game_filter)
    candidates = sorted(load_annotations(), key=lambda a: a.key)
    for description, keep in _stages(game_filter):
        kept = [a for a in candidates if keep(a)]
        if not kept:
            raise UserError(
                f"no RetroAct game is left after {description} ({len(candidates)} before it); loosen that filter"
            )
        candidates = kept
    integrations = retro_integrations()
    names = [integrations.get(a.key, a.name) for a in candidates]
    return _split_available(names, game_filter.n_envs, is_available)


def select_named_games(
    names: list[str], n_envs: int | None = None, is_available: Callable[[str], bool] = rom_available
) -> Selection:
    """Explicitly named games (any spelling, any stable-retro game): no annotation filters apply."""
    resolved = list(dict.fromkeys(resolve_retro_game(name) for name in names))
    return _split_available(sorted(resolved, key=game_key), n_envs, is_available)


def _split_available(names: list[str], n_envs: int | None, is_available: Callable[[str], bool]) -> Selection:
    known = set(retro_integrations().values())
    available = [n for n in names if n in known and is_available(n)]
    unavailable = [n for n in names if n not in available]
    if not available:
        raise UserError(
            f"none of the {len(names)} selected games has a ROM imported; {import_command_hint()}"
        )
    return Selection(tuple(available[:n_envs] if n_envs else available), tuple(unavailable))
