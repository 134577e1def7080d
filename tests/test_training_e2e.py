"""End-to-end training on tiny models and a synthetic moving-squares store (CPU).

Loss falls for each kind, gradient accumulation matches a larger batch, a SIGKILLed run resumes onto
the identical loss curve, fine-tuning starts from the checkpoint, bad input fails in one line, and a
2-process gloo run works through the launcher.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file
from torch import nn

from common.config import compose_config
from common.errors import UserError
from data.store_synthetic import write_synthetic_store
from training import checkpointing as ckpt
from training import cli, trainer
from training.nan_guard import TrainingDivergedError
from training.run_log import read_metrics

REPO_DPATH = Path(__file__).resolve().parents[1]
FAST = [
    "model=tiny", "train.dataset_name=squares", "train.num_frames=4", "train.batch_size=4", "train.num_processes=1",
    "train.grad_accum=1",
    "train.num_workers=0", "train.schedule.warmup_steps=2", "train.log_every_steps=1",
    "train.validation.num_prime_frames=2", "train.validation.maskgit_steps=2", "train.validation.num_batches=1",
    "train.validation.num_gifs=1", "train.optimizer.lr_max=3e-3", "train.optimizer.lr_min=1e-3",
    "eval.num_first_frames=1", "eval.sample_num_frames=3", "eval.delta_psnr_frame=2", "eval.inference_steps=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stores")
    write_synthetic_store(root / "squares", ["envA", "envB"], num_sessions=10, num_frames=24, image_size=16)
    return root


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def train(config: str, run_dpath: Path, store_root: Path, *extra: str) -> dict:
    args = [
        f"config={config}",
        *FAST,
        f"train.dataset_root_dpath={store_root}",
        f"run_dpath={run_dpath}",
        *extra,
    ]
    return trainer.Trainer(compose_config(cli.CONFIG_DPATH, "genie_redux", args), args).run()


def losses(run_dpath: Path) -> dict[int, float]:
    return {
        r["step"]: r["train/loss"] for r in read_metrics(run_dpath / "metrics.jsonl") if "train/loss" in r
    }


@pytest.fixture(scope="module")
def tokenizer_run(store_root, tmp_path_factory) -> Path:
    run_dpath = tmp_path_factory.mktemp("runs") / "tok"
    train("tokenizer", run_dpath, store_root, "train.num_train_steps=40", "train.validation.every_steps=20",
          "train.checkpoint.every_steps=20")  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)
    return run_dpath


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


@pytest.mark.slow
def test_tokenizer_loss_falls_and_run_folder_is_complete(tokenizer_run):
    curve = list(losses(tokenizer_run).values())
    assert len(curve) == 40
    assert mean(curve[-5:]) < 0.7 * mean(curve[:5])
    for name in ("config.yaml", "command.txt", "best_model/model.safetensors", "final_model/config.yaml"):
        assert (tokenizer_run / name).is_file(), name
    assert sorted(p.name for p in (tokenizer_run / "checkpoints").iterdir()) == [
        "step_0000020",
        "step_0000040",
    ]
    assert list((tokenizer_run / "samples").glob("step0000040_recon0.gif"))
    val = [r for r in read_metrics(tokenizer_run / "metrics.jsonl") if "val/recon_psnr" in r]
    assert [r["step"] for r in val] == [20, 40] and 0 < val[-1]["val/codebook_usage"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("config", ["genie_redux", "genie_redux_guided"])
def test_dynamics_loss_falls_with_frozen_tokenizer(config, tokenizer_run, store_root, tmp_path):
    run_dpath = tmp_path / config
    summary = train(config, run_dpath, store_root, f"tokenizer_dpath={tokenizer_run}", "train.num_train_steps=30",
                    "train.validation.every_steps=30", "train.checkpoint.every_steps=30")  # fmt: skip
    curve = list(losses(run_dpath).values())
    assert mean(curve[-5:]) < 0.85 * mean(curve[:5])
    assert (
        "val/next_frame_psnr" in summary["metrics"] and "val/next_frame_token_accuracy" in summary["metrics"]
    )
    # validation also runs the evaluation protocol itself (one implementation with `genie_redux eval`)
    assert summary["metrics"]["val/eval_psnr"] > 5
    assert "val/eval_delta_psnr_genie" in summary["metrics"]
    if config == "genie_redux":  # LAM and dynamics trained jointly: both losses logged and summed
        last = read_metrics(run_dpath / "metrics.jsonl")[-2]
        assert last["train/loss"] == pytest.approx(
            last["train/dynamics/loss"] + last["train/lam/loss"], rel=1e-5
        )
        assert "val/lam_codebook_usage" in summary["metrics"]
    tokenizer_weights = load_file(str(tokenizer_run / "best_model" / "model.safetensors"))
    trained = load_file(str(run_dpath / "final_model" / "model.safetensors"))
    for name, tensor in tokenizer_weights.items():  # the tokenizer stayed frozen
        assert torch.equal(trained[f"tokenizer.{name}"], tensor), name


@pytest.mark.slow
def test_fine_tune_starts_from_the_checkpoint(tokenizer_run, store_root, tmp_path):
    train("tokenizer", tmp_path / "ft", store_root, f"model_dpath={tokenizer_run}", "train.env_names=[envA]",
          "train.num_train_steps=3", "train.validation.every_steps=0")  # fmt: skip
    scratch_first = losses(tokenizer_run)[1]
    fine_tune_first = losses(tmp_path / "ft")[1]
    assert fine_tune_first < 0.7 * scratch_first


@pytest.mark.slow
def test_a_world_models_tokenizer_fine_tunes_then_replaces_the_embedded_one(
    tokenizer_run, store_root, tmp_path
):
    """AutoExplore's fine-tune: tokenizer from the GenieRedux-G checkpoint, then its dynamics on that tokenizer."""
    no_validation = ("train.validation.every_steps=0", "train.num_train_steps=3")
    world = tmp_path / "world"
    train("genie_redux_guided", world, store_root, f"tokenizer_dpath={tokenizer_run}", *no_validation)
    AcceleratorState._reset_state(reset_partial_state=True)
    train("tokenizer", tmp_path / "tok_ft", store_root, f"model_dpath={world}", *no_validation)
    AcceleratorState._reset_state(reset_partial_state=True)
    assert (
        losses(tmp_path / "tok_ft")[1] < 0.7 * losses(tokenizer_run)[1]
    )  # it starts from the trained tokenizer
    embedded = {k[len("tokenizer.") :]: v for k, v in load_file(str(world / "final_model" / "model.safetensors")).items()
                if k.startswith("tokenizer.")}  # fmt: skip
    tuned = load_file(str(tmp_path / "tok_ft" / "final_model" / "model.safetensors"))
    assert set(tuned) == set(embedded) and any(not torch.equal(tuned[k], embedded[k]) for k in tuned)
    train("genie_redux_guided", tmp_path / "dyn_ft", store_root, f"model_dpath={world}",
          f"tokenizer_dpath={tmp_path / 'tok_ft'}", *no_validation)  # fmt: skip
    dynamics = load_file(str(tmp_path / "dyn_ft" / "final_model" / "model.safetensors"))
    for name, tensor in tuned.items():  # the fine-tuned tokenizer is the one the dynamics now reads, frozen
        assert torch.equal(dynamics[f"tokenizer.{name}"], tensor), name


