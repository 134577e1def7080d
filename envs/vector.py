"""Many environments stepped together: what an actor-critic collects from (task agent, AutoExplore).

A VecEnv steps N episodes at once and restarts each one as it ends, so the batch never waits: after a
step that ends an episode, that slot's observation is already the first frame of the next episode
(procgen's convention, which CoinRun's native batch follows). Two kinds:

- `SerialVecEnv`: N GameEnvs of the one env layer stepped in this process (synthetic games, tests);
- `ProcessVecEnv`: one GameEnv per worker process (stable-retro allows one emulator per process),
  all stepped at once over pipes; each worker runs a one-env SerialVecEnv, so episodes, seeds and
  restarts are exactly a SerialVecEnv's;
- `CoinRunVecEnv` (envs/coinrun.py): one procgen instance with N envs, stepped natively.
"""

from __future__ import annotations

import multiprocessing as mp
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import UserError
from common.seeds import episode_seed
from envs.base import OBSERVATION_IS_RESET, GameEnv


@dataclass
class VecStep:
    observations: np.ndarray  # uint8 [N, S, S, 3]; where `dones`, the next episode's first frame
    rewards: np.ndarray  # float32 [N], the game's own reward for the step
    dones: np.ndarray  # bool [N], the episode ended with this step (game over, level done or time limit)


class VecEnv(ABC):
    num_envs: int
    action_names: tuple[str, ...]
    image_size: int

    @abstractmethod
    def reset(self) -> np.ndarray:
        """Start every episode afresh -> observations uint8 [N, S, S, 3]."""

    @abstractmethod
    def step(self, actions: np.ndarray) -> VecStep:
        """actions int64 [N] (local indices) -> one step of every env."""

    def get_state(self) -> dict[str, Any] | None:
        """A snapshot to resume from (JSON-able data and bytes), or None if these games cannot snapshot."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no snapshots (get_state returned None)")

    def close(self) -> None:  # noqa: B027 (optional: envs without emulators hold nothing)
        """Release the emulators."""


class SerialVecEnv(VecEnv):
    """GameEnvs stepped one after another; env i's k-th episode is seeded by episode_seed(seed, 'env{i}', k)."""

    def __init__(
        self, envs: list[GameEnv], seed: int, max_episode_steps: int | None = None, first_index: int = 0
    ) -> None:
        if not envs:
            raise ValueError("SerialVecEnv needs at least one env")
        self.envs = envs
        self.num_envs = len(envs)
        self.action_names = envs[0].action_names
        self.image_size = envs[0].image_size
        self.seed = seed
        self.max_episode_steps = max_episode_steps
        self.first_index = first_index  # env i is named env{first_index + i} in its episode seeds
        self._episode_counts = [0] * self.num_envs
        self._episode_steps = [0] * self.num_envs

    def _restart(self, index: int) -> np.ndarray:
        seed = episode_seed(self.seed, f"env{self.first_index + index}", self._episode_counts[index])
        self._episode_counts[index] += 1
        self._episode_steps[index] = 0
        observation, _ = self.envs[index].reset(seed=seed)
        return observation

    def reset(self) -> np.ndarray:
        return np.stack([self._restart(i) for i in range(self.num_envs)])  # [N, S, S, 3]

    def step(self, actions: np.ndarray) -> VecStep:
        observations, rewards, dones = [], np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool)
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            observation, reward, terminated, truncated, info = env.step(int(action))
            self._episode_steps[i] += 1
            is_timeout = (
                self.max_episode_steps is not None and self._episode_steps[i] >= self.max_episode_steps
            )
            rewards[i], dones[i] = (
                reward,
                terminated or truncated or is_timeout or bool(info.get(OBSERVATION_IS_RESET)),
            )
            observations.append(self._restart(i) if dones[i] else observation)
        return VecStep(np.stack(observations), rewards, dones)

    def get_state(self) -> dict[str, Any] | None:
        if not all(hasattr(env, "get_state") for env in self.envs):
            return None
        return {
            "envs": [env.get_state() for env in self.envs],
            "episode_counts": list(self._episode_counts),
            "episode_steps": list(self._episode_steps),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for env, env_state in zip(self.envs, state["envs"], strict=True):
            env.set_state(env_state)
        self._episode_counts = list(state["episode_counts"])
        self._episode_steps = list(state["episode_steps"])

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection, env_factory: Callable[..., GameEnv], env_kwargs: dict, seed: int, index: int,
            max_episode_steps: int | None) -> None:  # fmt: skip
    """One env in its own process: a one-env SerialVecEnv driven by commands from the pipe."""
    try:
        vec_env = SerialVecEnv([env_factory(**env_kwargs)], seed, max_episode_steps, first_index=index)
    except Exception as error:  # reported by the parent as one line
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", (vec_env.action_names, vec_env.image_size)))
    while True:
        command, payload = connection.recv()
        if command == "reset":
            connection.send(("ok", vec_env.reset()[0]))
        elif command == "step":
            step = vec_env.step(np.asarray([payload]))
            connection.send(("ok", (step.observations[0], step.rewards[0], step.dones[0])))
        elif command == "get_state":
            connection.send(("ok", vec_env.get_state()))
        elif command == "set_state":
            vec_env.set_state(payload)
            connection.send(("ok", None))
        else:  # close
            vec_env.close()
            connection.send(("ok", None))
            return


