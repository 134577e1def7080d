"""The agent trainer over 2 processes (Lightning Fabric DDP, gloo on CPU), started by the launcher.

Each process steps its own envs from its own seed, gradients are all-reduced (a checkpoint is written
only when every process holds the same weights), rank 0 alone writes metrics and checkpoints, and a
resumed 2-process run continues each process's own envs onto the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from agents.config import ADDED_KEYS, upgrade_saved_config
from agents.trainer import AgentTrainer
from common.errors import UserError
from tests.test_agents import tiny_config

REPO_DPATH = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GENIE_REDUX_NO_BOOTSTRAP": "1"}
NUM_ENVS, NUM_STEPS = 4, 16
TINY = [
    "collection.games=[synthetic-cue]", f"collection.train.config.num_envs={NUM_ENVS}", "collection.image_size=16",
    "collection.levels=null", "agent.size=tiny", f"collection.train.config.num_steps={NUM_STEPS}",
    "training.actor_critic.sequence_length=8", "training.actor_critic.batch_size=8", "checkpoint.every=1",
    "checkpoint.best_window=4", "common.seed=0", "common.num_processes=2",
]  # fmt: skip


def launch(run_dpath: Path, epochs: int) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_DPATH / "run.py"), "agent", "train", *TINY, f"common.epochs={epochs}",
               f"run_dpath={run_dpath}"]  # fmt: skip
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def metric_rows(run_dpath: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dpath / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_own_envs_synced_weights_rank0_writes_and_resume_is_exact(
    tmp_path, one_process_group_at_a_time
):
    straight = tmp_path / "straight"
    result = launch(straight, epochs=3)
    assert "launching 2 processes" in result.stdout
    rows = metric_rows(straight)
    assert [row["epoch"] for row in rows] == [1, 2, 3]  # one row per epoch: rank 0 writes, alone
    per_epoch = 2 * NUM_ENVS * NUM_STEPS  # both processes' env steps count
    assert [row["env_steps"] for row in rows] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    last = straight / "checkpoints" / "last"
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["num_processes"] == 2
    rank0, rank1 = load_file(last / "collector.safetensors"), load_file(last / "collector_rank1.safetensors")
    assert not torch.equal(rank0["frames"], rank1["frames"])  # each process plays its own envs
    assert not torch.equal(rank0["generator"], rank1["generator"])  # ... with its own seed

    resumed = tmp_path / "resumed"
    launch(resumed, epochs=2)  # the run "dies" after epoch 2
    result = launch(resumed, epochs=3)
    assert "resumed" in result.stdout
    assert [row["epoch"] for row in metric_rows(resumed)] == [1, 2, 3]
    expected = load_file(last / "model.safetensors")
    got = load_file(resumed / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_several_processes_need_the_launcher(tmp_path):
    config = tiny_config(tmp_path / "run", **{"common.num_processes": 2})
    with pytest.raises(UserError, match="needs the launcher"):
        AgentTrainer(config, tmp_path / "run")
    with pytest.raises(UserError, match="num_processes must be >= 1"):
        AgentTrainer(tiny_config(tmp_path / "run", **{"common.num_processes": 0}), tmp_path / "run")


def test_a_run_saved_before_the_new_keys_resumes_under_their_defaults(tmp_path):
    config = tiny_config(tmp_path / "run", **{"common.epochs": 1})
    first = AgentTrainer(config, tmp_path / "run")
    first.run()
    first.close()
    saved = tmp_path / "run" / "config.yaml"
    values = yaml.safe_load(saved.read_text())
    del values["common"]["num_processes"]
    del values["collection"]["train"]["config"]["world_model_precision"]
    saved.write_text(yaml.safe_dump(values, sort_keys=False))
    upgraded = upgrade_saved_config(values)
    for path, default in ADDED_KEYS.items():
        section = upgraded
        for part in path:
            section = section[part]
        assert section == default
    assert "num_processes" not in values["common"]  # the reader's dict is not changed in place
    trainer = AgentTrainer(tiny_config(tmp_path / "run", **{"common.epochs": 2}), tmp_path / "run")
    assert trainer.epoch == 1
    trainer.close()
