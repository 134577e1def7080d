"""The world model as a gymnasium environment: `WorldModelEnv` (one session) and `WorldModelVectorEnv`
(`num_envs` sessions stepped as one batch, for agents that learn inside the world model).

    env = WorldModelEnv(WorldModel.from_checkpoint(dpath), store="datasets/retro_act/pretrain")
    frame, info = env.reset(seed=0)                       # uint8 [H, W, 3]: the last real prime frame
    frame, reward, terminated, truncated, info = env.step(env.action_names.index("RIGHT"))

Observations are uint8 [H, W, 3] frames, as the real game envs give (envs/). Actions are
`Discrete(len(action_names))` over the game's own action names. The world model predicts no reward and
no episode end: reward comes from `reward_fn` (0 without one) and `terminated` is always False;
`max_episode_steps` truncates. Reset options: `game`, `episode_id`, `frame` (start clip from the store;
each one left out is drawn from the seed), `image` (uint8 [H, W, 3]: a single prime frame instead),
`maskgit_steps`, `temperature` (kept until changed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from data.actions import ACTION_VOCABULARY, action_ids
from data.transforms import frames_to_model, frames_to_uint8
from envs.start_clips import StartClip, StartPicker, image_clip
from models.world_model import StepResult, WorldModel

DEFAULT_MASKGIT_STEPS = 2  # chosen by measurement: benchmarks/bench_player.py
# MaskGIT sampling temperature, chosen by measurement: experiments/results/play_quality.md
DEFAULT_TEMPERATURE = 0.5
DEFAULT_NUM_PRIME_FRAMES = 2  # real frames a session starts from (the evaluation's default)
RewardFn = Callable[[StepResult, np.ndarray], np.ndarray]  # (step result, actions [B]) -> rewards float32 [B]


def check_sampling_options(maskgit_steps: int, temperature: float) -> None:
    if not 1 <= int(maskgit_steps) <= 64:
        raise ValueError(f"maskgit_steps must be in 1..64, got {maskgit_steps}")
    if not 0.0 <= float(temperature) <= 10.0:
        raise ValueError(f"temperature must be in 0..10, got {temperature}")


class WorldModelSessions:
    """What both envs share: start clips, the action mapping, settings, and batched generation."""

    def __init__(
        self,
        world_model: WorldModel,
        store: str | Path | StartPicker | None,
        game: str | None,
        action_names: tuple[str, ...] | None,
        num_prime_frames: int,
        maskgit_steps: int,
        temperature: float,
    ) -> None:
        self.world_model = world_model
        self.image_size = world_model.tokenizer.config.image_size
        if store is None or isinstance(store, StartPicker):  # a picker can be shared by many sessions
            self.picker = store
        else:
            self.picker = StartPicker(store, self.image_size, num_prime_frames)
        self.game = self.picker.check_game(game) if (self.picker and game is not None) else game
        if not world_model.is_action_guided:  # GenieRedux: its LAM's latent actions, no names
            self.action_names = tuple(f"LATENT_{i}" for i in range(world_model.num_actions))
            self.vocabulary_ids = torch.arange(world_model.num_actions)  # [A]: model ids as they are
        else:
            if action_names is None:
                # without a store, every name the model embeds (the vocabulary only grows at its end)
                action_names = (
                    self.picker.action_names(game)
                    if self.picker
                    else ACTION_VOCABULARY[: world_model.num_actions]
                )
            self.action_names = tuple(action_names)
            self.vocabulary_ids = torch.tensor(action_ids(self.action_names), dtype=torch.long)  # [A]
        if int(self.vocabulary_ids.max()) >= world_model.num_actions:
            raise ValueError(
                f"the model knows {world_model.num_actions} actions; {self.action_names} need more"
            )
        self.set_options(maskgit_steps, temperature)
        self.generator = torch.Generator(device=world_model.device)

    def set_options(self, maskgit_steps: int, temperature: float) -> None:
        check_sampling_options(maskgit_steps, temperature)
        self.maskgit_steps, self.temperature = int(maskgit_steps), float(temperature)

    def pick_clips(self, rng: np.random.Generator, count: int, options: dict[str, Any]) -> list[StartClip]:
        """`count` start clips: the uploaded `image` for all, or one store clip each (drawn from rng)."""
        if options.get("image") is not None:
            return [image_clip(options["image"], self.image_size)] * count
        if self.picker is None:
            raise ValueError(
                "this env has no episode store: pass options={'image': uint8 [H, W, 3]} to reset"
            )
        game = options.get("game", self.game)
        return [
            self.picker.pick(rng, game, options.get("episode_id"), options.get("frame")) for _ in range(count)
        ]

    def prime(self, clips: list[StartClip], seed: int) -> np.ndarray:
        """Reset the world model with the clips (same length); -> their last frames uint8 [B, S, S, 3]."""
        frames = torch.from_numpy(np.stack([c.frames for c in clips]))  # [B, T0, S, S, 3]
        actions = torch.from_numpy(np.stack([c.actions for c in clips]))  # [B, T0-1]
        device = self.world_model.device
        # GenieRedux infers the prime clip's latent actions with its LAM; G takes the recorded ones
        prime_actions = actions.to(device) if self.world_model.is_action_guided else None
        self.world_model.reset(frames_to_model(frames, device), prime_actions)
        self.generator.manual_seed(seed)
        return frames[:, -1].numpy()

    def generate(self, actions: np.ndarray) -> tuple[np.ndarray, StepResult]:
        """actions int [B] (indices into action_names) -> next frames uint8 [B, S, S, 3] and the raw step."""
        actions = np.asarray(actions).reshape(-1)
        if actions.size and (actions.min() < 0 or actions.max() >= len(self.action_names)):
            raise ValueError(f"actions must be in 0..{len(self.action_names) - 1}, got {actions.tolist()}")
        vocabulary_ids = self.vocabulary_ids[torch.from_numpy(actions.astype(np.int64))]  # [B]
        result = self.world_model.step(
            vocabulary_ids.to(self.world_model.device),
            steps=self.maskgit_steps,
            temperature=self.temperature,
            generator=self.generator,
        )
        return frames_to_uint8(result.frames[:, None])[:, 0].cpu().numpy(), result


def frame_space(image_size: int) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)


class WorldModelEnv(gym.Env):
    """One world-model session as a gymnasium env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        world_model: WorldModel,
        store: str | Path | StartPicker | None = None,
        game: str | None = None,
        action_names: tuple[str, ...] | None = None,
        num_prime_frames: int = DEFAULT_NUM_PRIME_FRAMES,
        maskgit_steps: int = DEFAULT_MASKGIT_STEPS,
        temperature: float = DEFAULT_TEMPERATURE,
        max_episode_steps: int | None = None,
        reward_fn: RewardFn | None = None,
        render_mode: str | None = "rgb_array",
    ) -> None:
        self.sessions = WorldModelSessions(
            world_model, store, game, action_names, num_prime_frames, maskgit_steps, temperature
        )
        self.action_names = self.sessions.action_names
        self.action_space = gym.spaces.Discrete(len(self.action_names))
        self.observation_space = frame_space(self.sessions.image_size)
        self.max_episode_steps, self.reward_fn, self.render_mode = max_episode_steps, reward_fn, render_mode
        self.frame: np.ndarray | None = None  # uint8 [S, S, 3]: the latest frame
        self.clip: StartClip | None = None
        self.num_steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        self.sessions.set_options(
            options.get("maskgit_steps", self.sessions.maskgit_steps),
            options.get("temperature", self.sessions.temperature),
        )
        (self.clip,) = self.sessions.pick_clips(self.np_random, 1, options)
        self.frame = self.sessions.prime([self.clip], int(self.np_random.integers(2**62)))[0]
        self.num_steps = 0
        return self.frame, self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.frame is None:
            raise ValueError("call reset() before step()")
        frames, result = self.sessions.generate(np.asarray([action]))
        self.frame, self.num_steps = frames[0], self.num_steps + 1
        reward = float(self.reward_fn(result, np.asarray([action]))[0]) if self.reward_fn else 0.0
        truncated = self.max_episode_steps is not None and self.num_steps >= self.max_episode_steps
        return self.frame, reward, False, truncated, self._info()

    def render(self) -> np.ndarray | None:
        return self.frame

    def _info(self) -> dict[str, Any]:
        clip = self.clip
        return {"game": clip.game, "episode_id": clip.episode_id, "frame": clip.frame, "step": self.num_steps}


