"""The AutoExplore flow on a bundled game at a tiny budget: tiny GenieRedux-G -> `auto_explore train`
(3 epochs, one of them warm-up, with an evaluation) -> resume refuses nothing -> `auto_explore eval`
-> `generate config=retro_act/auto_explore_montezuma` with the trained policy, twice: same episodes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

TINY_TRAIN = [
    "collection.games=[MontezumaRevenge-Atari2600]", "common.epochs=3", "collection.train.config.num_envs=2",
    "collection.train.config.num_steps=16", "collection.max_episode_steps=30", "agent.size=tiny",
    "training.actor_critic.start_after=1", "training.actor_critic.steps_per_epoch=2",
    "training.actor_critic.batch_size=4", "training.actor_critic.sequence_length=8", "evaluation.every=2",
    "evaluation.num_steps=20", "checkpoint.best_window=1",
]  # fmt: skip


@pytest.mark.slow
def test_train_eval_generate_round_trip_on_a_bundled_game(tmp_path, monkeypatch, tiny_world_model_dpath):
    pytest.importorskip("stable_retro")
    from auto_explore.cli import main as auto_explore_main
    from data.episode_store import EpisodeStore
    from data_generation.cli import main as generate_main
    from envs.names import resolve_retro_game
    from envs.retro import require_rom

    require_rom(
        resolve_retro_game("MontezumaRevenge-Atari2600")
    )  # bundled: `run.py roms import` put it there
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    train_args = [f"world_model_dpath={tiny_world_model_dpath}", *TINY_TRAIN]
    assert auto_explore_main("train", train_args) == 0
    run_dpath = tmp_path / "outputs" / "auto_explore" / "run_001"
    rows = [json.loads(line) for line in (run_dpath / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert "loss" not in rows[0] and "loss" in rows[1]  # epoch 1 is warm-up: collection only
    assert all(row["recent_return_mean"] > 0.0 for row in rows[1:])  # the intrinsic reward flows
    evaluation = [json.loads(line) for line in (run_dpath / "eval.jsonl").read_text().splitlines()]
    assert [(row["epoch"], row["steps"]) for row in evaluation] == [(2, 20)]
    assert (run_dpath / "eval" / "epoch_0002_MontezumaRevenge-Atari2600_0.gif").is_file()
    # rerunning the finished run (upstream's resume_id) resumes from `last` and has nothing left to do
    assert auto_explore_main("train", [*train_args, "common.resume_id=1"]) == 0
    assert len((run_dpath / "metrics.jsonl").read_text().splitlines()) == 3

    assert auto_explore_main("eval", ["common.resume_id=1", "checkpoint=best_reward", "num_steps=15"]) == 0
    result = json.loads((run_dpath / "eval_best_reward.json").read_text())
    episode, random_episode = result["episodes"]  # the trained policy, then the random agent on its seed
    assert (episode["agent"], random_episode["agent"]) == ("trained", "random")
    assert episode["steps"] == 15 and episode["reward_return"] > 0.0

    stores = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["config=retro_act/auto_explore_montezuma", f"agent.checkpoint_dpath={run_dpath}", "n_sessions=2",
                "n_steps_max=12", "n_workers=1", "image_size=16", f"output_dpath={out}"]  # fmt: skip
        assert generate_main(None, args) == 0
        stores.append(EpisodeStore(out))
    records = stores[0].episodes
    assert len(records) == 2 and all(record.num_frames == 13 for record in records)
    first, second = (store.read_frames(records[0].episode_id, 0, 13) for store in stores)
    np.testing.assert_array_equal(first, second)
    one, other = (stores[0].read_actions(record.episode_id, 0, 12) for record in records)
    assert not np.array_equal(one, other)  # gamma and sampling: the two sessions play differently


@pytest.mark.slow
def test_coverage_counts_distinct_ram_states_for_both_agents(tmp_path, monkeypatch, tiny_world_model_dpath):
    pytest.importorskip("stable_retro")
    from agents.coverage import coverage_rows
    from auto_explore.cli import main as auto_explore_main

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    train = [
        f"world_model_dpath={tiny_world_model_dpath}",
        *TINY_TRAIN,
        "common.epochs=1",
        "evaluation.every=0",
    ]
    assert auto_explore_main("train", train) == 0
    run_dpath = tmp_path / "outputs" / "auto_explore" / "run_001"
    rows = coverage_rows(run_dpath, ["MontezumaRevenge-Atari2600", "Airstriker-Genesis"], num_steps=40)
    assert [(row["game"], row["agent"].split()[0]) for row in rows] == [
        ("MontezumaRevenge-Atari2600", "random"), ("MontezumaRevenge-Atari2600", "auto_explore"),
        ("Airstriker-Genesis", "random"), ("Airstriker-Genesis", "auto_explore"),
    ]  # fmt: skip
    for row in rows:  # 40 steps, episodes cut at 30: two episodes; per 10k = count * 250
        assert row["episodes"] == 2 and 250 <= row["distinct_states_per_10k"] <= 40 * 250
        # leaving the clock bytes out can only merge states; counters make raw RAM nearly always new
        assert row["distinct_states_per_10k"] <= row["distinct_raw_ram_per_10k"] <= 40 * 250
        assert row["clock_bytes"] >= 1


@pytest.mark.slow
def test_the_exploration_data_flow_end_to_end(tmp_path, tiny_world_model_dpath):
    """Item 7 of the AutoExplore issue, at a tiny budget, through experiments/auto_explore_data.py: world
    model -> train -> eval -> coverage -> random / AutoExplore / test data -> tokenizer then GenieRedux-G
    fine-tuned on each agent's data -> both evaluated on the third policy's test set. The project's
    record (docs/, benchmarks/) stays untouched by a run that writes its results elsewhere."""
    pytest.importorskip("stable_retro")
    from safetensors.torch import load_file

    from experiments import auto_explore_data
    from models.checkpoint import final_model_dpath, weights_fpath

    recorded = [auto_explore_data.REPO_DPATH / f for f in ("benchmarks/RESULTS.md", "docs/auto_explore.md")]
    before = [fpath.read_bytes() for fpath in recorded]
    out, results = tmp_path / "out", tmp_path / "results"
    args = [f"--world-model-dpath={tiny_world_model_dpath}", "--games", "MontezumaRevenge-Atari2600",
            "--variants", "auto_explore", "rnd", "--seeds", "0", "--epochs=2", "--num-envs=2", "--steps-per-epoch=16", "--eval-steps=10", "--agent-size=tiny",
            "--coverage-steps=30", "--sessions=2", "--test-sessions=1", "--steps-max=20",
            "--tokenizer-finetune-steps=2", "--finetune-steps=2", "--num-sequences=1",
            f"--output-dpath={out}", f"--results-dpath={results}"]  # fmt: skip
    assert auto_explore_data.main(args) == 0
    assert [fpath.read_bytes() for fpath in recorded] == before

    report = json.loads((results / "auto_explore_data.json").read_text())
    figures = report["figures"]
    assert [(row["game"], row["agent"]) for row in figures["coverage"]] == [
        ("MontezumaRevenge-Atari2600", "random"), ("MontezumaRevenge-Atari2600", "auto_explore"),
        ("MontezumaRevenge-Atari2600", "rnd"),
    ]  # fmt: skip
    assert figures["data_agent"] == "auto_explore, seed 0"  # RND is compared, never the AutoExplore data
    stores = figures["stores"]
    assert stores["random"]["episodes"] == stores["auto_explore"]["episodes"] == 2  # equal amounts of data
    assert stores["sticky_random_test"]["episodes"] == 1
    evaluated = {(row["model"], row["data"], row["method"]) for row in figures["rows"] if row["psnr"] > 5}
    for model in ("finetune_random", "finetune_auto_explore"):
        assert {(model, "sticky_random_test", m) for m in ("one_go", "autoregressive")} <= evaluated
    assert (
        "world_model",
        "auto_explore",
        "autoregressive",
    ) in evaluated  # the model's error on each agent's data

    original = load_file(str(weights_fpath(tiny_world_model_dpath)))
    for train_set in (
        "random",
        "auto_explore",
    ):  # both stages ran: the dynamics reads the fine-tuned tokenizer
        tokenizer = load_file(str(weights_fpath(final_model_dpath(out / f"finetune_{train_set}_tokenizer"))))
        dynamics = load_file(str(weights_fpath(final_model_dpath(out / f"finetune_{train_set}"))))
        assert all(torch.equal(dynamics[f"tokenizer.{name}"], tensor) for name, tensor in tokenizer.items())
        assert any(
            not torch.equal(tensor, original[f"tokenizer.{name}"]) for name, tensor in tokenizer.items()
        )
        assert any(
            not torch.equal(dynamics[name], original[name])
            for name in original
            if name.startswith("dynamics.")
        )