def test_validation_protocol_needs_long_enough_windows(store_root, tmp_path):
    args = [
        "config=genie_redux_guided",
        *FAST,
        f"train.dataset_root_dpath={store_root}",
        "eval.sample_num_frames=10",
    ]
    with pytest.raises(UserError, match="train.validation.eval_protocol needs train.num_frames >= "):
        cli.main("train", [*args, f"run_dpath={tmp_path / 'run'}"])
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before the first step, not at validation


def test_bad_tokenizer_path_is_one_clear_line(store_root, tmp_path):
    args = [
        "config=genie_redux_guided",
        *FAST,
        f"train.dataset_root_dpath={store_root}",
        f"tokenizer_dpath={tmp_path}/nope",
    ]
    with pytest.raises(UserError, match=r"tokenizer_dpath=.*/nope is not a model checkpoint") as error:
        cli.main("train", args)
    assert "\n" not in str(error.value)


@dataclass
class ToyOutput:
    loss: torch.Tensor
    metrics: dict


class ToyModel(nn.Module):
    """Deterministic stand-in: loss = MSE of a linear map of the frames (no RNG, no batch statistics)."""

    kind = "tokenizer"

    def __init__(self, nan_calls: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)
        self.nan_calls, self.calls = nan_calls, 0

    def forward(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> ToyOutput:
        self.calls += 1
        pixels = frames.permute(0, 1, 3, 4, 2)  # [B, T, H, W, 3]
        loss = ((self.proj(pixels) - pixels.flip(-1)) ** 2).mean()
        if self.calls in self.nan_calls:
            loss = loss * float("nan")
        return ToyOutput(loss, {})


def toy_trainer(monkeypatch, store_root, tmp_path, model: ToyModel, *extra: str) -> trainer.Trainer:
    monkeypatch.setattr(trainer, "build_training_model", lambda cfg, action_names=None: model)
    monkeypatch.setattr(trainer.Trainer, "save_checkpoint", lambda self: None)
    monkeypatch.setattr(trainer.Trainer, "finish", lambda self: {"step": self.state.step})
    args = ["config=tokenizer", *FAST, f"train.dataset_root_dpath={store_root}", f"run_dpath={tmp_path}",
            "train.validation.every_steps=0", "train.balanced=false", *extra]  # fmt: skip
    return trainer.Trainer(compose_config(cli.CONFIG_DPATH, "genie_redux", args), args)


def test_gradient_accumulation_matches_the_larger_batch(monkeypatch, store_root, tmp_path):
    results = []
    for batch, accum in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = ToyModel()
        toy_trainer(monkeypatch, store_root, tmp_path / f"b{batch}", model, f"train.batch_size={batch}",
                    f"train.grad_accum={accum}", "train.num_train_steps=2", "train.grad_clip=0.05").run()  # fmt: skip
        results.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        AcceleratorState._reset_state(reset_partial_state=True)
    for name in results[0]:
        torch.testing.assert_close(results[0][name], results[1][name], rtol=1e-5, atol=1e-6)
    norms = [r["train/grad_norm"] for r in read_metrics(tmp_path / "b2" / "metrics.jsonl")]
    assert max(norms) > 0.05  # clipping was active, on the accumulated gradient


def test_nan_guard_skips_bad_steps_and_stops_a_diverged_run(monkeypatch, store_root, tmp_path):
    model = ToyModel(nan_calls=(2,))
    toy_trainer(monkeypatch, store_root, tmp_path / "one", model, "train.num_train_steps=3").run()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    AcceleratorState._reset_state(reset_partial_state=True)
    model = ToyModel(nan_calls=tuple(range(1, 100)))
    run = toy_trainer(monkeypatch, store_root, tmp_path / "all", model, "train.num_train_steps=20",
                      "train.nan_guard.max_consecutive=4")  # fmt: skip
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(TrainingDivergedError, match="4 non-finite steps in a row"),
    ):
        run.run()