class WorldModelVectorEnv(VectorEnv):
    """`num_envs` world-model sessions generated as one batch; they start, step and truncate together.

    Autoreset is gymnasium's next-step mode: the step after a truncation returns fresh start frames
    (reward 0) instead of generating.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        world_model: WorldModel,
        num_envs: int,
        store: str | Path | StartPicker | None = None,
        game: str | None = None,
        action_names: tuple[str, ...] | None = None,
        num_prime_frames: int = DEFAULT_NUM_PRIME_FRAMES,
        maskgit_steps: int = DEFAULT_MASKGIT_STEPS,
        temperature: float = DEFAULT_TEMPERATURE,
        max_episode_steps: int | None = None,
        reward_fn: RewardFn | None = None,
    ) -> None:
        self.sessions = WorldModelSessions(
            world_model, store, game, action_names, num_prime_frames, maskgit_steps, temperature
        )
        self.num_envs, self.action_names = int(num_envs), self.sessions.action_names
        self.single_action_space = gym.spaces.Discrete(len(self.action_names))
        self.single_observation_space = frame_space(self.sessions.image_size)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.max_episode_steps, self.reward_fn, self.render_mode = max_episode_steps, reward_fn, "rgb_array"
        self.frames: np.ndarray | None = None  # uint8 [N, S, S, 3]
        self.num_steps, self.needs_reset, self.options = 0, False, {}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):  # one draw for the batch: the first seed stands for all
            seed = seed[0]
        super().reset(seed=seed)
        self.options = dict(options or {})
        self.sessions.set_options(
            self.options.get("maskgit_steps", self.sessions.maskgit_steps),
            self.options.get("temperature", self.sessions.temperature),
        )
        return self._start(), {}

    def _start(self) -> np.ndarray:
        clips = self.sessions.pick_clips(self.np_random, self.num_envs, self.options)
        self.frames = self.sessions.prime(clips, int(self.np_random.integers(2**62)))
        self.num_steps, self.needs_reset = 0, False
        return self.frames

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.frames is None:
            raise ValueError("call reset() before step()")
        zeros = np.zeros(self.num_envs, dtype=bool)
        if self.needs_reset:
            return self._start(), np.zeros(self.num_envs, dtype=np.float32), zeros, zeros.copy(), {}
        self.frames, result = self.sessions.generate(np.asarray(actions))
        self.num_steps += 1
        rewards = (
            np.asarray(self.reward_fn(result, np.asarray(actions)), dtype=np.float32)
            if self.reward_fn
            else np.zeros(self.num_envs, dtype=np.float32)
        )
        self.needs_reset = self.max_episode_steps is not None and self.num_steps >= self.max_episode_steps
        return self.frames, rewards, zeros, np.full(self.num_envs, self.needs_reset), {}

    def render(self) -> np.ndarray | None:
        return self.frames
