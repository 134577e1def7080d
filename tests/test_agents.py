"""The actor-critic core (agents/): returns, LSTM state handling, learning, resume, the policy agent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.actor_critic import build_actor_critic
from agents.config import parse_config
from agents.returns import advantages, lambda_returns
from agents.rollout import cut_sequences
from agents.trainer import AgentTrainer
from common.errors import UserError
from tests.conftest import agent_config

CONFIG_FPATH = Path(__file__).resolve().parent.parent / "agents" / "configs" / "train" / "coinrun.yaml"


def tiny_config(run_dpath: Path, **overrides) -> object:
    """The CoinRun config shrunk to a few seconds; overrides as {'dotted.key': value}."""
    tiny = {
        "collection.games": ["synthetic-cue"], "collection.train.config.num_envs": 8, "collection.image_size": 16,
        "collection.levels": None, "agent.size": "tiny", "collection.train.config.num_steps": 16,
        "training.actor_critic.sequence_length": 8, "training.actor_critic.batch_size": 8,
        "training.actor_critic.learning_rate": 0.003, "training.actor_critic.gamma": 0.9, "checkpoint.every": 1,
        "checkpoint.best_window": 16, "common.epochs": 2, "common.seed": 0,
    }  # fmt: skip
    return agent_config(run_dpath, {**tiny, **overrides})


def test_lambda_returns_match_hand_computation():
    rewards = torch.tensor([1.0, 0.0, 2.0])
    values = torch.tensor([0.5, 1.0, -1.0, 3.0])  # V(s_0..s_3)
    dones = torch.tensor([False, True, False])
    gamma, lam = 0.9, 0.5
    g2 = 2.0 + gamma * 3.0  # bootstraps from V(s_3)
    g1 = 0.0  # the episode ended at step 1: nothing after it counts
    g0 = 1.0 + gamma * ((1 - lam) * 1.0 + lam * g1)
    returns = lambda_returns(rewards, values, dones, gamma, lam)
    assert torch.allclose(returns, torch.tensor([g0, g1, g2]))
    adv, _ = advantages(rewards, values, dones, gamma, lam)
    assert torch.allclose(adv, torch.tensor([g0 - 0.5, g1 - 1.0, g2 + 1.0]))


def test_gae_limits_are_td0_and_monte_carlo():
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(6, 3, generator=generator), torch.rand(7, 3, generator=generator)
    dones = torch.zeros(6, 3, dtype=torch.bool)
    td0 = lambda_returns(rewards, values, dones, 0.99, 0.0)
    assert torch.allclose(td0, rewards + 0.99 * values[1:])
    monte_carlo = lambda_returns(rewards, values, dones, 0.99, 1.0)
    discounts = 0.99 ** torch.arange(6.0)
    expected0 = (rewards * discounts[:, None]).sum(0) + 0.99**6 * values[-1]
    assert torch.allclose(monte_carlo[0], expected0)


def test_sampled_actions_follow_the_behaviour_policy():
    """One draw per row through the inverse CDF: frequencies match the probabilities, epsilon mixes in
    the uniform policy, and the same draws give the same actions (each caller owns its random stream)."""
    from agents.actor_critic import action_probabilities, sample_actions

    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]]).expand(20_000, -1)
    uniforms = torch.rand(20_000, generator=torch.Generator().manual_seed(0))
    for temperature, epsilon in ((1.0, 0.0), (0.5, 0.0), (1.0, 0.3), (1.0, 1.0)):
        actions, probs = sample_actions(logits, temperature, epsilon, uniforms)
        expected = action_probabilities(logits[:1], temperature, epsilon)[0]
        assert torch.allclose(probs[0], expected)
        frequencies = torch.bincount(actions, minlength=4).float() / len(actions)
        assert torch.allclose(frequencies, expected, atol=0.01), (temperature, epsilon, frequencies)
    assert torch.equal(
        sample_actions(logits, 1.0, 0.1, uniforms)[0], sample_actions(logits, 1.0, 0.1, uniforms)[0]
    )
    edge = sample_actions(logits[:2], 1.0, 0.0, torch.tensor([0.0, 1.0 - 1e-9]))[0]
    assert edge.tolist() == [0, 3]  # both ends of [0, 1) map to real actions


def test_unroll_equals_stepping_and_resets_at_episode_starts():
    torch.manual_seed(0)
    model = build_actor_critic(3, 16, "tiny")
    frames = torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8)
    firsts = torch.tensor([[False, False, True, False, False], [False] * 5])
    state = (torch.randn(2, 32), torch.randn(2, 32))
    logits, values, _ = model.unroll(frames, state, firsts)
    step_state = state
    for t in range(5):
        step_logits, step_values, step_state = model.step(frames[:, t], step_state, firsts[:, t])
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5)
        assert torch.allclose(step_values, values[:, t], atol=1e-5)
    # after the episode start at t=2, env 0 no longer depends on the state it came in with
    other, _, _ = model.unroll(frames, (torch.randn(2, 32), torch.randn(2, 32)), firsts)
    assert torch.allclose(other[0, 2:], logits[0, 2:], atol=1e-6)
    assert not torch.allclose(other[1, 2:], logits[1, 2:], atol=1e-6)


def test_sequences_cut_from_a_rollout_start_from_the_collection_state(tmp_path):
    trainer = AgentTrainer(tiny_config(tmp_path / "run"), tmp_path / "run")
    model = trainer.model
    rollout, _ = trainer.collector.collect(model, 0.0, trainer.generator, torch.device("cpu"))
    rollout, _ = trainer.collector.collect(
        model, 0.0, trainer.generator, torch.device("cpu")
    )  # starts mid-episode
    batch = cut_sequences(rollout, torch.tensor([1, 5]), torch.tensor([3, 8]), 8)
    with torch.no_grad():
        _, values, _ = model.unroll(batch.frames, batch.state, batch.firsts)
    expected = torch.stack([rollout.values[3:12, 1], rollout.values[8:17, 5]])
    assert torch.allclose(values, expected, atol=1e-5)
    trainer.close()


@pytest.mark.parametrize("algorithm", ["ppo", "actor_critic"])
def test_trainer_learns_the_rewarded_action(tmp_path, algorithm):
    config = tiny_config(tmp_path / "run", **{"training.actor_critic.algorithm": algorithm, "common.epochs": 20,
                                               "training.actor_critic.steps_per_epoch": 4, "checkpoint.every": 20})  # fmt: skip
    trainer = AgentTrainer(config, tmp_path / "run")
    trainer.run()
    trainer.close()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0]["return_mean"], rows[-1]["return_mean"]
    assert first < 8.0  # a uniform policy earns 16/3 per 16-step episode
    assert last > 13.0, (first, last)  # the best policy earns 16
    assert (tmp_path / "run" / "checkpoints" / "best_reward" / "model.safetensors").is_file()


def parameters(trainer: AgentTrainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}


@pytest.mark.parametrize("game", ["synthetic-cue", "coinrun"])
def test_resume_gives_the_same_next_update(tmp_path, game):
    overrides = {
        "collection.games": [game],
        "collection.levels": [0, 1000] if game == "coinrun" else None,
        "collection.train.config.num_envs": 2,
    }
    straight = AgentTrainer(tiny_config(tmp_path / "a", **overrides, **{"common.epochs": 3}), tmp_path / "a")
    straight.run()
    straight.close()
    first = AgentTrainer(tiny_config(tmp_path / "b", **overrides), tmp_path / "b")
    first.run()  # 2 epochs, checkpoint `last`; the process "dies" here
    first.close()
    resumed = AgentTrainer(tiny_config(tmp_path / "b", **overrides, **{"common.epochs": 3}), tmp_path / "b")
    assert resumed.epoch == 2
    resumed.run()
    resumed.close()
    expected, got = parameters(straight), parameters(resumed)
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    rows = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


@pytest.mark.parametrize(
    "damage",
    [("model.safetensors", b"\x00" * 10), ("config.yaml", b"kind: [\x00"), ("trainer_state.json", b"{")],
)
def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(tmp_path, damage):
    """A truncated weights file or a config.yaml that is not YAML in `last`: resume warns naming the file and
    continues from `previous` (the checkpoint `last` replaced); loading it for play is one line."""
    from agents.checkpoint import load_policy

    run_dpath = tmp_path / "run"
    trainer = AgentTrainer(tiny_config(run_dpath, **{"common.epochs": 3}), run_dpath)
    trainer.run()
    trainer.close()
    checkpoints = run_dpath / "checkpoints"
    assert json.loads((checkpoints / "previous" / "trainer_state.json").read_text())["epoch"] == 2
    name, payload = damage
    (checkpoints / "last" / name).write_bytes(payload)
    with pytest.warns(UserWarning, match=f"last.*{name.split('.')[0]}.*before it"):
        resumed = AgentTrainer(tiny_config(run_dpath, **{"common.epochs": 4}), run_dpath)
    assert resumed.epoch == 2
    resumed.close()
    with pytest.raises(UserError, match=f"{name}.*(damaged|not)"):
        load_policy(checkpoints / "last")


def test_a_run_folder_refuses_another_config(tmp_path):
    AgentTrainer(tiny_config(tmp_path / "run"), tmp_path / "run").close()
    with pytest.raises(UserError, match="another config"):
        AgentTrainer(
            tiny_config(tmp_path / "run", **{"training.actor_critic.learning_rate": 0.1}), tmp_path / "run"
        )


def test_config_keys_are_all_known_and_present(tmp_path):
    values = yaml.safe_load(CONFIG_FPATH.read_text())
    parse_config(values)
    values["training"]["actor_critic"]["learnig_rate"] = 0.1
    with pytest.raises(UserError, match="learnig_rate"):
        parse_config(values)


def test_the_agent_stack_reads_one_tree_and_old_spellings_with_a_notice(tmp_path, monkeypatch, capsys):
    """`agent train` and `auto_explore train` compose the same tree; pre-rename keys still mean the same."""
    from agents.cli import CONFIG_DPATH, train_config
    from auto_explore.cli import CONFIG_DPATH as AUTO_EXPLORE_CONFIG_DPATH

    monkeypatch.chdir(tmp_path)
    old = train_config(CONFIG_DPATH, "coinrun", ["env.num_envs=3", "training.learning_rate=0.01"])
    assert old.steps.num_envs == 3 and old.actor_critic.learning_rate == 0.01
    assert "env.num_envs is deprecated, use collection.train.config.num_envs" in capsys.readouterr().err
    assert old.run_dpath == str(tmp_path / "outputs" / "agents" / "coinrun" / "run_001")
    explore = train_config(
        AUTO_EXPLORE_CONFIG_DPATH, "default", ["world_model_dpath=x", "collection.image_size=32"]
    )
    assert type(explore) is type(old) and explore.reward.type == "world_model"
    assert explore.run_dpath == str(tmp_path / "outputs" / "auto_explore" / "run_001")
    with pytest.raises(UserError, match="no run folder"):
        train_config(AUTO_EXPLORE_CONFIG_DPATH, "default", ["world_model_dpath=x", "common.resume_id=4"])


def test_level_ranges_are_disjoint_and_used_by_every_config():
    from envs.coinrun import LEVEL_RANGES, MAX_LEVEL, episode_level

    spans = sorted((start, start + count) for start, count in LEVEL_RANGES.values())
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))
    assert spans[-1][1] <= MAX_LEVEL
    configs = Path(__file__).resolve().parent.parent / "data_generation" / "configs" / "coinrun"
    expected = {"random": "data_train", "trained_agent": "data_train", "random_test": "data_test",
                "trained_agent_test": "data_test"}  # fmt: skip
    for name, range_name in expected.items():
        assert (
            tuple(yaml.safe_load((configs / f"{name}.yaml").read_text())["levels"])
            == LEVEL_RANGES[range_name]
        )
    assert (
        tuple(yaml.safe_load(CONFIG_FPATH.read_text())["collection"]["levels"]) == LEVEL_RANGES["agent_train"]
    )
    start, count = LEVEL_RANGES["data_test"]
    assert all(start <= episode_level(seed, (start, count)) < start + count for seed in (0, 7, 2**62 + 5))


def test_coinrun_vec_env_plays_only_its_levels():
    pytest.importorskip("procgen")
    from envs import make_vec_env

    env = make_vec_env("coinrun", 4, 32, seed=0, levels=(500, 3))
    env.reset()
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        env.step(rng.integers(7, size=4))
        seen |= {info["level_seed"] for info in env._procgen.get_info()}
    env.close()
    assert seen <= {500, 501, 502} and len(seen) >= 2


def test_policy_agent_episodes_are_reproducible_from_their_seed(tmp_path):
    pytest.importorskip("procgen")
    from data_generation.recorder import record_episode
    from data_generation.variants import build_policy
    from envs import make_env

    config = tiny_config(tmp_path / "run", **{"collection.games": ["coinrun"], "collection.levels": [0, 1000],
                                              "common.epochs": 1, "collection.train.config.num_envs": 2})  # fmt: skip
    AgentTrainer(config, tmp_path / "run").run()
    options = {
        "checkpoint_dpath": str(tmp_path / "run" / "checkpoints" / "last"),
        "gamma": 0.15,
        "temperature": 1.0,
    }
    env = make_env("coinrun", 64, frame_skip=1, levels=(1_000_000_000, 1_000_000_000))
    agent = build_policy(
        "policy", env.action_space.n, options
    )  # the agent sees 16 px frames, resized from 64
    one, two = (record_episode(env, agent, seed=11, n_steps_max=40) for _ in range(2))
    other = record_episode(env, agent, seed=12, n_steps_max=40)
    assert np.array_equal(one.actions, two.actions) and np.array_equal(one.frames, two.frames)
    assert not np.array_equal(one.frames, other.frames)
    with pytest.raises(UserError, match="checkpoint_dpath"):
        build_policy("policy", 7, {})


@pytest.mark.slow
def test_train_then_generate_round_trip_on_coinrun(tmp_path, monkeypatch):
    pytest.importorskip("procgen")
    from agents.cli import main as agent_main
    from data.episode_store import EpisodeStore
    from data_generation.cli import main as generate_main

    monkeypatch.chdir(tmp_path)
    run_dpath = tmp_path / "agent"
    assert agent_main("train", [f"run_dpath={run_dpath}", "common.epochs=2", "collection.train.config.num_envs=2",
                                "collection.image_size=16", "agent.size=tiny", "collection.train.config.num_steps=16",
                                "training.actor_critic.batch_size=4",
                                "checkpoint.best_window=1"]) == 0  # fmt: skip
    assert (run_dpath / "checkpoints" / "last" / "model.safetensors").is_file()
    eval_args = [
        f"run_dpath={run_dpath}",
        "checkpoint=last",
        "num_episodes=3",
        "num_gifs=1",
    ]
    assert agent_main("eval", eval_args) == 0
    result = json.loads((run_dpath / "eval_last.json").read_text())
    assert [row["agent"] for row in result["rows"]] == ["trained", "random"]
    assert all(row["episodes"] == 3 and 0 <= row["mean_return"] <= 10 for row in result["rows"])
    assert [e["seed"] for e in result["episodes"] if e["agent"] == "trained"] == [
        0,
        1,
        2,
    ]  # test levels 0, 1, 2
    assert (run_dpath / "eval" / "last_coinrun_0.gif").is_file()
    out = tmp_path / "data"
    assert generate_main(None, ["config=coinrun/trained_agent", f"agent.checkpoint_dpath={run_dpath}", "n_sessions=2",
                                "n_steps_max=12", "n_workers=1", f"output_dpath={out}"]) == 0  # fmt: skip
    records = EpisodeStore(out).episodes
    assert len(records) == 2
    assert all(1 < record.num_frames <= 13 for record in records)


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_finishes_with_contiguous_metrics(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    run_dpath = tmp_path / "run"
    args = [sys.executable, str(repo / "run.py"), "agent", "train", f"run_dpath={run_dpath}", "collection.games=[synthetic-cue]",
            "collection.levels=null", "collection.train.config.num_envs=4", "collection.image_size=16", "agent.size=tiny",
            "collection.train.config.num_steps=16", "training.actor_critic.batch_size=4", "checkpoint.every=3", "checkpoint.best_window=4", "common.epochs=12"]  # fmt: skip
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (run_dpath / "checkpoints" / "last").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resumed" in finished.stdout
    epochs = [json.loads(line)["epoch"] for line in (run_dpath / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 13))
    state = json.loads((run_dpath / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 12


def test_generate_with_policy_but_no_checkpoint_stops_before_anything_is_written(tmp_path):
    pytest.importorskip("procgen")
    from data_generation.cli import main as generate_main

    out = tmp_path / "data"
    args = [
        "config=coinrun/trained_agent",
        "n_sessions=2",
        "n_steps_max=4",
        "n_workers=1",
        f"output_dpath={out}",
    ]
    with pytest.raises(UserError, match="needs agent.checkpoint_dpath"):
        generate_main(None, args)
    with pytest.raises(UserError, match="does not exist"):
        generate_main(None, [*args, f"agent.checkpoint_dpath={tmp_path / 'none'}"])
    assert not out.exists()  # no lock file, no shards/: the check ran before the run started


def test_coverage_counts_distinct_screens_levels_and_coins():
    pytest.importorskip("procgen")
    from agents.coverage import coverage_env, measure, screen_key
    from agents.random_policy import RandomPolicy

    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    assert screen_key(frame) == screen_key(frame + 3)  # below the 3-bit quantisation step: the same screen
    assert screen_key(frame) != screen_key(frame + 64)
    env = coverage_env("coinrun", 64, frame_skip=1)
    figures = measure(env, RandomPolicy(7), "coinrun", num_steps=300, seed=0)
    assert figures["env_steps"] == 300
    assert 1 <= figures["levels_per_10k"] * 300 / 10_000 <= figures["episodes"]  # one level per episode
    assert 1 < figures["distinct_screens_per_10k"] * 300 / 10_000 <= 300
    assert figures == measure(
        env, RandomPolicy(7), "coinrun", num_steps=300, seed=0
    )  # a function of the seed
    env.close()
