"""The model_step / generation_speed benchmark helpers: option checking, bf16 tracking, row labelling."""

from __future__ import annotations

import pytest
import torch

from benchmarks import bench_generation_speed, bench_model_step
from common.errors import UserError


def test_unknown_or_bad_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown model_step option"):
        bench_model_step.parse_options({"step": "2"})
    with pytest.raises(UserError, match="precision"):
        bench_model_step.parse_options({"precision": "fp16"})
    with pytest.raises(UserError, match="uncached_steps must include 1"):
        bench_generation_speed.parse_options({"uncached_steps": "8"})


def test_bf16_autocast_training_tracks_fp32_on_tiny_dynamics() -> None:
    torch.set_num_threads(1)
    fp32 = bench_model_step.train_steps("tiny", "genie_redux_guided", 4, False, "fp32")[1]
    bf16 = bench_model_step.train_steps("tiny", "genie_redux_guided", 4, False, "bf16")[1]
    assert fp32[-1] < fp32[0]  # the fixed batch is being fitted
    assert bf16 != fp32  # autocast really changed the arithmetic
    for a, b in zip(fp32, bf16):
        assert abs(a - b) / a < 0.02


def test_generation_rows_label_measured_and_extrapolated_uncached() -> None:
    from models.presets import build

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny")
    opts = bench_generation_speed.parse_options({"steps": "1,2,3", "uncached_steps": "1,2", "repeats": "1"})
    rows = bench_generation_speed.measure_batch(model, 1, opts)
    assert [r["uncached_source"] for r in rows] == ["measured", "measured", "extrapolated"]
    assert isinstance(rows[1]["uncached_pred_error"], float) and rows[0]["uncached_pred_error"] == ""
    assert rows[2]["uncached_s_per_frame"] > rows[0]["uncached_s_per_frame"]  # one more full pass per step
    rows8 = bench_generation_speed.measure_batch(model, 2, opts)
    assert [r["uncached_source"] for r in rows8] == ["measured", "extrapolated", "extrapolated"]


def test_player_bench_options_and_frames_per_second() -> None:
    from benchmarks import bench_player
    from envs.world_model_env import WorldModelEnv
    from models.presets import build
    from models.world_model import WorldModel

    with pytest.raises(UserError, match="unknown player option"):
        bench_player.parse_options({"step": "2"})
    with pytest.raises(UserError, match="together"):
        bench_player.parse_options({"model_dpath": "x"})
    assert bench_player.parse_options({"steps": "1,4"})["steps"] == [1, 4]
    torch.set_num_threads(1)
    env = WorldModelEnv(WorldModel(build("genie_redux_guided", "tiny")), maskgit_steps=1)
    assert bench_player.env_frames_per_s(env, 3) > 0