class ProcessVecEnv(VecEnv):
    """One GameEnv per spawned worker process, stepped in parallel over pipes.

    `env_kwargs[i]` builds env i with `env_factory` (envs.make_env) inside worker i;
    the envs may be different games with the same action set. Same episodes as a SerialVecEnv of
    the same envs.
    """

    def __init__(
        self,
        env_factory: Callable[..., GameEnv],
        env_kwargs: list[dict],
        seed: int,
        max_episode_steps: int | None = None,
    ) -> None:
        if not env_kwargs:
            raise ValueError("ProcessVecEnv needs at least one env")
        context = mp.get_context("spawn")  # a fresh interpreter per emulator
        self.num_envs, self.seed = len(env_kwargs), seed
        self.connections, self.processes = [], []
        for index, kwargs in enumerate(env_kwargs):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker, args=(child, env_factory, kwargs, seed, index, max_episode_steps), daemon=True
            )
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        specs = [self._receive(connection) for connection in self.connections]
        names = {spec[0] for spec in specs}
        if len(names) != 1:
            self.close()
            raise UserError(f"the games of one VecEnv need one action set (got {sorted(names)})")
        self.action_names, self.image_size = specs[0]

    def _receive(self, connection) -> Any:
        status, payload = connection.recv()
        if status == "error":
            self.close()
            raise UserError(f"an env worker failed: {payload}")
        return payload

    def _all(self, command: str, payloads: list | None = None) -> list:
        for i, connection in enumerate(self.connections):
            connection.send((command, None if payloads is None else payloads[i]))
        return [self._receive(connection) for connection in self.connections]

    def reset(self) -> np.ndarray:
        return np.stack(self._all("reset"))  # [N, S, S, 3]

    def step(self, actions: np.ndarray) -> VecStep:
        results = self._all("step", [int(a) for a in actions])
        observations, rewards, dones = zip(*results, strict=True)
        return VecStep(np.stack(observations), np.asarray(rewards, np.float32), np.asarray(dones, bool))

    def get_state(self) -> dict[str, Any] | None:
        states = self._all("get_state")
        return None if any(state is None for state in states) else {"workers": states}

    def set_state(self, state: dict[str, Any]) -> None:
        self._all("set_state", state["workers"])

    def close(self) -> None:
        for connection, process in zip(self.connections, self.processes, strict=False):
            if process.is_alive():
                try:
                    connection.send(("close", None))
                    connection.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        self.connections, self.processes = [], []
