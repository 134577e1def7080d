"""RetroAct annotations (MIT, Savov et al.; see annotations/ATTRIBUTION.md): what each game is and
what its five RetroAct actions do.

Two tables ship in data_generation/annotations/: the main one (973 games: view, motion, genre,
camera, control meanings, blinking/delayed flags) and the 50-game control subset used for
GenieRedux-G-50, whose control meanings were annotated separately and take precedence for it.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from data.actions import RETRO_ACTIONS
from envs.names import game_key

ANNOTATIONS_DPATH = Path(__file__).resolve().parent / "annotations"
MAIN_CSV = ANNOTATIONS_DPATH / "RetroAct_v1.4.csv"
CONTROL_G50_CSV = ANNOTATIONS_DPATH / "RetroAct_v0.1_control_G50.csv"
NO_EFFECT = "none"  # the annotation for an action that does nothing in that game
# What GenieRedux-G-50's control games share (upstream's selection): the d-pad's horizontal keys move that
# way, the primary button jumps, UP climbs or does nothing, DOWN crouches, climbs or does nothing. Only
# then does one embedding per action name mean the same thing in every game.
ALIGNED_CONTROLS: dict[str, frozenset[str]] = {
    "RIGHT": frozenset({"right"}),
    "LEFT": frozenset({"left"}),
    "ACTION_PRIMARY": frozenset({"jump"}),
    "UP": frozenset({"climb", NO_EFFECT}),
    "DOWN": frozenset({NO_EFFECT, "crouch", "climb"}),
}


def has_aligned_controls(controls: dict[str, str]) -> bool:
    """True when every action's annotated meaning is one ALIGNED_CONTROLS allows (case-insensitive)."""
    return all(
        controls.get(action, "").strip().lower() in allowed for action, allowed in ALIGNED_CONTROLS.items()
    )


@dataclass(frozen=True)
class GameAnnotation:
    name: str  # RetroAct spelling, e.g. "SuperMarioBros-Nes"
    platform: str
    view: str  # side | top | 3p | 1p
    motion: str  # free | h | v | fixed
    genre: str  # pl, space_shooter, fight, ...
    camera: str
    controls: dict[str, str]  # RETRO_ACTIONS name -> what it does ("jump", "none", ...)
    is_blinking: bool  # sprites flicker between frames
    is_delayed: bool  # actions take effect several frames late
    g50_controls: dict[str, str] | None  # set for the 50 games of the control subset

    @property
    def key(self) -> str:
        return game_key(self.name)

    @property
    def is_g50(self) -> bool:
        return self.g50_controls is not None


def _yes(value: str) -> bool:
    return value.strip().upper() == "YES"


def _controls(row: dict[str, str]) -> dict[str, str]:
    return {action: row[action].strip() for action in RETRO_ACTIONS}


@functools.cache
def load_annotations() -> tuple[GameAnnotation, ...]:
    """Every RetroAct game, in the main table's order."""
    with open(CONTROL_G50_CSV, newline="") as handle:
        g50 = {game_key(row["game"]): _controls(row) for row in csv.DictReader(handle)}
    with open(MAIN_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(
        GameAnnotation(
            name=row["game"],
            platform=row["game"].rsplit("-", 1)[-1],
            view=row["view"],
            motion=row["motion"],
            genre=row["genre"],
            camera=row["camera"],
            controls=_controls(row),
            is_blinking=_yes(row["blinking"]),
            is_delayed=_yes(row["delayed"]),
            g50_controls=g50.get(game_key(row["game"])),
        )
        for row in rows
    )
