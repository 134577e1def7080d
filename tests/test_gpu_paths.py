"""The code paths a GPU takes, reached on CPU with the device swapped: bf16 training steps, the trainer's
mixed-precision choice, pinned loaders, GPU generator states, validation's forked generators, device
names, the player's GPU count check, batches moved to the device, and the agent trainer in bf16-mixed."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.state import AcceleratorState

from models.presets import build


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_mixed_precision_auto_is_bf16_on_cuda_and_fp32_on_cpu():
    from training.trainer import mixed_precision_mode

    assert mixed_precision_mode("auto", "cuda") == "bf16"
    assert mixed_precision_mode("auto", "cpu") == "no"
    assert mixed_precision_mode("bf16", "cpu") == "bf16" and mixed_precision_mode("no", "cuda") == "no"


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("kind", ["tokenizer", "genie_redux_guided", "genie_redux"])
def test_a_bf16_autocast_training_step_is_finite_and_close_to_fp32(kind):
    """One forward + backward from the same weights, batch and masks: loss within 2 %, gradient direction
    within cosine 0.99 (the trainer's bf16: autocast around the forward, fp32 weights)."""
    frames = torch.rand(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # [B, T, 3, H, W]
    actions = torch.randint(0, 7, (2, 3), generator=torch.Generator().manual_seed(1))  # [B, T-1]
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build(kind, "tiny").train()
        torch.manual_seed(2)  # the same masks in both
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(frames, actions).loss
        loss.backward()
        results[precision] = (loss.detach().float(), flat_grad(model))
    (loss32, grad32), (loss16, grad16) = results["fp32"], results["bf16"]
    assert torch.isfinite(loss16) and torch.isfinite(grad16).all()
    assert loss16 != loss32  # autocast changed the arithmetic
    assert abs(loss16 - loss32) / loss32 < 0.02
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.99


@pytest.mark.slow
def test_the_trainer_in_bf16_mixed_precision_trains(tmp_path):
    """Accelerate's bf16 mixed precision (what `mixed_precision=auto` picks on a GPU) through the trainer."""
    from data.store_synthetic import write_synthetic_store
    from tests.test_training_e2e import losses, mean, train

    write_synthetic_store(
        tmp_path / "squares", ["envA", "envB"], num_sessions=6, num_frames=24, image_size=16
    )
    try:
        train("tokenizer", tmp_path / "run", tmp_path, "train.num_train_steps=20", "train.mixed_precision=bf16",
              "train.validation.every_steps=0", "train.checkpoint.every_steps=20")  # fmt: skip
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    curve = list(losses(tmp_path / "run").values())
    assert len(curve) == 20 and all(torch.isfinite(torch.tensor(curve)))
    assert mean(curve[-4:]) < 0.8 * mean(curve[:4])


def test_a_pinned_training_loader_yields_the_same_batches(tmp_path):
    """pin_memory=True is what the trainer asks for on CUDA (on a CPU-only machine torch skips pinning)."""
    from data.datasets import WindowDataset, make_dataloader
    from data.store_synthetic import write_synthetic_store
    from training.data_stream import build_train_loader, permutation_order

    write_synthetic_store(tmp_path / "squares", ["envA"], num_sessions=6, num_frames=12, image_size=16)
    dataset = WindowDataset(tmp_path / "squares", "train", num_frames=4)

    def first_batches(pin: bool) -> list[torch.Tensor]:
        loader = build_train_loader(dataset, permutation_order(len(dataset), 0), batch_size=2, start_position=0,
                                    rank=0, world_size=1, num_workers=0, seed=0, pin_memory=pin)  # fmt: skip
        batches = iter(loader)
        eval_loader = make_dataloader(dataset, 2, seed=0, pin_memory=pin)
        return [next(batches)["frames"] for _ in range(3)] + [next(iter(eval_loader))["frames"]]

    no_gpu = pytest.warns(UserWarning, match="pin_memory")  # torch: no accelerator here, so no pinning
    with contextlib.nullcontext() if torch.cuda.is_available() else no_gpu:
        pinned = first_batches(True)
    assert all(torch.equal(a, b) for a, b in zip(pinned, first_batches(False), strict=True))


class FakeCuda:
    """Two GPUs' worth of torch.cuda's generator functions."""

    def __init__(self) -> None:
        self.states = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]
        self.restored: list[torch.Tensor] = []

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return len(self.states)

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return self.states

    def set_rng_state_all(self, states: list[torch.Tensor]) -> None:
        self.restored = list(states)

    def get_device_name(self, index: int) -> str:
        return "NVIDIA H200"


def test_gpu_generator_states_round_trip_in_device_order(tmp_path):
    from training.rng_state import load_rng_state, save_rng_state

    cuda = FakeCuda()
    cuda.states = [torch.tensor([i], dtype=torch.uint8) for i in range(12)]  # cuda_10 sorts after cuda_9
    save_rng_state(tmp_path / "rng.safetensors", cuda=cuda)
    load_rng_state(tmp_path / "rng.safetensors", cuda=cuda)
    assert [int(s) for s in cuda.restored] == list(range(12))
    fewer = FakeCuda()  # resumed on a machine with 2 GPUs: the first two states
    load_rng_state(tmp_path / "rng.safetensors", cuda=fewer)
    assert [int(s) for s in fewer.restored] == [0, 1]


def test_validation_forks_the_gpu_generator_only_on_cuda():
    from training.validation import forked_devices

    assert forked_devices(torch.device("cuda:1")) == [torch.device("cuda:1")]
    assert forked_devices(torch.device("cpu")) == []


def test_the_device_description_names_the_gpu():
    from common.results import device_description

    assert device_description(FakeCuda()).startswith("NVIDIA H200 (torch ")
    assert device_description(SimpleNamespace(is_available=lambda: False)).startswith("CPU ")


def test_the_player_checks_the_gpu_index_against_the_gpus_there(monkeypatch):
    from common.errors import UserError
    from play.cli import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda")
    check_device("cuda:1")
    with pytest.raises(UserError, match="this machine has 2 CUDA GPU"):
        check_device("cuda:2")


def test_agent_sequence_batches_move_every_tensor_to_the_device(tmp_path):
    from agents.rollout import cut_sequences
    from agents.trainer import AgentTrainer, _to
    from tests.test_agents import tiny_config

    trainer = AgentTrainer(tiny_config(tmp_path / "run", **{"common.epochs": 1}), tmp_path / "run")
    rollout, _ = trainer.collector.collect(trainer.model, 0.0, trainer.generator, trainer.fabric.device)
    trainer.close()
    batch = cut_sequences(rollout, torch.tensor([0, 1]), torch.tensor([0, 2]), 4)
    moved = _to(batch, torch.device("meta"))  # a device that is not the CPU, on any machine
    for name, value in vars(moved).items():
        if torch.is_tensor(value):
            assert value.device.type == "meta", name
    assert moved.advantages is None  # fields that are not tensors stay as they are


def test_the_agent_trainer_in_bf16_mixed_precision(tmp_path):
    """Fabric's bf16-mixed (the GPU setting) on CPU: collection and training run, losses are finite."""
    from agents.trainer import AgentTrainer
    from tests.test_agents import tiny_config

    config = tiny_config(tmp_path / "run", **{"common.precision": "bf16-mixed", "common.epochs": 2})
    trainer = AgentTrainer(config, tmp_path / "run")
    trainer.run()
    trainer.close()
    rows = [json.loads(line) for line in Path(tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert all(torch.isfinite(torch.tensor([row["loss"], row["value_loss"]])).all() for row in rows)
