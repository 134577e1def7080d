"""Any registered gymnasium env as a data source: ALE games (ale-py) and classic control (CartPole).

Their own action meanings land in the shared vocabulary, which only grew at its end (stored ids and
models made before keep their meaning); same seed, same bytes, whatever the worker count; bad ids,
action spaces and action names are one line; GenieRedux-G embeds every action its data's games take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState

from agents.random_policy import RandomPolicy
from common.launcher import main as launcher_main
from data.actions import ACTION_VOCABULARY, FIRST_VOCABULARY_SIZE, NUM_ACTIONS, vocabulary_size_for
from data.datasets import WindowDataset, game_action_names
from data.episode_store import EpisodeStore
from data_generation.recorder import record_episode
from envs import make_env
from envs.gymnasium_env import ALE_MEANINGS
from envs.names import gymnasium_env_id, gymnasium_store_name
from models.checkpoint import load_model, save_checkpoint
from models.presets import build
from training.model_setup import check_action_embedding, sized_for_actions

BREAKOUT, CARTPOLE = "gymnasium:ALE/Breakout-v5", "gymnasium:CartPole-v1"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_the_vocabulary_only_grew_at_its_end():
    # the names every store and GenieRedux-G checkpoint made before gymnasium games used, at their ids
    before = ("NOOP", "RIGHT", "LEFT", "UP", "DOWN", "ACTION_PRIMARY", "UP_RIGHT", "UP_LEFT")
    assert ACTION_VOCABULARY[:FIRST_VOCABULARY_SIZE] == before
    assert len(set(ACTION_VOCABULARY)) == NUM_ACTIONS
    assert set(ALE_MEANINGS.values()) <= set(ACTION_VOCABULARY)  # all 18 joystick actions have a name
    assert vocabulary_size_for(["LEFT", "UP_LEFT"]) == FIRST_VOCABULARY_SIZE
    assert vocabulary_size_for(["LEFT", "DOWN_RIGHT"]) == NUM_ACTIONS


def test_store_names_map_back_to_gymnasium_ids():
    assert gymnasium_store_name("ALE/Pong-v5") == "gymnasium+ALE+Pong-v5"
    assert (
        gymnasium_env_id("gymnasium+ALE+Pong-v5")
        == gymnasium_env_id("gymnasium:ALE/Pong-v5")
        == "ALE/Pong-v5"
    )
    assert gymnasium_env_id("gymnasium:CartPole-v1") == "CartPole-v1"
    assert gymnasium_env_id("Pong-Atari2600") is None


def test_env_action_meanings_become_vocabulary_ids():
    breakout = make_env(BREAKOUT, 32, frame_skip=1)
    assert breakout.env_name == "gymnasium+ALE+Breakout-v5"
    assert breakout.action_names == ("NOOP", "ACTION_PRIMARY", "RIGHT", "LEFT")  # NOOP, FIRE, RIGHT, LEFT
    assert breakout.action_ids.tolist() == [0, 5, 1, 2]
    breakout.close()
    full = make_env(BREAKOUT, 32, frame_skip=1, make_kwargs={"full_action_space": True})
    assert full.action_space.n == 18 and len(set(full.action_names)) == 18
    assert full.action_names[8] == "DOWN_RIGHT" and max(full.action_ids) >= FIRST_VOCABULARY_SIZE
    full.close()
    cartpole = make_env(CARTPOLE, 32, frame_skip=1)
    assert cartpole.action_names == ("LEFT", "RIGHT") and cartpole.screen_shape == (400, 600, 3)
    observation, _ = cartpole.reset(seed=1)
    assert observation.shape == (32, 32, 3) and observation.dtype == np.uint8
    cartpole.close()


@pytest.mark.parametrize("game", [BREAKOUT, CARTPOLE])
def test_same_seed_same_frames_another_seed_other_frames(game):
    def recording(seed: int):
        env = make_env(game, 32, frame_skip=2)
        try:
            return record_episode(env, RandomPolicy(env.action_space.n), seed, n_steps_max=40)
        finally:
            env.close()

    first, again, other = recording(11), recording(11), recording(12)
    assert first.frames.tobytes() == again.frames.tobytes() and np.array_equal(first.actions, again.actions)
    assert first.frames.tobytes() != other.frames.tobytes()
    assert first.frames.std() > 0  # a real screen, not a blank one
    assert set(first.info["env_actions"]) <= set(ACTION_VOCABULARY)


def generate(output_dpath: Path, *extra: str) -> int:
    return launcher_main([
        "generate", "config=gymnasium/random", f"game=[{BREAKOUT},{CARTPOLE}]", "n_sessions=2",
        "n_steps_max=25", "image_size=16", "seed=4", f"output_dpath={output_dpath}", *extra,
    ])  # fmt: skip


@pytest.mark.slow
def test_generate_records_gymnasium_envs_byte_identically_with_one_or_two_workers(tmp_path):
    assert generate(tmp_path / "one", "n_workers=1") == 0
    assert generate(tmp_path / "two", "n_workers=2") == 0
    files = {p.name: p.read_bytes() for p in sorted((tmp_path / "one").glob("shards/*/*.gre"))}
    assert files == {p.name: p.read_bytes() for p in sorted((tmp_path / "two").glob("shards/*/*.gre"))}
    assert len(files) == 4
    names = game_action_names(EpisodeStore(tmp_path / "one"))
    assert names == {
        "gymnasium+ALE+Breakout-v5": ("NOOP", "ACTION_PRIMARY", "RIGHT", "LEFT"),
        "gymnasium+CartPole-v1": ("LEFT", "RIGHT"),
    }
    windows = WindowDataset(tmp_path / "one", "train", num_frames=4)
    assert set(windows.env_names) == set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["game=gymnasium:CartPol-v1"], "did you mean: gymnasium:CartPole-v1"),
        (["game=gymnasium:MountainCarContinuous-v0"], "has Box actions"),
        (
            ["game=gymnasium:Blackjack-v1"],
            "does not name its 2 actions; name them in order with gymnasium.action_names",
        ),
        ([f"game={CARTPOLE}", "gymnasium.action_names=[LEFT]"], "has 2 actions but action_names gives 1"),
        ([f"game={CARTPOLE}", "gymnasium.action_names=[LEFT,JUMP]"], "['JUMP'] are not in the vocabulary"),
        ([f"game={CARTPOLE}", "gymnasium.action_names=[LEFT,LEFT]"], "two actions share a name"),
        (
            [f"game={CARTPOLE}", "+gymnasium.make_kwargs.no_such_option=1"],
            "gymnasium cannot make 'CartPole-v1'",
        ),
    ],
)
def test_bad_gymnasium_games_are_one_line_before_anything_is_written(capsys, tmp_path, args, message):
    capsys.readouterr()
    code = launcher_main(["generate", "config=gymnasium/random", f"output_dpath={tmp_path / 'out'}", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_an_env_that_names_no_actions_is_named_by_the_user(tmp_path):
    env = make_env("gymnasium:Blackjack-v1", 16, frame_skip=1, action_names=["noop", "action_primary"])
    assert env.action_names == ("NOOP", "ACTION_PRIMARY")
    env.close()


def test_genie_redux_g_embeds_every_action_its_data_takes(tmp_path):
    assert sized_for_actions({}, {"LEFT", "RIGHT"}) == {}  # the games before: the size models always had
    grown = sized_for_actions({"dynamics": {"dim": 64}}, {"LEFT", "DOWN_RIGHT"})
    assert grown == {"dynamics": {"dim": 64, "num_actions": NUM_ACTIONS}}
    assert (
        sized_for_actions({"dynamics": {"num_actions": 30}}, {"DOWN_RIGHT"})["dynamics"]["num_actions"] == 30
    )
    # a checkpoint saved with the first 8 actions loads as it was, and refuses data it never embedded
    torch.manual_seed(0)
    old = save_checkpoint(build("genie_redux_guided", "tiny"), tmp_path / "old")
    loaded = load_model(old)
    assert loaded.num_actions == FIRST_VOCABULARY_SIZE
    check_action_embedding(loaded, {"LEFT", "UP_LEFT"}, "model_dpath=old")
    with pytest.raises(Exception, match=r"also take \['DOWN_LEFT'\]"):
        check_action_embedding(loaded, {"LEFT", "DOWN_LEFT"}, "model_dpath=old")


@pytest.mark.slow
def test_training_on_a_gymnasium_store_grows_the_action_embedding(tmp_path):
    from tests.test_training_e2e import FAST

    store = tmp_path / "datasets" / "full"
    assert (
        generate(
            store,
            "game=gymnasium:ALE/Breakout-v5",
            "n_sessions=12",
            "+gymnasium.make_kwargs.full_action_space=true",
        )
        == 0
    )
    torch.manual_seed(0)
    tokenizer = save_checkpoint(build("tokenizer", "tiny"), tmp_path / "tokenizer")
    args = [
        "genie_redux", "train", "config=genie_redux_guided", *FAST, "train.dataset_name=full",
        f"train.dataset_root_dpath={tmp_path / 'datasets'}", f"tokenizer_dpath={tokenizer}",
        f"run_dpath={tmp_path / 'run'}", "train.num_train_steps=2", "train.validation.every_steps=0",
        "train.checkpoint.every_steps=2", "train.checkpoint.best_metric=val/loss",
    ]  # fmt: skip
    assert launcher_main(args) == 0
    model = load_model(tmp_path / "run" / "final_model")
    assert model.num_actions == NUM_ACTIONS
