"""The world-model trainer under Accelerate: setup → train loop → cleanup, readable top to bottom.

One optimizer step = `grad_accum` micro-batches of `batch_size` per process. Gradients are clipped
once, on the accumulated (and, under DDP, all-reduced) gradient. The LR schedule is stepped by us
once per optimizer step (Accelerate's scheduler wrapper would step it once per process).
"""

from __future__ import annotations

import dataclasses
import shlex
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from omegaconf import DictConfig

from common.errors import UserError
from common.seeds import SEED_STRIDE
from models.checkpoint import (
    best_model_dpath,
    final_model_dpath,
    load_weights,
    save_checkpoint,
    step_model_dpath,
)
from models.tokenizer import VideoTokenizer
from training import checkpointing as ckpt
from training.checkpointing import TrainerState
from training.data_setup import build_datasets, build_val_loader, train_epoch_order, training_action_names
from training.data_stream import build_train_loader
from training.evaluation.protocol import EnvTable
from training.evaluation.settings import EvalSettings
from training.model_setup import build_training_model
from training.nan_guard import NanGuard
from training.optim import build_optimizer
from training.run_log import RunLogger, last_validation, truncate_metrics, write_run_files
from training.schedule import build_scheduler
from training.validation import validate


def mixed_precision_mode(setting: str, device_type: str) -> str:
    """`auto` means bf16 on a GPU (`device_type` "cuda") and fp32 on CPU.

    CPU stays fp32 by default so CPU runs (and the exact-resume tests) keep full precision; on CPUs
    with native bf16 (AVX512-BF16/AMX) `train.mixed_precision=bf16` is 1.4-1.7x faster per step at the
    `neurips` size (benchmarks/RESULTS.md, model_step).
    """
    if setting == "auto":
        return "bf16" if device_type == "cuda" else "no"
    return setting


def uncompiled(model: torch.nn.Module) -> torch.nn.Module:
    """The module `torch.compile` wrapped (the module itself if not compiled): checkpoints hold its
    parameter names, and validation runs it eagerly (a compiled eval-mode graph would be a second compile)."""
    return getattr(model, "_orig_mod", model)


class BudgetCalibration:
    """Times a time-budgeted run's first steps: 3 untimed (allocation, first batches), then `num_steps`."""

    NUM_UNTIMED = 3

    def __init__(self, num_steps: int) -> None:
        self.num_steps, self.seen, self.seconds = num_steps, 0, 0.0

    def add(self, seconds: float) -> bool:
        """Count one step's seconds; True once enough are timed."""
        self.seen += 1
        if self.seen > self.NUM_UNTIMED:
            self.seconds += seconds
        return self.seen >= self.NUM_UNTIMED + self.num_steps

    def seconds_per_step(self) -> float:
        return self.seconds / max(self.seen - self.NUM_UNTIMED, 1)


def frame_size(model: torch.nn.Module) -> int | None:
    """The frame size a world-model part works on (its tokenizer's), None for a model without one."""
    tokenizer = model if isinstance(model, VideoTokenizer) else getattr(model, "tokenizer", None)
    return tokenizer.config.image_size if isinstance(tokenizer, VideoTokenizer) else None


