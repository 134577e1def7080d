"""stable-retro games behind the 5-action RetroAct discretiser [RIGHT, LEFT, UP, DOWN, ACTION_PRIMARY].

Each local action presses exactly one button. RIGHT/LEFT/UP/DOWN are the d-pad; ACTION_PRIMARY is
the platform's main action button as chosen by the RetroAct authors (jump in most platformers).
The RetroAct control annotations say what each of these five does in each game, which is what lets
one action vocabulary mean the same thing across hundreds of games.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.errors import UserError
from data.actions import RETRO_ACTIONS
from envs.base import GameEnv
from envs.names import platform_of, resolve_retro_game

# Platform -> the stable-retro button name that ACTION_PRIMARY presses (upstream RetroAct facts).
PRIMARY_BUTTON: dict[str, str] = {
    "Nes": "A",
    "Snes": "B",
    "Genesis": "C",
    "Sms": "A",
    "GameBoy": "A",
    "32x": "B",
    "Atari2600": "BUTTON",
}
_DPAD = {"RIGHT": "RIGHT", "LEFT": "LEFT", "UP": "UP", "DOWN": "DOWN"}


def button_vectors(platform: str, buttons: list[str | None]) -> np.ndarray:
    """uint8 [len(RETRO_ACTIONS), len(buttons)]: row i is the button mask of local action i."""
    if platform not in PRIMARY_BUTTON:
        known = ", ".join(PRIMARY_BUTTON)
        raise UserError(f"platform '{platform}' has no ACTION_PRIMARY mapping; RetroAct covers: {known}")
    masks = np.zeros((len(RETRO_ACTIONS), len(buttons)), dtype=np.uint8)
    for row, action in enumerate(RETRO_ACTIONS):
        button = PRIMARY_BUTTON[platform] if action == "ACTION_PRIMARY" else _DPAD[action]
        masks[row, buttons.index(button)] = 1
    return masks


def import_command_hint() -> str:
    return "run `python run.py roms import` (bundled ROMs) or `python run.py roms import /path/to/your/roms`"


def require_rom(game: str) -> None:
    """UserError naming the import command when `game`'s ROM is not in stable-retro's data dir."""
    import stable_retro.data

    try:
        stable_retro.data.get_romfile_path(game)
    except FileNotFoundError:
        raise UserError(f"no ROM imported for '{game}'; {import_command_hint()}") from None


class RetroGameEnv(GameEnv):
    """One stable-retro emulator (stable-retro allows only one per process: close() before the next)."""

    def __init__(
        self, game: str, image_size: int, frame_skip: int, sticky_action_prob: float, seed: int | None
    ) -> None:
        import stable_retro

        game = resolve_retro_game(game)
        require_rom(game)
        super().__init__(game, RETRO_ACTIONS, image_size, frame_skip, sticky_action_prob, seed)
        # Actions.ALL: every button reaches the console. FILTERED would drop buttons a scenario file
        # does not list, while RetroAct annotated what the raw buttons do in the game.
        self._retro = stable_retro.make(
            game, render_mode=None, use_restricted_actions=stable_retro.Actions.ALL
        )
        self.platform = platform_of(game)
        self._button_masks = button_vectors(self.platform, list(self._retro.buttons))  # [5, num_buttons]
        # The emulator core and its RAM/reward glue, driven directly: RetroEnv.step would also copy
        # the screen, rotate it and build the info dict on every emulator frame, which frame skip
        # then throws away on all but the last (these cost about as much as emulating an Atari frame).
        self._core, self._game_data = self._retro.em, self._retro.data
        self._is_started = False

    def _restart(self, seed: int | None) -> None:
        # The emulator itself is deterministic (it starts from the integration's save state);
        # episode variety comes from the agent's and the sticky actions' seeded randomness.
        self._retro.reset()
        self._is_started = True

    def _advance(self, action: int) -> tuple[float, bool]:
        # The same calls, in the same order, as RetroEnv.step for one player with Actions.ALL.
        self._core.set_button_mask(self._button_masks[action], 0)
        self._core.step()
        self._game_data.update_ram()
        return float(self._game_data.current_reward()), bool(self._game_data.is_done())

    def _step_info(self) -> dict[str, Any]:
        return dict(self._game_data.lookup_all())

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return tuple(self._retro.observation_space.shape)  # cropped and rotated, as _screen returns

    def _screen(self) -> np.ndarray:
        if not self._is_started:
            raise RuntimeError("call reset() before step()")
        return self._retro.get_screen(apply_rotation=True)  # [H, W, 3], cropped and rotated as RetroEnv does

    def ram(self) -> np.ndarray:
        """The console's RAM now, uint8 [n]: the game's full state (distinct-state counts hash it)."""
        return self._retro.get_ram()

    def coverage_keys(self) -> dict[str, bytes]:
        return {"ram": self.ram().tobytes()}  # frame counters inside: agents/coverage.py masks them

    def close(self) -> None:
        if getattr(self, "_retro", None) is not None:
            # Drop every reference to the core, or it outlives close() and blocks the next make_env.
            self._core = self._game_data = None
            self._retro.close()
            self._retro = None
