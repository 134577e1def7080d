"""Any registered gymnasium env with discrete actions and `render_mode="rgb_array"`, as a GameEnv.

One step of the gymnasium env is one emulator frame here (`frame_skip` repeats it; ALE's v5 envs already
skip 4 frames and repeat the last action with probability 0.25, so their generate config uses frame_skip 1);
the rendered screen is the observation, padded to a square and area-resized like every game's. Actions
are the env's own Discrete(n), in its order, each named in the shared vocabulary (data/actions.py): from
the env's action meanings (ALE: `get_action_meanings()`), else from a table for the classic envs that name
none, else from the user's `action_names`. Each episode resets the env with its seed, which seeds all
that is random in a gymnasium env (ALE's sticky actions too): same seed, same frames.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import numpy as np

from common.errors import UserError
from data.actions import ACTION_VOCABULARY
from envs.base import GameEnv
from envs.names import GYMNASIUM_PREFIX, gymnasium_store_name

# ALE's action meanings -> vocabulary names (FIRE is the Atari joystick's button: ACTION_PRIMARY, as in
# the stable-retro Atari games).
ALE_MEANINGS: dict[str, str] = {
    "NOOP": "NOOP",
    "FIRE": "ACTION_PRIMARY",
    "UP": "UP",
    "RIGHT": "RIGHT",
    "LEFT": "LEFT",
    "DOWN": "DOWN",
    "UPRIGHT": "UP_RIGHT",
    "UPLEFT": "UP_LEFT",
    "DOWNRIGHT": "DOWN_RIGHT",
    "DOWNLEFT": "DOWN_LEFT",
    "UPFIRE": "UP_ACTION_PRIMARY",
    "RIGHTFIRE": "RIGHT_ACTION_PRIMARY",
    "LEFTFIRE": "LEFT_ACTION_PRIMARY",
    "DOWNFIRE": "DOWN_ACTION_PRIMARY",
    "UPRIGHTFIRE": "UP_RIGHT_ACTION_PRIMARY",
    "UPLEFTFIRE": "UP_LEFT_ACTION_PRIMARY",
    "DOWNRIGHTFIRE": "DOWN_RIGHT_ACTION_PRIMARY",
    "DOWNLEFTFIRE": "DOWN_LEFT_ACTION_PRIMARY",
}
# Envs whose actions have no meanings to read: their actions in order (by the env's spec name, any
# version), as each env's documentation describes them.
KNOWN_ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("LEFT", "RIGHT"),  # push the cart left, right
    "MountainCar": ("LEFT", "NOOP", "RIGHT"),  # accelerate left, not at all, right
    "Acrobot": ("LEFT", "NOOP", "RIGHT"),  # torque -1, 0, +1 on the actuated joint
    "FrozenLake": ("LEFT", "DOWN", "RIGHT", "UP"),
    "FrozenLake8x8": ("LEFT", "DOWN", "RIGHT", "UP"),
    "CliffWalking": ("UP", "RIGHT", "DOWN", "LEFT"),
    "CliffWalkingSlippery": ("UP", "RIGHT", "DOWN", "LEFT"),
    "Taxi": ("DOWN", "UP", "RIGHT", "LEFT", "ACTION_PRIMARY", "ACTION_SECONDARY"),  # ..., pick up, drop off
}


@functools.cache
def _registry() -> Any:
    """gymnasium's registry with ale-py's envs in it (ALE/...-v5 register only on request)."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    return gymnasium.registry


def make_gymnasium_env(env_id: str, make_kwargs: dict[str, Any] | None = None) -> Any:
    """`gymnasium.make(env_id, render_mode="rgb_array", **make_kwargs)`, checked: discrete actions and
    rgb_array rendering; any problem is one UserError line."""
    import gymnasium

    registry = _registry()
    if env_id not in registry:
        close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.6)
        hint = f" (did you mean: {', '.join(GYMNASIUM_PREFIX + c for c in close)}?)" if close else ""
        raise UserError(
            f"'{env_id}' is not a registered gymnasium env{hint}; name a registered id, e.g. "
            f"game={GYMNASIUM_PREFIX}ALE/Breakout-v5 or game={GYMNASIUM_PREFIX}CartPole-v1"
        )
    try:
        env = gymnasium.make(env_id, render_mode="rgb_array", **dict(make_kwargs or {}))
    except Exception as error:  # a missing extra (box2d, mujoco), a bad keyword: the library says which
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"gymnasium cannot make '{env_id}': {first_line}") from None
    modes = env.metadata.get("render_modes") or []
    if "rgb_array" not in modes:
        env.close()
        raise UserError(f"'{env_id}' does not render rgb_array frames (its render modes: {list(modes)})")
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        env.close()
        raise UserError(
            f"'{env_id}' has {type(env.action_space).__name__} actions; only Discrete action spaces map onto "
            "the action vocabulary"
        )
    return env


