"""One player session (one browser tab): its own world-model state, start, settings and recent frames.

Sessions share the model weights and the episode store; each owns a `WorldModel` wrapper (the
generation state: token history and caches) inside a `WorldModelEnv`. Switching game rebuilds the env,
because a game fixes the action space.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from torch import nn

from common.gifs import encode_gif
from envs.start_clips import StartPicker
from envs.world_model_env import WorldModelEnv
from models.world_model import WorldModel

MAX_GIF_FRAMES = 600  # frames kept for "save as gif" (the latest ones): 40 s at 15 frames/s
GIF_FPS = 15.0  # playback speed of the saved gif


class PlaySession:
    def __init__(
        self,
        model: nn.Module,
        picker: StartPicker,
        num_prime_frames: int,
        maskgit_steps: int,
        temperature: float,
        precision: str = "auto",
    ) -> None:
        """precision: the world model's inference precision (models/world_model.py)."""
        self.model, self.picker, self.num_prime_frames = model, picker, num_prime_frames
        self.precision = precision
        self.maskgit_steps, self.temperature = maskgit_steps, temperature
        self.env: WorldModelEnv | None = None
        self.start_options: dict[str, Any] = {}
        self.frames: deque[np.ndarray] = deque(maxlen=MAX_GIF_FRAMES)  # uint8 [S, S, 3] each

    def _env_for(self, game: str) -> WorldModelEnv:
        if self.env is None or self.env.sessions.game != game:
            self.env = WorldModelEnv(
                WorldModel(self.model, precision=self.precision),
                self.picker,
                game=game,
                num_prime_frames=self.num_prime_frames,
                maskgit_steps=self.maskgit_steps,
                temperature=self.temperature,
            )
        return self.env

    def start(
        self,
        game: str | None = None,
        episode_id: str | None = None,
        frame: int | None = None,
        image: np.ndarray | None = None,
        seed: int | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Prime from (game, episode, frame) of the store (missing ones drawn) or from an image [H, W, 3]."""
        if game is None:
            game = self.env.sessions.game if self.env else self.picker.games[0]
        options = {"episode_id": episode_id, "frame": frame, "image": image}
        options = {key: value for key, value in options.items() if value is not None}
        return self._start(self._env_for(self.picker.check_game(game)), options, seed)

    def restart(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The same start again (same clip or image); a new sampling seed."""
        if self.env is None:
            return self.start()
        return self._start(self.env, self.start_options, None)

    def _start(self, env: WorldModelEnv, options: dict[str, Any], seed: int | None):  # noqa: ANN202
        settings = {"maskgit_steps": self.maskgit_steps, "temperature": self.temperature}
        frame, info = env.reset(seed=seed, options={**options, **settings})
        if "image" not in options:  # pin the drawn clip, so reset replays it
            options = {"episode_id": info["episode_id"], "frame": info["frame"]}
        self.start_options = options
        self.frames.clear()
        self.frames.append(frame)
        return frame, info

    def set_options(self, maskgit_steps: int, temperature: float) -> None:
        if self.env is not None:
            self.env.sessions.set_options(maskgit_steps, temperature)  # validates
        self.maskgit_steps, self.temperature = int(maskgit_steps), float(temperature)

    def step(self, action_name: str) -> np.ndarray:
        """Generate the next frame for one of the game's action names -> uint8 [S, S, 3]."""
        if self.env is None:
            self.start()
        if action_name not in self.env.action_names:
            raise ValueError(
                f"'{action_name}' is not an action of this game: {', '.join(self.env.action_names)}"
            )
        frame = self.env.step(self.env.action_names.index(action_name))[0]
        self.frames.append(frame)
        return frame

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.env.action_names if self.env else ()

    def gif(self) -> bytes:
        """The session's frames since the last start (the latest MAX_GIF_FRAMES) as an animated gif."""
        return encode_gif(list(self.frames), GIF_FPS, min_size=256)  # legible in the browser
