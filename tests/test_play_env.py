"""WorldModelEnv / WorldModelVectorEnv: shapes, seeding, action names, gymnasium's env checker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.world_model_env import DEFAULT_TEMPERATURE, WorldModelEnv, WorldModelVectorEnv
from models.world_model import WorldModel


@pytest.fixture(scope="module")
def world_model(tiny_world_model_dpath):
    return WorldModel.from_checkpoint(tiny_world_model_dpath)


def rollout(env: WorldModelEnv, seed: int, actions: list[int]) -> tuple[dict, list[np.ndarray]]:
    frame, info = env.reset(seed=seed)
    return info, [frame] + [env.step(a)[0] for a in actions]


def test_frames_are_uint8_hwc_and_actions_are_the_games_own(world_model, tiny_play_store):
    env = WorldModelEnv(world_model, tiny_play_store, game="SquareGame", maskgit_steps=2)
    assert env.action_names == ("RIGHT", "LEFT", "ACTION_PRIMARY")  # vocabulary order, from the episodes
    assert env.action_space.n == 3 and env.observation_space.shape == (16, 16, 3)
    frame, info = env.reset(seed=0)
    assert frame.dtype == np.uint8 and frame.shape == (16, 16, 3) and info["game"] == "SquareGame"
    next_frame, reward, terminated, truncated, info = env.step(2)
    assert next_frame.dtype == np.uint8 and next_frame.shape == (16, 16, 3)
    assert (reward, terminated, truncated, info["step"]) == (0.0, False, False, 1)
    every_game = WorldModelEnv(world_model, tiny_play_store)  # the union over games, vocabulary order
    assert every_game.action_names == ("NOOP", "RIGHT", "LEFT", "UP", "DOWN", "ACTION_PRIMARY")
    with pytest.raises(ValueError, match="actions must be in 0..2"):
        env.step(3)


def test_same_seed_same_start_and_frames_other_seed_differs(world_model, tiny_play_store):
    env = WorldModelEnv(world_model, tiny_play_store, maskgit_steps=2)
    info_a, frames_a = rollout(env, seed=3, actions=[0, 1, 2, 3])
    info_b, frames_b = rollout(env, seed=3, actions=[0, 1, 2, 3])
    assert info_a == info_b
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))
    starts = {(i["game"], i["episode_id"], i["frame"]) for i in (rollout(env, s, [])[0] for s in range(8))}
    assert len(starts) > 1  # the seed draws game, episode and frame
    _, frames_c = rollout(env, seed=4, actions=[0, 1, 2, 3])
    assert not all(np.array_equal(a, c) for a, c in zip(frames_a[1:], frames_c[1:]))


def test_chosen_start_and_uploaded_image_and_options(world_model, tiny_play_store):
    from data.episode_store import EpisodeStore

    env = WorldModelEnv(world_model, tiny_play_store, num_prime_frames=3)
    frame, info = env.reset(
        seed=0, options={"episode_id": "BlockGame__s000001", "frame": 4, "maskgit_steps": 5}
    )
    real = EpisodeStore(tiny_play_store).read_frames("BlockGame__s000001", 4, 7)
    assert np.array_equal(frame, real[-1]) and info["frame"] == 4 and env.sessions.maskgit_steps == 5
    image = np.zeros((40, 20, 3), dtype=np.uint8)  # any size: padded to a square, area-resized
    image[:, :, 0] = 200
    assert env.sessions.temperature == DEFAULT_TEMPERATURE
    frame, info = env.reset(options={"image": image, "temperature": 0.25})
    assert frame.shape == (16, 16, 3) and frame[8, 8, 0] == 200 and frame[8, 0, 0] == 0
    assert info["game"] == "upload" and env.sessions.temperature == 0.25
    assert env.step(0)[0].shape == (16, 16, 3)
    with pytest.raises(Exception, match="outside episode"):
        env.reset(options={"episode_id": "BlockGame__s000001", "frame": 11})


def test_passes_gymnasiums_env_checker(world_model, tiny_play_store):
    check_env(WorldModelEnv(world_model, tiny_play_store, maskgit_steps=1), skip_render_check=False)


def test_vector_env_steps_a_batch_and_autoresets_after_truncation(world_model, tiny_play_store):
    env = WorldModelVectorEnv(world_model, 3, tiny_play_store, maskgit_steps=1, max_episode_steps=2)
    frames, _ = env.reset(seed=0)
    assert frames.shape == (3, 16, 16, 3) and frames.dtype == np.uint8
    assert env.action_space.shape == (3,) and env.single_action_space.n == 6
    frames, rewards, terminated, truncated, _ = env.step(np.array([0, 1, 5]))
    assert frames.shape == (3, 16, 16, 3) and rewards.shape == (3,) and not truncated.any()
    truncated = env.step(np.array([1, 1, 1]))[3]
    assert truncated.all()
    restarted = env.step(np.array([1, 1, 1]))[0]  # next-step autoreset: fresh real start frames
    assert env.num_steps == 0 and restarted.shape == (3, 16, 16, 3)
    same = WorldModelVectorEnv(world_model, 3, tiny_play_store, maskgit_steps=1)
    again = same.reset(seed=0)[0]
    assert np.array_equal(again, env.reset(seed=0)[0])


def test_genie_redux_plays_its_latent_actions_from_real_clips(tiny_play_store):
    import torch

    from models.presets import build

    torch.manual_seed(0)
    env = WorldModelEnv(WorldModel(build("genie_redux", "tiny")), tiny_play_store, maskgit_steps=1)
    assert env.action_names == tuple(f"LATENT_{i}" for i in range(7))  # the LAM's codes, inferred at reset
    env.reset(seed=0)
    assert env.step(6)[0].shape == (16, 16, 3)


def test_the_players_sampling_defaults_are_one_choice_everywhere():
    """The player, the gymnasium env, and the evaluation's play checks sample alike by default (steps and
    temperature chosen by experiments/results/play_quality.md)."""
    from omegaconf import OmegaConf

    from envs.world_model_env import DEFAULT_MASKGIT_STEPS
    from training.evaluation.play_checks import PlaySettings

    root = Path(__file__).resolve().parents[1]
    player = OmegaConf.load(root / "play" / "configs" / "play.yaml")
    checks = OmegaConf.load(root / "configs" / "eval" / "default.yaml").play
    for steps, temperature in ((player.maskgit_steps, player.temperature), (checks.steps, checks.temperature),
                               (PlaySettings().steps, PlaySettings().temperature)):  # fmt: skip
        assert (steps, temperature) == (DEFAULT_MASKGIT_STEPS, DEFAULT_TEMPERATURE)