def env_action_names(
    env: Any, env_id: str, action_names: list[str] | tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """The vocabulary name of each of the env's actions, in its order (see the module docstring)."""
    num_actions = int(env.action_space.n)
    source = "action_names"
    if action_names is not None:
        names = tuple(str(name).upper() for name in action_names)
    elif hasattr(env.unwrapped, "get_action_meanings"):
        meanings = list(env.unwrapped.get_action_meanings())
        unknown = [m for m in meanings if m not in ALE_MEANINGS]
        if unknown:
            raise UserError(
                f"'{env_id}' names actions {unknown} that have no vocabulary name; name all {num_actions} in "
                f"order with gymnasium.action_names=[...] (vocabulary: {', '.join(ACTION_VOCABULARY)})"
            )
        names, source = tuple(ALE_MEANINGS[m] for m in meanings), "its action meanings"
    elif env.spec is not None and env.spec.name in KNOWN_ACTION_NAMES:
        names, source = KNOWN_ACTION_NAMES[env.spec.name], "the table of known envs"
    else:
        raise UserError(
            f"'{env_id}' does not name its {num_actions} actions; name them in order with "
            f"gymnasium.action_names=[...] (vocabulary: {', '.join(ACTION_VOCABULARY)})"
        )
    unknown = [name for name in names if name not in ACTION_VOCABULARY]
    if unknown:
        raise UserError(
            f"action names {unknown} are not in the vocabulary ({', '.join(ACTION_VOCABULARY)}); fix gymnasium.action_names"
        )
    if len(names) != num_actions:
        raise UserError(
            f"'{env_id}' has {num_actions} actions but {source} gives {len(names)}: {list(names)}"
        )
    if len(set(names)) != len(names):
        raise UserError(f"'{env_id}': two actions share a name in {list(names)}; give each its own")
    return names


class GymnasiumEnv(GameEnv):
    """One gymnasium env; its name in stores is `gymnasium+<id>` (envs/names.py)."""

    def __init__(
        self,
        env_id: str,
        image_size: int,
        frame_skip: int,
        sticky_action_prob: float,
        seed: int | None,
        make_kwargs: dict[str, Any] | None = None,
        action_names: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        env = make_gymnasium_env(env_id, make_kwargs)
        try:
            names = env_action_names(env, env_id, action_names)
        except UserError:
            env.close()
            raise
        super().__init__(
            gymnasium_store_name(env_id), names, image_size, frame_skip, sticky_action_prob, seed
        )
        self.env_id = env_id
        self._env = env
        self._first_action = int(env.action_space.start)  # Discrete(n, start): local i is start + i
        self._env.reset(seed=0)  # the screen size is known only from a rendered frame
        self._screen_shape = self._render().shape
        self._has_reset = False
        self._frame: np.ndarray | None = None

    def _render(self) -> np.ndarray:
        frame = self._env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] not in (3, 4):
            raise UserError(
                f"'{self.env_id}' rendered {type(frame).__name__}, not an rgb_array frame [H, W, 3]"
            )
        return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)  # [H, W, 3]; an alpha channel dropped

    def _restart(self, seed: int | None) -> None:
        if seed is None and not self._has_reset:
            seed = self._base_seed  # the env's own seed starts its stream of unseeded episodes
        self._env.reset(seed=seed)
        self._has_reset = True
        self._frame = None

    def _advance(self, action: int) -> tuple[float, bool]:
        _, reward, terminated, truncated, _ = self._env.step(self._first_action + action)
        self._frame = None
        # a time limit ends the recording too: a gymnasium env must be reset after either
        return float(reward), bool(terminated or truncated)

    @property
    def screen_shape(self) -> tuple[int, int, int]:
        return tuple(self._screen_shape)

    def _screen(self) -> np.ndarray:
        if not self._has_reset:
            raise RuntimeError("call reset() before step()")
        if self._frame is None:
            self._frame = self._render()
        return self._frame

    def coverage_keys(self) -> dict[str, bytes]:
        ale = getattr(self._env.unwrapped, "ale", None)
        return {} if ale is None else {"ram": ale.getRAM().tobytes()}  # as the stable-retro games

    def close(self) -> None:
        if getattr(self, "_env", None) is not None:
            self._env.close()
            self._env = None