class Trainer:
    def __init__(self, cfg: DictConfig, argv: list[str]) -> None:
        self.cfg = cfg
        self.train_cfg = cfg.train
        self.argv = argv
        self.run_dpath = Path(cfg.run_dpath)
        self.checkpoints_dpath = self.run_dpath / "checkpoints"
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision_mode(self.train_cfg.mixed_precision, device_type),
            gradient_accumulation_steps=self.train_cfg.grad_accum,
            cpu=not torch.cuda.is_available(),
        )
        self.state = TrainerState()
        self.last_metrics: dict[str, float] = {}
        self.num_skipped_reads = 0  # damaged episodes skipped by this process's data loader
        self.num_unreadable_episodes = 0  # left out when the store was opened (unreadable header, cut short)
        self.trained_on: dict[str, Any] = {}  # what every checkpoint's model card says it was trained on
        self.last_validation: dict[str, float] = {}  # ... and its last validation metrics, with their step

    @property
    def num_train_steps(self) -> int:
        """The run's length: train.num_train_steps, or a time-budgeted run's calibrated step count."""
        return self.state.planned_steps or self.train_cfg.num_train_steps

    @property
    def is_time_budgeted(self) -> bool:
        return self.train_cfg.time_budget_min is not None

    @property
    def plain_model(self) -> torch.nn.Module:
        """The model without its DDP and torch.compile wrappers (the parameters are the same tensors)."""
        return uncompiled(self.accelerator.unwrap_model(self.model))

    # ---- setup -------------------------------------------------------------------------------
    def setup(self) -> None:
        tc, accelerator = self.train_cfg, self.accelerator
        torch.manual_seed(tc.seed)  # same initial weights on every process
        action_names = training_action_names(tc) if self.cfg.kind == "genie_redux_guided" else None
        model = build_training_model(self.cfg, action_names)
        resume_dpath = self.find_resume_checkpoint()
        if resume_dpath is not None:
            load_weights(model, step_model_dpath(resume_dpath))
        if tc.compile:
            model = torch.compile(model)
        optimizer = build_optimizer(
            model,
            lr=tc.optimizer.lr_max,
            betas=tuple(tc.optimizer.betas),
            weight_decay=tc.optimizer.weight_decay,
            eps=tc.optimizer.eps,
        )
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.scheduler = build_scheduler(
            self.optimizer.optimizer,
            lr_max=tc.optimizer.lr_max,
            lr_min=tc.optimizer.lr_min,
            warmup_steps=tc.schedule.warmup_steps,
            warmup_start_factor=tc.schedule.warmup_start_factor,
            num_train_steps=lambda: self.num_train_steps,
        )
        # Each process draws its own masks; seeded after construction so resume can restore it exactly.
        torch.manual_seed(tc.seed * SEED_STRIDE + 1 + accelerator.process_index)
        if resume_dpath is not None:
            self.restore(resume_dpath)
        self.nan_guard = NanGuard(tc.nan_guard.max_consecutive, self.state.consecutive_nonfinite)
        self.setup_data()
        if accelerator.is_main_process:
            write_run_files(self.run_dpath, self.cfg, self.argv)
            truncate_metrics(self.run_dpath / "metrics.jsonl", self.state.step)
            self.last_validation = last_validation(self.run_dpath / "metrics.jsonl")  # a resumed run's
        self.logger = RunLogger(
            self.run_dpath,
            is_main=accelerator.is_main_process,
            start_step=self.state.step,
            num_train_steps=self.num_train_steps,
            wandb_cfg=tc.wandb,
            cfg=self.cfg,
        )

    def find_resume_checkpoint(self) -> Path | None:
        """The newest checkpoint that loads: a damaged one (truncated file, disk error) is reported and the
        one before it is used, so a crash while a disk filled up costs at most one checkpoint interval."""
        steps = ckpt.completed_steps(self.checkpoints_dpath) if self.train_cfg.resume else []
        for step in reversed(steps):
            step_dpath = self.checkpoints_dpath / ckpt.step_dname(step)
            problem = ckpt.damage(step_dpath, self.accelerator.process_index)
            if problem is None:
                return step_dpath
            warnings.warn(
                f"cannot resume from {step_dpath}: {problem}; trying the checkpoint before it", stacklevel=2
            )
        if steps:
            raise UserError(
                f"no checkpoint in {self.checkpoints_dpath} loads (see the warnings); move them away to start "
                "afresh, or set train.resume=false"
            )
        return None

    def restore(self, step_dpath: Path) -> None:
        ckpt.load_optimizer(step_dpath, self.optimizer.optimizer)
        self.state = ckpt.load_trainer_state(step_dpath)
        self.scheduler.load_state_dict(self.state.scheduler)
        ckpt.load_process_rng(step_dpath, self.accelerator.process_index)  # last: nothing after draws
        self.accelerator.print(f"resumed from {step_dpath} (step {self.state.step})")

    def setup_data(self) -> None:
        tc, accelerator = self.train_cfg, self.accelerator
        train_set, val_set = build_datasets(tc)
        self.store_dpath = train_set.store.root_dpath
        self.trained_on = {
            "store_dpath": str(self.store_dpath),
            "games": list(train_set.env_names),
            "train_episodes": len(train_set.episodes),
            "train_frames": int(sum(record.num_frames for record in train_set.episodes)),
        }
        self.num_unreadable_episodes = len(train_set.store.corrupt_episode_ids)
        model_size = frame_size(self.plain_model)
        if model_size is not None and train_set.image_size != model_size:
            source = (
                f"tokenizer_dpath={self.cfg.tokenizer_dpath}" if self.cfg.tokenizer_dpath else "the model"
            )
            raise UserError(
                f"{source} works on {model_size} px frames but the episodes in {train_set.store.root_dpath} are "
                f"{train_set.image_size} px; train on matching data or set +model_overrides.image_size={train_set.image_size}"
            )
        self.train_loader = build_train_loader(
            train_set,
            train_epoch_order(train_set, tc),
            batch_size=tc.batch_size,
            start_position=self.state.data_position,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
            num_workers=tc.num_workers,
            seed=tc.seed,
            pin_memory=accelerator.device.type == "cuda",  # page-locked batches for the non_blocking copy
        )
        is_validating = accelerator.is_main_process and val_set is not None
        self.val_loader = build_val_loader(val_set, tc.validation) if is_validating else None
        self.val_envs = EnvTable.of_dataset(val_set) if is_validating else None
        self.samples_per_step = tc.batch_size * tc.grad_accum * accelerator.num_processes

    # ---- train -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.setup()
        tc = self.train_cfg
        batches = iter(self.train_loader)
        window = {"count": 0, "wait": 0.0, "time": 0.0}
        calibration = BudgetCalibration(tc.budget.calibration_steps) if self.needs_calibration() else None
        try:
            while self.state.step < self.num_train_steps:
                started = time.perf_counter()
                metrics, wait = self.train_step(batches)
                seconds = time.perf_counter() - started
                self.state.train_seconds += seconds
                window["time"] += seconds
                window["wait"] += wait
                window["count"] += 1
                if calibration is not None and calibration.add(seconds):
                    self.plan_steps(calibration.seconds_per_step())
                    calibration = None
                self.logger.advance(self.state.step, metrics["loss"])
                if self.state.step % tc.log_every_steps == 0 or self.state.step == self.num_train_steps:
                    self.log_train(metrics, window)
                    window = {"count": 0, "wait": 0.0, "time": 0.0}
                self.maybe_validate_and_save()
        finally:
            self.logger.close()
        return self.finish()

    def needs_calibration(self) -> bool:
        if not self.is_time_budgeted or self.state.planned_steps is not None:
            return False
        if self.accelerator.num_processes > 1:
            # each process would time its own steps and could plan another length: the group would hang
            raise UserError(
                "train.time_budget_min runs in one process; set train.num_processes=1 or use num_train_steps"
            )
        return True

    def plan_steps(self, seconds_per_step: float, quiet: bool = False) -> None:
        """Fix a time-budgeted run's length: the steps that fit in what is left of the budget."""
        budget_s = float(self.train_cfg.time_budget_min) * 60.0
        left_s = max(budget_s - self.state.train_seconds, 0.0)
        steps = self.state.step + max(1, int(left_s / seconds_per_step))
        self.state.planned_steps = min(steps, self.train_cfg.num_train_steps)
        self.state.plan_mark = (self.state.step, self.state.train_seconds)
        self.logger.set_total(self.state.planned_steps)
        if not quiet:
            self.accelerator.print(
                f"time budget {self.train_cfg.time_budget_min:g} min: {seconds_per_step:.3f} s per step -> "
                f"{self.state.planned_steps} steps"
            )

    def train_step(self, batches) -> tuple[dict[str, float], float]:  # noqa: ANN001 (iterator)
        """One optimizer step over `grad_accum` micro-batches; returns (metrics, data wait seconds)."""
        from data.transforms import frames_to_model

        accelerator, model = self.accelerator, self.model
        sums: dict[str, torch.Tensor] = {}
        wait = 0.0
        for _ in range(self.train_cfg.grad_accum):
            wait_start = time.perf_counter()
            batch = next(batches)
            wait += time.perf_counter() - wait_start
            self.num_skipped_reads += int(batch["skipped_reads"].sum())
            frames = frames_to_model(
                batch["frames"].to(accelerator.device, non_blocking=True)
            )  # [B, T, 3, H, W]
            actions = batch["actions"].to(accelerator.device, non_blocking=True)  # [B, T-1]
            with accelerator.accumulate(model):
                output = model(frames, actions)  # every kind takes (frames, actions=None)
                accelerator.backward(output.loss)
            for name, value in {"loss": output.loss, **output.metrics}.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float() / self.train_cfg.grad_accum
        grad_norm = self.clip_gradients()
        # One all-reduce of every scalar: the logged loss is the global mean, and all processes take
        # the same NaN-guard decision (the grad norm is already identical after DDP's all-reduce).
        names = sorted(sums)
        reduced = accelerator.reduce(
            torch.stack([sums[n] for n in names] + [grad_norm]), reduction="mean"
        ).tolist()
        metrics = dict(zip(names, reduced[:-1]))
        metrics["grad_norm"] = reduced[-1]
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        is_finite = self.nan_guard.should_step(self.state.step + 1, metrics["loss"], metrics["grad_norm"])
        if is_finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # torch warns when a skipped update precedes the LR step
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            self.scheduler.step()  # skipped steps count too: the schedule still ends at num_train_steps
        self.state.step += 1
        self.state.data_position += self.samples_per_step
        self.state.consecutive_nonfinite = self.nan_guard.consecutive
        return metrics, wait

    def clip_gradients(self) -> torch.Tensor:
        max_norm = self.train_cfg.grad_clip if self.train_cfg.grad_clip > 0 else float("inf")
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        return torch.as_tensor(norm, dtype=torch.float32, device=self.accelerator.device)

    def log_train(self, metrics: dict[str, float], window: dict[str, float]) -> None:
        step_time = window["time"] / max(window["count"], 1)
        record = {f"train/{k}": v for k, v in metrics.items()}
        record["perf/samples_per_s"] = self.samples_per_step / step_time if step_time > 0 else 0.0
        record["perf/data_wait_share"] = window["wait"] / window["time"] if window["time"] > 0 else 0.0
        record["perf/train_seconds"] = self.state.train_seconds  # the run's training time so far
        self.logger.log(self.state.step, record)
        self.last_metrics.update(record)

    # ---- validation and checkpoints ----------------------------------------------------------
    def maybe_validate_and_save(self) -> None:
        tc, step = self.train_cfg, self.state.step
        if self.is_time_budgeted:
            self.maybe_evaluate_budgeted()
            return
        is_last = step == self.num_train_steps
        if tc.validation.every_steps > 0 and (step % tc.validation.every_steps == 0 or is_last):
            self.run_validation()
        if step % tc.checkpoint.every_steps == 0 or is_last:
            self.save_checkpoint()

    def maybe_evaluate_budgeted(self) -> None:
        """A time-budgeted run validates and checkpoints `budget.evaluations` times, at even fractions of
        its planned length, the last at its end; before each it plans its length again from the speed
        since the last plan (a machine busier or quieter during calibration than later does not change
        the run's minutes)."""
        tc, state = self.train_cfg, self.state
        if state.planned_steps is None:
            return
        due = -(-(state.evaluations_done + 1) * state.planned_steps // tc.budget.evaluations)  # ceil
        if state.step < due and state.step < state.planned_steps:
            return
        if state.step < state.planned_steps:
            # the speed since the last plan: what the machine gives now
            steps, seconds = state.step - state.plan_mark[0], state.train_seconds - state.plan_mark[1]
            self.plan_steps(seconds / steps if steps > 0 else state.train_seconds / state.step, quiet=True)
        state.evaluations_done += 1
        if tc.validation.every_steps > 0:
            self.run_validation()
        self.save_checkpoint()

    def run_validation(self) -> None:
        accelerator = self.accelerator
        if accelerator.is_main_process and self.val_loader is not None:
            model = self.plain_model
            with accelerator.autocast():
                metrics = validate(
                    model,
                    self.cfg.kind,
                    self.val_loader,
                    self.train_cfg.validation,
                    self.run_dpath / "samples",
                    self.state.step,
                    accelerator.device,
                    self.validation_eval_settings(),
                    self.val_envs,
                )
            self.logger.log(self.state.step, metrics)
            self.last_metrics.update(metrics)
            self.last_validation = {"step": self.state.step, **{k: float(v) for k, v in metrics.items()}}
            self.update_best(metrics, model)
        accelerator.wait_for_everyone()

    def validation_eval_settings(self) -> EvalSettings | None:
        """The `eval:` protocol settings for validation: its own windows, no gifs; None to skip it.

        Their fit to the windows is checked before the first step (training/config_checks.py)."""
        vc = self.train_cfg.validation
        if self.cfg.kind == "tokenizer" or not vc.eval_protocol:
            return None
        settings = EvalSettings.from_config(self.cfg.eval)
        num_sequences = vc.num_batches * vc.batch_size
        return dataclasses.replace(settings, action_to_take=-1, num_sequences=num_sequences, num_gifs=0)

    def update_best(self, metrics: dict[str, float], model: torch.nn.Module) -> None:
        cc = self.train_cfg.checkpoint
        if cc.best_metric not in metrics:
            raise KeyError(f"train.checkpoint.best_metric={cc.best_metric} is not among {sorted(metrics)}")
        value, best = metrics[cc.best_metric], self.state.best_metric
        improved = best is None or (value > best if cc.best_mode == "max" else value < best)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.step
            save_checkpoint(
                model, best_model_dpath(self.run_dpath), self.checkpoint_extra(**{cc.best_metric: value})
            )

    def checkpoint_extra(self, **best: float) -> dict[str, Any]:
        """What a saved model records beside its weights, and its model card shows (models/model_card.py)."""
        return {
            "step": self.state.step,
            **best,
            "trained_on": self.trained_on,
            "last_validation": self.last_validation,
            "command": shlex.join(["python", *self.argv]),
        }

    def save_checkpoint(self) -> None:
        accelerator, step = self.accelerator, self.state.step
        self.state.scheduler = self.scheduler.state_dict()
        if accelerator.is_main_process:
            ckpt.begin_save(self.checkpoints_dpath, step)
        accelerator.wait_for_everyone()
        partial = ckpt.partial_dpath(self.checkpoints_dpath, step)
        ckpt.save_process_rng(partial, accelerator.process_index)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_checkpoint(self.plain_model, step_model_dpath(partial), self.checkpoint_extra())
            ckpt.save_main_state(partial, self.optimizer.optimizer, self.state)
            ckpt.finish_save(self.checkpoints_dpath, step)
            ckpt.apply_retention(
                self.checkpoints_dpath, self.train_cfg.checkpoint.keep_last, self.state.best_step
            )
        accelerator.wait_for_everyone()

    # ---- cleanup -----------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        accelerator = self.accelerator
        if accelerator.is_main_process:
            save_checkpoint(
                self.plain_model,
                final_model_dpath(self.run_dpath),
                self.checkpoint_extra(),
            )
        accelerator.wait_for_everyone()
        summary = {
            "run_dpath": str(self.run_dpath),
            "final_model": str(final_model_dpath(self.run_dpath)),
            "best_model": str(best_model_dpath(self.run_dpath)) if self.state.best_step is not None else None,
            "best": {
                self.train_cfg.checkpoint.best_metric: self.state.best_metric,
                "step": self.state.best_step,
            },
            "step": self.state.step,
            "metrics": self.last_metrics,
            "store_dpath": str(self.store_dpath),
            "num_unreadable_episodes": self.num_unreadable_episodes,
            "num_skipped_reads": int(
                self.accelerator.reduce(
                    torch.tensor(self.num_skipped_reads, device=accelerator.device), "sum"
                )
            ),
        }
        accelerator.end_training()
        return summary
