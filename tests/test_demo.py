"""The README's main job, end to end at toy scale: every stack chained through the launcher."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DPATH = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_every_step_and_resumes(tmp_path):
    out = tmp_path / "demo"
    args = [
        sys.executable, str(REPO_DPATH / "run.py"), "demo", f"output_dpath={out}", "image_size=16",
        "generate.n_sessions=3", "generate.n_steps_max=40",
        "tokenizer.num_train_steps=12", "tokenizer.batch_size=4",
        "dynamics.num_train_steps=12", "dynamics.batch_size=4", "eval.num_sequences=4",
        "eval.response_frames=2", "eval.drift_frames=10", "++dynamics.model.tdce_weight=2.5",
    ]  # fmt: skip
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "demo finished" in first.stdout
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in first.stdout

    replication = json.loads((out / "genie_redux_guided" / "eval" / "results.json").read_text())
    assert replication["mode"] == "replication"
    assert math.isfinite(replication["metrics"]["psnr"]) and replication["metrics"]["psnr"] > 5
    assert replication["metrics"]["fid"] is None  # no Inception weights offline: null, never made up
    from models.checkpoint import read_config

    assert (
        read_config(out / "genie_redux_guided" / "final_model")["dynamics"]["tdce_weight"] == 2.5
    )  # the knob
    control = json.loads((out / "genie_redux_guided" / "control" / "results.json").read_text())
    assert control["mode"] == "control"
    assert (out / "genie_redux_guided" / "eval" / "report.html").is_file()
    assert f"{replication['metrics']['psnr']:.3f}" in first.stdout  # the summary prints the real number
    response = replication["play"]["action_response"]
    assert f"action MSE {response['action_mse']:.5f}" in first.stdout  # the keys' figure, printed
    assert set(replication["play"]["drift"]) and "long play, " in first.stdout
    play_line = first.stdout.strip().splitlines()[-1]  # ends with the command that plays this model
    assert (
        play_line
        == f"$ python run.py play model_dpath={out}/genie_redux_guided dataset_dpath={out}/datasets/retro_act/pretrain"
    )

    # rerun: generation has nothing left to do, training finds its final checkpoint
    second = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "recorded 0 episodes" in second.stdout


def test_a_training_section_changes_its_model_fields_and_only_its_own():
    from common.config import compose_config
    from pipelines.demo import CONFIG_DPATH, build_steps

    cfg = compose_config(
        CONFIG_DPATH, "demo", ["++dynamics.model.tdce=false", "++tokenizer.model.codebook_size=512"]
    )
    steps = dict(build_steps(cfg))
    tokenizer_args = steps["train the video tokenizer"]
    dynamics_args = steps["train GenieRedux-G (frozen tokenizer, real actions)"]
    assert "++model_overrides.tokenizer.codebook_size=512" in tokenizer_args
    assert "++model_overrides.dynamics.tdce=false" in dynamics_args  # Hydra's spelling of a bool
    assert not any("dynamics.tdce" in arg for arg in tokenizer_args)
    assert not any("codebook_size" in arg for arg in dynamics_args)
