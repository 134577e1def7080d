"""The play checks of `genie_redux eval` (training/evaluation/play_checks.py): action response and drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from data.datasets import WindowDataset
from data.transforms import frames_to_model
from models.checkpoint import load_model
from models.world_model import WorldModel
from training.evaluation.play_checks import (
    PlaySettings,
    action_response,
    code_set,
    frame_codes,
    nearest_real_psnr,
    reference_frames,
)

REPO_DPATH = Path(__file__).resolve().parents[1]


def world_model(dpath: Path) -> WorldModel:
    return WorldModel(load_model(dpath, "cpu"))


def test_a_model_that_ignores_its_actions_scores_zero_and_one_that_uses_them_does_not(
    tiny_play_store, tiny_world_model_dpath
):
    dataset = WindowDataset(tiny_play_store, "all", num_frames=4)
    env_actions = dataset.env_action_ids()
    settings = PlaySettings(response_frames=3, response_starts=2, steps=2, temperature=1.0)
    model = world_model(tiny_world_model_dpath)
    with torch.no_grad():
        model.model.action_embed.weight.zero_()  # every action the same embedding: actions ignored
    ignored = action_response(model, dataset, env_actions, settings, num_prime=2)
    assert ignored["action_mse"] == 0.0 and ignored["ratio"] == 0.0 and ignored["seed_mse"] > 0
    with torch.no_grad():
        model.model.action_embed.weight.normal_(0, 10.0)  # actions that swamp everything else
    used = action_response(model, dataset, env_actions, settings, num_prime=2)
    assert used["action_mse"] > 0 and used["num_starts"] == 2 and used["frames"] == 3
    greedy = action_response(model, dataset, env_actions, PlaySettings(3, 2, steps=2, temperature=0.0), 2)
    assert greedy["seed_mse"] == 0.0 and greedy["ratio"] is None  # no randomness: no ratio


def test_drift_scores_real_frames_as_real_and_noise_as_far(tiny_play_store, tiny_world_model_dpath):
    dataset = WindowDataset(tiny_play_store, "all", num_frames=4)
    real = frames_to_model(reference_frames(dataset, 0, 16, seed=0)[None], "cpu")[0]  # [R, 3, H, W]
    assert real.shape[0] == 16
    assert torch.all(nearest_real_psnr(real[:4], real) >= 99.9)  # a real frame is its own nearest
    noise = torch.rand(4, *real.shape[1:], generator=torch.Generator().manual_seed(0))
    assert torch.all(nearest_real_psnr(noise, real) < 12.0)
    model = world_model(tiny_world_model_dpath)
    used = code_set(model, real)
    assert not (~used[frame_codes(model, real)]).any()  # real frames use only real codes


def test_eval_writes_both_checks_and_their_tables(tiny_play_store, tiny_world_model_dpath, tmp_path):
    out = tmp_path / "eval"
    args = ["genie_redux", "eval", "config=genie_redux_guided", f"eval.model_dpath={tiny_world_model_dpath}",
            f"eval.dataset_root_dpath={tiny_play_store.parent}", f"eval.dataset_name={tiny_play_store.name}",
            "eval.split=all", "eval.num_sequences=2", "eval.batch_size=2", "eval.inference_steps=1",
            "eval.num_first_frames=2", "eval.sample_num_frames=2", "eval.delta_psnr_frame=2", "eval.num_gifs=0",
            "eval.num_workers=0", f"eval.output_dpath={out}", "eval.play.response_frames=2",
            "eval.play.response_starts=2", "eval.play.drift_frames=10", "eval.play.drift_starts=1",
            "eval.play.reference_frames=8"]  # fmt: skip
    result = subprocess.run([sys.executable, str(REPO_DPATH / "run.py"), *args], capture_output=True, text=True,
                            env={"GENIE_REDUX_NO_BOOTSTRAP": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    play = json.loads((out / "results.json").read_text())["play"]
    assert set(play) == {"action_response", "drift"}
    assert set(play["drift"]) == set(WindowDataset(tiny_play_store, "all", num_frames=4).env_names)
    for figures in play["drift"].values():
        assert figures["frames"] == [1, 10] and len(figures["nearest_real_psnr"]) == 2
        assert all(0.0 <= share <= 1.0 for share in figures["unseen_code_share"])
    text = (out / "results.md").read_text()
    assert "keys vs sampling" in text and "random-key play, frame" in text
    bad = subprocess.run([sys.executable, str(REPO_DPATH / "run.py"), *args[:-1], "eval.play.reference_frames=0"],
                         capture_output=True, text=True, env={"GENIE_REDUX_NO_BOOTSTRAP": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert bad.returncode == 2 and "eval.play.reference_frames=0 must be >= 1" in bad.stderr
    assert np.isfinite(play["action_response"]["action_mse"])


def test_play_quality_tabulates_every_sampling_setting(tmp_path, tiny_play_store, tiny_world_model_dpath):
    """experiments/play_quality.py: one row per (steps, temperature), drift at the marked frames, and a
    keys-vs-seed ratio only where the sampler has noise to compare with."""
    import json

    from experiments import play_quality

    args = [f"--model-dpath={tiny_world_model_dpath}", f"--dataset-dpath={tiny_play_store}", "--split=all",
            "--steps", "1", "--temperatures", "1", "0", "--drift-frames=10", "--drift-starts=1",
            "--response-frames=2", "--response-starts=2", f"--results-dpath={tmp_path}"]  # fmt: skip
    assert play_quality.main(args) == 0
    report = json.loads((tmp_path / "play_quality.json").read_text())
    sampled, greedy = report["rows"]
    assert (sampled["steps"], sampled["temperature"], greedy["temperature"]) == (1, 1.0, 0.0)
    assert sampled["action_response"]["ratio"] is not None and greedy["action_response"]["ratio"] is None
    for row in report["rows"]:
        assert all(game["frames"] == [1, 10] for game in row["drift"].values())
    table = (tmp_path / "play_quality.md").read_text()
    assert "| 1 | 0 |" in table and "no sampling noise" in table and "frame 10 |" in table
    assert play_quality.markdown(report) == table  # the record regenerates from its JSON