def launcher_command(run_dpath: Path, store_root: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_DPATH / "run.py"), "genie_redux", "train", "config=tokenizer", *FAST,
            f"train.dataset_root_dpath={store_root}", f"run_dpath={run_dpath}", *extra]  # fmt: skip


ENV = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_and_resume_follows_the_uninterrupted_curve(store_root, tmp_path):
    extra = ("train.num_train_steps=40", "train.checkpoint.every_steps=10", "train.validation.every_steps=20",
             "train.num_workers=1")  # fmt: skip
    reference = subprocess.run(
        launcher_command(tmp_path / "ref", store_root, *extra), env=ENV, capture_output=True
    )
    assert reference.returncode == 0, reference.stderr.decode()[-2000:]
    victim = subprocess.Popen(launcher_command(tmp_path / "kill", store_root, *extra), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / "kill" / "checkpoints" / "step_0000010").is_dir() and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = max(losses(tmp_path / "kill"))
    assert 10 <= killed_at < 40
    resumed = subprocess.run(
        launcher_command(tmp_path / "kill", store_root, *extra), env=ENV, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert losses(tmp_path / "kill") == losses(tmp_path / "ref")  # bit-identical, every step
    val = lambda d: [r for r in read_metrics(d / "metrics.jsonl") if "val/recon_psnr" in r]  # noqa: E731
    assert val(tmp_path / "kill") == val(tmp_path / "ref")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_run_through_the_launcher(store_root, tmp_path, one_process_group_at_a_time):
    extra = ("train.num_processes=2", "train.num_train_steps=4", "train.checkpoint.every_steps=4",
             "train.validation.every_steps=4", f"train.launch_args=[--main_process_port,{free_port()}]")  # fmt: skip
    result = subprocess.run(
        launcher_command(tmp_path / "ddp", store_root, *extra), env=ENV, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "launching 2 processes" in result.stdout
    step_dpath = tmp_path / "ddp" / "checkpoints" / "step_0000004"
    assert (step_dpath / "rng_rank0.safetensors").is_file() and (
        step_dpath / "rng_rank1.safetensors"
    ).is_file()
    state = trainer.ckpt.load_trainer_state(step_dpath)
    assert state.data_position == 4 * 4 * 2  # steps x batch x processes
    assert len(losses(tmp_path / "ddp")) == 4


@pytest.mark.slow
def test_validation_is_optional_a_store_without_val_sessions_trains_with_it_off(tmp_path):
    root = tmp_path / "stores"
    write_synthetic_store(root / "solo", ["envA"], num_sessions=1, num_frames=24, image_size=16)  # train only
    args = ["config=tokenizer", *FAST, f"train.dataset_root_dpath={root}", "train.dataset_name=solo",
            "train.num_train_steps=2", "train.checkpoint.every_steps=2"]  # fmt: skip
    with pytest.raises(UserError, match="split 'val' .* has no sessions"):  # validation on: named
        trainer.Trainer(compose_config(cli.CONFIG_DPATH, "genie_redux", [*args, f"run_dpath={tmp_path / 'on'}"]),
                        args).run()  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)
    off = [*args, "train.validation.every_steps=0", f"run_dpath={tmp_path / 'off'}"]
    summary = trainer.Trainer(compose_config(cli.CONFIG_DPATH, "genie_redux", off), off).run()
    assert summary["step"] == 2 and summary["best_model"] is None
    assert (tmp_path / "off" / "final_model").is_dir()


def test_a_time_budgeted_run_fixes_its_length_from_its_first_steps_and_keeps_it_on_resume(
    monkeypatch, store_root, tmp_path
):
    """train.time_budget_min: the steps that fit the budget at the speed of the calibration steps; the
    schedule ends there (lr_min at the last step), evaluations are spread over the run, resume keeps it."""
    from training import trainer as trainer_module

    clock = {"now": 0.0}  # every training step takes exactly 0.5 s of this clock
    real_step = trainer_module.Trainer.train_step

    def timed_step(self, batches):
        out = real_step(self, batches)
        clock["now"] += 0.5
        return out

    monkeypatch.setattr(trainer_module.Trainer, "train_step", timed_step)
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock["now"])
    budget = ("train.time_budget_min=0.2", "train.budget.calibration_steps=4", "train.budget.evaluations=2",
              "train.num_train_steps=1000", "train.schedule.warmup_steps=2")  # fmt: skip
    summary = train("tokenizer", tmp_path / "run", store_root, *budget)
    assert summary["step"] == 24  # 12 s at 0.5 s per step
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records if "val/recon_psnr" in r] == [12, 24]
    last = next(r for r in reversed(records) if "train/lr" in r)
    assert last["step"] == 24 and last["train/lr"] == pytest.approx(1e-3)  # FAST's lr_min: the schedule ended
    assert last["perf/train_seconds"] == pytest.approx(12.0)
    state = ckpt.load_trainer_state(tmp_path / "run" / "checkpoints" / ckpt.step_dname(24))
    assert state.planned_steps == 24
    # a longer budget on resume does not re-plan: the run's length was fixed by its calibration
    AcceleratorState._reset_state(reset_partial_state=True)
    assert (
        train("tokenizer", tmp_path / "run", store_root, *budget[1:], "train.time_budget_min=5")["step"] == 24
    )


