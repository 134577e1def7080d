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
    from data_generation.envs.retro import require_rom
    from data_generation.names import resolve_retro_game

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
    assert (run_dpath / "eval" / "epoch_0002_MontezumaRevenge-Atari2600.gif").is_file()
    # rerunning the finished run (upstream's resume_id) resumes from `last` and has nothing left to do
    assert auto_explore_main("train", [*train_args, "common.resume_id=1"]) == 0
    assert len((run_dpath / "metrics.jsonl").read_text().splitlines()) == 3

    assert auto_explore_main("eval", ["common.resume_id=1", "checkpoint=best_reward", "num_steps=15"]) == 0
    result = json.loads((run_dpath / "eval_best_reward.json").read_text())
    (episode,) = result["episodes"]
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
    from auto_explore.cli import main as auto_explore_main
    from auto_explore.coverage import coverage_rows

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
