"""Trainer building blocks: LR schedule, AdamW groups, resumable data order, NaN guard, RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from training.data_stream import ResumableShardSampler, permutation_order
from training.nan_guard import NanGuard, TrainingDivergedError
from training.optim import build_optimizer, split_decay_parameters
from training.rng_state import load_rng_state, save_rng_state
from training.schedule import build_scheduler, lr_at_step

PAPER = {
    "lr_max": 1e-4,
    "lr_min": 5e-5,
    "warmup_steps": 5000,
    "warmup_start_factor": 0.5,
    "num_train_steps": 150_000,
}


def test_schedule_warms_up_from_half_and_ends_exactly_at_lr_min():
    assert lr_at_step(0, **PAPER) == pytest.approx(5e-5)
    assert lr_at_step(2500, **PAPER) == pytest.approx(7.5e-5)
    assert lr_at_step(5000, **PAPER) == pytest.approx(1e-4)
    assert lr_at_step(149_999, **PAPER) == pytest.approx(5e-5, rel=1e-12)
    decay = [lr_at_step(s, **PAPER) for s in range(5000, 150_000, 997)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))  # no restart before the end


def test_scheduler_drives_the_optimizer_and_its_state_is_plain_numbers():
    param = nn.Parameter(torch.zeros(2, 2))
    optimizer = torch.optim.AdamW([param])
    config = {**PAPER, "warmup_steps": 2, "num_train_steps": 6}
    scheduler = build_scheduler(optimizer, **config)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([lr_at_step(s, **config) for s in range(6)])
    assert seen[-1] == pytest.approx(5e-5)
    state = scheduler.state_dict()
    assert state["last_epoch"] == 6
    assert all(isinstance(v, (int, float, list, bool, type(None))) for v in state.values())


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(4, 3)
        self.proj = nn.Linear(3, 3)
        self.norm = nn.LayerNorm(3)
        self.frozen = nn.Linear(3, 3).requires_grad_(False)


def test_weight_decay_only_on_projection_matrices_and_frozen_parameters_excluded():
    model = Toy()
    decay, no_decay = split_decay_parameters(model)
    assert [id(p) for p in decay] == [id(model.proj.weight)]
    assert {id(p) for p in no_decay} == {
        id(model.embedding.weight),
        id(model.proj.bias),
        id(model.norm.weight),
        id(model.norm.bias),
    }
    optimizer = build_optimizer(model, lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-4, eps=1e-8)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 0.0]
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)


def take(sampler: ResumableShardSampler, count: int) -> list[int]:
    iterator = iter(sampler)
    return [next(iterator) for _ in range(count)]


def test_data_stream_resumes_at_any_position_across_epochs():
    order = permutation_order(7, seed=3)
    full = take(ResumableShardSampler(order, 0, 0, 1), 30)
    assert sorted(full[:7]) == list(range(7)) and full[:7] != full[7:14]  # reshuffled per epoch
    for position in (0, 5, 7, 12, 21):
        assert take(ResumableShardSampler(order, position, 0, 1), 30 - position) == full[position:]


def test_data_stream_shards_interleave_to_the_global_order():
    order = permutation_order(9, seed=0)
    full = take(ResumableShardSampler(order, 4, 0, 1), 12)
    rank0 = take(ResumableShardSampler(order, 4, 0, 2), 6)
    rank1 = take(ResumableShardSampler(order, 4, 1, 2), 6)
    assert full[0::2] == rank0 and full[1::2] == rank1
    with pytest.raises(ValueError, match="multiple of world_size"):
        ResumableShardSampler(order, 3, 0, 2)


def test_nan_guard_skips_then_stops_after_k_in_a_row():
    guard = NanGuard(max_consecutive=3)
    with pytest.warns(RuntimeWarning, match="update skipped"):
        assert not guard.should_step(1, float("nan"), 1.0)
    assert guard.should_step(2, 0.5, 1.0) and guard.consecutive == 0
    with pytest.warns(RuntimeWarning):
        assert not guard.should_step(3, 0.5, float("inf"))
        assert not guard.should_step(4, float("nan"), float("nan"))
    with pytest.raises(TrainingDivergedError, match="3 non-finite steps in a row up to step 5"):
        guard.should_step(5, float("nan"), 1.0)


def test_rng_state_roundtrip_restores_every_generator(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_rng_state(tmp_path / "rng.safetensors")
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    load_rng_state(tmp_path / "rng.safetensors")
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]
