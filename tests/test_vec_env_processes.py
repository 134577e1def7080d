"""ProcessVecEnv: one env per worker process, the same episodes as a SerialVecEnv; retro games in parallel."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from envs import ProcessVecEnv, make_vec_env


def play(vec_env, num_steps: int, seed: int):
    rng = np.random.default_rng(seed)
    frames, rewards, dones = [vec_env.reset()], [], []
    for _ in range(num_steps):
        step = vec_env.step(rng.integers(0, len(vec_env.action_names), vec_env.num_envs))
        frames.append(step.observations)
        rewards.append(step.rewards)
        dones.append(step.dones)
    return np.stack(frames), np.stack(rewards), np.stack(dones)


def test_process_vec_env_plays_the_same_episodes_as_the_serial_one():
    kwargs = dict(env_name="synthetic-block", num_envs=3, image_size=16, seed=5, max_episode_steps=7)
    serial = make_vec_env(**kwargs, use_processes=False)
    processes = make_vec_env(**kwargs, use_processes=True)
    try:
        assert isinstance(processes, ProcessVecEnv) and processes.action_names == serial.action_names
        expected, got = play(serial, 20, seed=1), play(processes, 20, seed=1)
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_array_equal(a, b)
        assert got[2].sum() >= 3  # episodes were cut and restarted inside the run
    finally:
        serial.close()
        processes.close()


def test_retro_games_run_one_emulator_per_worker_at_the_requested_frame_size():
    vec_env = make_vec_env(
        ["MontezumaRevenge-Atari2600", "Airstriker-Genesis"], num_envs=3, image_size=32, seed=0, frame_skip=4
    )
    processes = list(vec_env.processes)
    try:
        assert isinstance(vec_env, ProcessVecEnv) and len(processes) == 3
        assert vec_env.action_names == ("RIGHT", "LEFT", "UP", "DOWN", "ACTION_PRIMARY")  # RetroAct's set
        frames, _, _ = play(vec_env, 8, seed=0)
        assert frames.shape == (9, 3, 32, 32, 3) and frames.dtype == np.uint8
        assert not np.array_equal(frames[-1, 0], frames[-1, 1])  # env 1 plays the second game
        np.testing.assert_array_equal(frames[0, 0], frames[0, 2])  # envs 0 and 2: the same game's start
    finally:
        vec_env.close()
    assert all(not process.is_alive() for process in processes)


def test_an_env_that_fails_in_its_worker_is_one_user_error():
    def_kwargs = [{"env_name": "synthetic-block", "image_size": 7, "frame_skip": 1, "seed": 0}]
    from envs import make_env

    with pytest.raises(UserError, match="an env worker failed: .*image_size"):
        ProcessVecEnv(make_env, def_kwargs, seed=0)
