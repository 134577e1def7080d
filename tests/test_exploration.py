"""What exploration stands on: the rooms game, its scripted tour, RND, and the reward remedies (agents/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import agent_config


def rooms_config(run_dpath: Path, **overrides) -> object:
    """The agent config on the rooms game, a few seconds of training; overrides as {'dotted.key': value}."""
    tiny = {
        "collection.games": ["synthetic-rooms"], "collection.levels": None, "collection.image_size": 32,
        "collection.max_episode_steps": 50, "collection.train.config.num_envs": 4,
        "collection.train.config.num_steps": 16, "agent.size": "tiny", "training.actor_critic.sequence_length": 8,
        "training.actor_critic.batch_size": 8, "checkpoint.every": 1, "checkpoint.best_window": 4,
        "common.epochs": 2, "common.seed": 0, "reward.type": "rnd",
    }  # fmt: skip
    return agent_config(run_dpath, {**tiny, **overrides})


def test_the_rooms_game_keeps_a_random_agent_in_its_first_room():
    from agents.episodes import play_episodes, seeds_like_generation
    from agents.random_policy import RandomPolicy
    from envs import make_env
    from envs.rooms import CELLS, DOOR_ROW, ROOMS, START_CELLS, locate, safe_path

    for start in START_CELLS:  # every start can reach the door without lava, and every room the next
        assert safe_path(0, start, (DOOR_ROW, CELLS - 1))
    assert all(safe_path(room, (DOOR_ROW, 0), (DOOR_ROW, CELLS - 1)) for room in range(1, ROOMS - 1))
    env = make_env("synthetic-rooms", 32, frame_skip=1)
    rooms, lengths = set(), []
    for transition in play_episodes(
        env, RandomPolicy(4), seeds_like_generation(0, "rooms"), 200, num_steps=3000
    ):
        assert locate(transition.next_observation) == env.state  # the frame shows where the avatar is
        rooms.add(env.coverage_keys()["region"])
        if transition.is_last:
            lengths.append(transition.t + 1)
    assert rooms <= {0, 1} and np.mean(lengths) < 60  # lava ends episodes early; the doors are hard to find
    first, _ = env.reset(seed=3)
    assert np.array_equal(first, env.reset(seed=3)[0])  # a function of the seed
    env.close()


def test_the_tour_visits_every_room(tmp_path):
    from data.episode_store import EpisodeStore
    from data_generation.cli import main as generate_main
    from envs.rooms import ROOMS, locate

    out = tmp_path / "tour"
    assert (
        generate_main(
            None, ["config=synthetic/rooms_tour", "n_sessions=24", "n_workers=1", f"output_dpath={out}"]
        )
        == 0
    )
    store = EpisodeStore(out)
    rooms = {
        locate(frame)[0]
        for record in store.episodes
        for frame in store.read_frames(record.episode_id, 0, record.num_frames)
    }
    assert rooms == set(range(ROOMS))


def test_rnd_pays_for_unseen_frames_and_stops_paying_for_familiar_ones():
    from agents.rewards import RandomNetworkDistillationReward
    from envs.rooms import room_background
    from envs.vector import VecStep

    torch.manual_seed(0)
    source = RandomNetworkDistillationReward(32, "cpu")
    familiar = np.stack([room_background(0)] * 4)  # [4, 32, 32, 3]
    step = VecStep(familiar, np.zeros(4, np.float32), np.zeros(4, bool))
    first = source(np.zeros(4, dtype=np.int64), step).mean()
    for _ in range(200):
        last = source(np.zeros(4, dtype=np.int64), step).mean()
    unseen = np.stack([room_background(3)] * 4)
    state = source.state_tensors()
    novel = source(
        np.zeros(4, dtype=np.int64), VecStep(unseen, np.zeros(4, np.float32), np.zeros(4, bool))
    ).mean()
    assert last < 0.2 * first and novel > 3 * last
    restored = RandomNetworkDistillationReward(32, "cpu")
    restored.load_state_tensors(state)
    again = restored(
        np.zeros(4, dtype=np.int64), VecStep(unseen, np.zeros(4, np.float32), np.zeros(4, bool))
    ).mean()
    assert again == pytest.approx(novel, rel=1e-6)  # a resumed run scores exactly as the uninterrupted one


def test_reward_shaping_normalises_by_the_return_scale_and_centres_on_the_mean():
    from agents.reward_shaping import RewardShaping

    generator = torch.Generator().manual_seed(0)
    big = [100.0 + 10.0 * torch.rand(8, generator=generator) for _ in range(300)]
    normalised = RewardShaping(8, normalize=True, center=False, gamma=0.99)
    out = torch.stack([normalised(r) for r in big])
    assert (
        out[-50:].mean() < 0.05 * big[-1].mean()
    )  # the scale is gone: a return of ~100 / (1 - gamma) divides it
    centred = RewardShaping(8, normalize=False, center=True, gamma=0.99)
    out = torch.stack([centred(r) for r in big])
    assert abs(float(out[-100:].mean())) < 1.0  # a step earns only what it has above the usual step
    plain = RewardShaping(8, normalize=False, center=False, gamma=0.99)
    assert torch.equal(plain(big[0]), big[0].float())  # the paper's: untouched
    restored = RewardShaping(8, normalize=True, center=True, gamma=0.99)
    both = RewardShaping(8, normalize=True, center=True, gamma=0.99)
    for r in big[:10]:
        both(r)
    restored.load_state_tensors(both.state_tensors())
    assert torch.equal(restored(big[10]), both(big[10]))


def test_non_episodic_returns_run_across_episode_ends(tmp_path):
    """With reward.episodic false the collector hands returns no episode ends, so a value bootstraps across
    them; the LSTM still starts each episode afresh."""
    from agents.returns import lambda_returns
    from agents.trainer import AgentTrainer

    rewards, values = torch.ones(4, 1), torch.full((5, 1), 10.0)
    cut = lambda_returns(rewards, values, torch.tensor([[False], [True], [False], [False]]), 0.9, 0.0)
    runs_on = lambda_returns(rewards, values, torch.zeros(4, 1, dtype=torch.bool), 0.9, 0.0)
    assert cut[1, 0] == 1.0 and runs_on[1, 0] == pytest.approx(1.0 + 0.9 * 10.0)
    for is_episodic in (True, False):
        config = rooms_config(
            tmp_path / f"run_{is_episodic}", **{"reward.episodic": is_episodic, "reward.type": "none"}
        )
        trainer = AgentTrainer(config, tmp_path / f"run_{is_episodic}")
        rollout, tally = trainer.collector.collect(trainer.model, 0.0, trainer.generator, torch.device("cpu"))
        assert tally.lengths  # some episodes ended inside the rollout
        assert bool(rollout.dones.any()) is is_episodic
        assert bool(rollout.firsts[1:].any())  # episode starts are still marked for the LSTM
        trainer.close()


def test_rnd_and_the_remedies_resume_exactly(tmp_path):
    """Reward-shaping statistics and RND's predictor are checkpointed: a run killed after epoch 2 and resumed
    makes the update the uninterrupted run made."""
    from agents.trainer import AgentTrainer

    remedies = {"reward.normalize": True, "reward.center": True, "reward.episodic": False}
    straight = AgentTrainer(rooms_config(tmp_path / "a", **remedies, **{"common.epochs": 3}), tmp_path / "a")
    straight.run()
    straight.close()
    first = AgentTrainer(rooms_config(tmp_path / "b", **remedies), tmp_path / "b")
    first.run()
    first.close()
    resumed = AgentTrainer(rooms_config(tmp_path / "b", **remedies, **{"common.epochs": 3}), tmp_path / "b")
    resumed.run()
    resumed.close()
    expected = {n: p.detach() for n, p in straight.model.named_parameters()}
    assert all(torch.equal(expected[n], p.detach()) for n, p in resumed.model.named_parameters())
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    straight_rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["reward_return_mean"] == straight_rows[-1]["reward_return_mean"]


ROOMS_WORLD_MODEL_DPATH = (
    Path(__file__).resolve().parents[1] / "play" / "pretrained" / "rooms_32px" / "world_model"
)
CI_AGENT_EPOCHS = 24  # the record's agents train 40; these reach the far rooms by ~epoch 20
CI_COVERAGE_STEPS = 5000
CI_ROOM_MARGIN = 2  # rooms beyond the random agent's


@pytest.mark.slow
def test_autoexplore_leaves_the_first_room_because_its_reward_pays_for_it(tmp_path):
    """AutoExplore's mechanism where the world model is good (the bundled rooms-game model: ROC AUC 0.78
    for unseen frames): rewarded by that model's uncertainty (the survival-neutral form), the agent reaches
    rooms a random agent never does in the same steps; the same budget with entropy alone
    (`reward.type=none`) does not, so the reward is what drives it. Commands and counts are the rooms
    flow's own (experiments/exploration_game.py), at a CI budget."""
    from experiments import exploration_game
    from pipelines.runner import CommandRunner

    (tmp_path / "world_model").symlink_to(ROOMS_WORLD_MODEL_DPATH, target_is_directory=True)
    budget = exploration_game.Budget(epochs=CI_AGENT_EPOCHS, coverage_steps=CI_COVERAGE_STEPS, seeds=(0,))
    variants = ("auto_explore_neutral", "entropy_only")
    runner = CommandRunner(tmp_path / "commands.log", threads_per_job=1)
    runner.run_chains({v: exploration_game.agent_chain(tmp_path, budget, v, 0) for v in variants}, jobs=2)
    rooms = {
        row["agent"]: row["rooms"] for row in exploration_game.coverage_summary(tmp_path, budget, variants)
    }
    assert rooms["auto_explore_neutral"] >= rooms["random"] + CI_ROOM_MARGIN, rooms
    assert rooms["entropy_only"] < rooms["random"] + CI_ROOM_MARGIN, rooms
