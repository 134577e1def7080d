"""Environment layer: discretiser button masks per platform, frame pad/resize, seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from data.actions import COINRUN_ACTIONS, RETRO_ACTIONS, action_ids
from envs import make_env
from envs.coinrun import procgen_action_indices
from envs.frames import FrameResizer, check_image_size, pad_to_square, square_and_resize
from envs.retro import PRIMARY_BUTTON, button_vectors

# What ACTION_PRIMARY must press on each RetroAct platform (upstream facts).
EXPECTED_PRIMARY = {
    "Nes": "A",
    "Snes": "B",
    "Genesis": "C",
    "Sms": "A",
    "GameBoy": "A",
    "32x": "B",
    "Atari2600": "BUTTON",
}


@pytest.mark.parametrize("platform", sorted(EXPECTED_PRIMARY))
def test_each_action_presses_exactly_its_button(platform):
    import stable_retro

    buttons = stable_retro.get_system_info(platform)["buttons"]  # the core's real button order
    masks = button_vectors(platform, buttons)
    assert masks.shape == (5, len(buttons))
    assert (masks.sum(axis=1) == 1).all()  # one button per action
    pressed = [buttons[int(np.argmax(row))] for row in masks]
    assert pressed == ["RIGHT", "LEFT", "UP", "DOWN", EXPECTED_PRIMARY[platform]]
    assert PRIMARY_BUTTON == EXPECTED_PRIMARY


def test_platform_without_mapping_is_a_user_error():
    with pytest.raises(UserError, match="no ACTION_PRIMARY mapping"):
        button_vectors("PCEngine", ["I", "II", "UP", "DOWN", "LEFT", "RIGHT"])


def test_coinrun_actions_map_to_procgen_key_combos():
    combos = [("LEFT", "DOWN"), ("LEFT",), ("LEFT", "UP"), ("DOWN",), (), ("UP",), ("RIGHT", "DOWN"), ("RIGHT",), ("RIGHT", "UP"), ("D",), ("A",), ("W",), ("S",), ("Q",), ("E",)]  # fmt: skip
    indices = procgen_action_indices(combos)
    assert [combos[i] for i in indices] == [
        (),
        ("RIGHT",),
        ("LEFT",),
        ("UP",),
        ("RIGHT", "UP"),
        ("LEFT", "UP"),
        ("DOWN",),
    ]
    assert len(COINRUN_ACTIONS) == 7


def test_pad_to_square_centres_the_frame_on_black():
    frame = np.full((2, 4, 3), 200, dtype=np.uint8)
    square = pad_to_square(frame)
    assert square.shape == (4, 4, 3)
    assert (square[1:3] == 200).all() and (square[0] == 0).all() and (square[3] == 0).all()


def test_area_resize_averages_blocks():
    frame = np.zeros((4, 4, 3), dtype=np.uint8)
    frame[:2, :2] = 255  # top-left 2x2 block white
    frame[2:, 2:] = 100
    small = square_and_resize(frame, 2)
    assert small.dtype == np.uint8 and small.shape == (2, 2, 3)
    np.testing.assert_array_equal(small[..., 0], [[255, 0], [0, 100]])


def test_resize_keeps_aspect_by_padding_first():
    frame = np.full((224, 320, 3), 90, dtype=np.uint8)  # a Genesis screen
    out = square_and_resize(frame, 64)
    assert out.shape == (64, 64, 3)
    assert (out[0] == 0).all() and (out[32] == 90).all()  # black bars top/bottom, content centred


@pytest.mark.parametrize("bad", [4, 7, 64.0, "64", True, None])
def test_bad_image_size_is_a_user_error(bad):
    with pytest.raises(UserError, match="image_size"):
        check_image_size(bad)


def _rollout(env, seed: int, actions: list[int]) -> np.ndarray:
    frames = [env.reset(seed=seed)[0]]
    for action in actions:
        observation, _, terminated, _, _ = env.step(action)
        frames.append(observation)
        if terminated:
            break
    return np.stack(frames)


def test_retro_env_is_deterministic_and_sticky_actions_are_seeded():
    env = make_env("Airstriker-Genesis", image_size=32, sticky_action_prob=0.5, seed=0)
    try:
        assert env.action_names == RETRO_ACTIONS
        assert list(env.action_ids) == action_ids(RETRO_ACTIONS)
        actions = [0, 0, 1, 4, 2, 3, 4, 0, 1, 1] * 3
        first, again, other = _rollout(env, 7, actions), _rollout(env, 7, actions), _rollout(env, 8, actions)
        assert first.shape[1:] == (32, 32, 3) and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)  # sticky draws differ under another seed
    finally:
        env.close()


def test_coinrun_same_seed_same_level_and_frames():
    env = make_env("coinrun", image_size=64, frame_skip=1, seed=0)
    try:
        assert env.action_names == COINRUN_ACTIONS
        actions = [1, 4, 1, 1, 3, 0, 2, 1] * 4
        np.testing.assert_array_equal(_rollout(env, 11, actions), _rollout(env, 11, actions))
        assert not np.array_equal(_rollout(env, 11, actions)[0], _rollout(env, 12, actions)[0])  # other level
    finally:
        env.close()


def test_missing_rom_error_names_the_import_command():
    import stable_retro.data

    from envs.names import retro_integrations

    missing = next(
        n
        for n in sorted(retro_integrations().values())
        if n.endswith("-Nes-v0") and not _has_rom(stable_retro.data, n)
    )
    with pytest.raises(UserError, match="python run.py roms import"):
        make_env(missing, image_size=64)


def _has_rom(data_module, game: str) -> bool:
    try:
        data_module.get_romfile_path(game)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.parametrize("screen_shape", [(224, 320, 3), (210, 160, 3), (64, 64, 3), (37, 100, 3)])
@pytest.mark.parametrize("image_size", [8, 37, 64, 256])
def test_frame_resizer_is_byte_identical_to_square_and_resize(screen_shape, image_size):
    rng = np.random.default_rng(image_size)
    resize = FrameResizer(image_size)
    for _ in range(3):  # the cached canvas must not carry anything over between frames
        screen = rng.integers(0, 256, screen_shape, dtype=np.uint8)
        np.testing.assert_array_equal(resize(screen), square_and_resize(screen, image_size))
    other = rng.integers(0, 256, (50, 20, 3), dtype=np.uint8)  # a core that changes resolution
    np.testing.assert_array_equal(resize(other), square_and_resize(other, image_size))


def test_retro_core_path_matches_stable_retros_own_step():
    """GameEnv drives the core directly; screens, rewards and ends must equal RetroEnv.step's."""
    import stable_retro

    actions = [int(a) for a in np.random.default_rng(0).integers(5, size=60)]
    env = make_env("Airstriker-Genesis", image_size=64, frame_skip=3)
    try:
        env.reset(seed=0)
        masks = env._button_masks  # [5, num_buttons]
        ours = []
        for action in actions:
            reward, terminated, info = env.advance(action)
            ours.append((env.screen().copy(), reward, terminated, sorted(info)))
    finally:
        env.close()  # one emulator per process: the reference is made after
    reference = stable_retro.make(
        "Airstriker-Genesis-v0", render_mode=None, use_restricted_actions=stable_retro.Actions.ALL
    )
    try:
        reference.reset()
        for action, (screen, reward, terminated, info_keys) in zip(actions, ours, strict=True):
            total = 0.0
            for _ in range(3):
                observation, frame_reward, done, _, info = reference.step(masks[action])
                total += frame_reward
            np.testing.assert_array_equal(screen, observation)
            assert (total, bool(done), sorted(info)) == (reward, terminated, info_keys)
    finally:
        reference.close()