def test_a_time_budget_is_checked_before_anything_runs(store_root, tmp_path):
    args = [
        "config=tokenizer",
        *FAST,
        f"train.dataset_root_dpath={store_root}",
        f"run_dpath={tmp_path / 'run'}",
    ]
    with pytest.raises(UserError, match="time_budget_min=0 must be > 0"):
        cli.main("train", [*args, "train.time_budget_min=0"])
    with pytest.raises(
        UserError, match="budget.calibration_steps=0 and train.budget.evaluations=4 must be >= 1"
    ):
        cli.main("train", [*args, "train.time_budget_min=1", "train.budget.calibration_steps=0"])
    assert not (tmp_path / "run").exists()


def test_a_time_budget_busy_during_calibration_is_planned_again_at_the_runs_average_speed(
    monkeypatch, store_root, tmp_path
):
    from training import trainer as trainer_module

    clock = {"now": 0.0, "steps": 0}  # the first 5 steps take 1 s (a busy machine), the rest 0.25 s
    real_step = trainer_module.Trainer.train_step

    def timed_step(self, batches):
        out = real_step(self, batches)
        clock["steps"] += 1
        clock["now"] += 1.0 if clock["steps"] <= 5 else 0.25
        return out

    monkeypatch.setattr(trainer_module.Trainer, "train_step", timed_step)
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock["now"])
    summary = train("tokenizer", tmp_path / "run", store_root, "train.time_budget_min=0.2",
                    "train.budget.calibration_steps=2", "train.budget.evaluations=4", "train.validation.every_steps=0",
                    "train.num_train_steps=1000")  # fmt: skip
    seconds = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["perf/train_seconds"]
    assert summary["step"] > 12  # the calibration's speed alone plans 5 + 7 s / 1 s = 12 steps
    assert 9.0 <= seconds <= 13.0  # near the 12 s budget
