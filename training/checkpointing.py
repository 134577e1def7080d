"""Training checkpoints: atomic step directories, retention of the last K plus the best, full resume.

    run_dpath/checkpoints/step_000500/
        model/                  a models.checkpoint checkpoint (models.checkpoint.step_model_dpath)
        optimizer.safetensors   optimizer tensors (+ param groups and scalars in optimizer.json);
                                a run saved before this layout has optimizer.pt, read with weights_only=True
        rng_rank{r}.safetensors one per process (+ .json for the scalar parts)
        trainer_state.json      step, data position, scheduler, best metric, NaN-guard counter

A step directory is assembled under a hidden `.step_000500.partial` name and renamed into place, so a
directory named `step_*` is always complete; a SIGKILL mid-save leaves only a partial one, removed on
the next save.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_write_json, replace_dpath
from common.errors import UserError
from common.state_files import load_optimizer_tensors, load_tensors, optimizer_tensors, save_tensors
from models.checkpoint import CheckpointVersionError, read_config, read_weights, step_model_dpath
from training.rng_state import load_rng_state, save_rng_state

STEP_PREFIX = "step_"
OPTIMIZER_TENSORS_FNAME, OPTIMIZER_META_FNAME = "optimizer.safetensors", "optimizer.json"
LEGACY_OPTIMIZER_FNAME = "optimizer.pt"  # runs saved before the optimizer was split into safetensors + JSON


@dataclass
class TrainerState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    step: int = 0  # optimizer steps taken (skipped NaN steps included)
    data_position: int = 0  # samples of the global stream consumed, all processes together
    scheduler: dict[str, Any] = field(default_factory=dict)
    best_metric: float | None = None
    best_step: int | None = None
    consecutive_nonfinite: int = 0
    planned_steps: int | None = None  # a time-budgeted run's step count, once calibrated
    train_seconds: float = 0.0  # wall seconds of training steps (validation and checkpoints not counted)
    evaluations_done: int = 0  # a time-budgeted run's validations and checkpoints so far
    plan_mark: tuple[int, float] = (0, 0.0)  # (step, train_seconds) when its length was last planned


def step_dname(step: int) -> str:
    return f"{STEP_PREFIX}{step:07d}"


def completed_steps(checkpoints_dpath: Path) -> list[int]:
    """Steps with a complete checkpoint directory, ascending."""
    if not checkpoints_dpath.is_dir():
        return []
    steps = []
    for path in checkpoints_dpath.iterdir():
        if path.is_dir() and path.name.startswith(STEP_PREFIX) and (path / "trainer_state.json").is_file():
            steps.append(int(path.name.removeprefix(STEP_PREFIX)))
    return sorted(steps)


def partial_dpath(checkpoints_dpath: Path, step: int) -> Path:
    return checkpoints_dpath / f".{step_dname(step)}.partial"


def begin_save(checkpoints_dpath: Path, step: int) -> Path:
    """Main process: a fresh partial directory for `step` (stale partials from a killed run removed)."""
    checkpoints_dpath.mkdir(parents=True, exist_ok=True)
    for stale in checkpoints_dpath.glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    dpath = partial_dpath(checkpoints_dpath, step)
    dpath.mkdir()
    return dpath


def save_process_rng(dpath: Path, rank: int) -> None:
    """Every process: its own RNG state into the partial directory."""
    save_rng_state(dpath / f"rng_rank{rank}.safetensors")


def save_main_state(dpath: Path, optimizer: torch.optim.Optimizer, state: TrainerState) -> None:
    """Main process: optimizer tensors and the trainer state (the model is saved by the caller)."""
    tensors, meta = optimizer_tensors(optimizer)
    save_tensors(dpath / OPTIMIZER_TENSORS_FNAME, tensors)
    atomic_write_json(dpath / OPTIMIZER_META_FNAME, meta)
    atomic_write_json(dpath / "trainer_state.json", asdict(state))


def finish_save(checkpoints_dpath: Path, step: int) -> Path:
    """Main process: rename the partial directory into place (atomic on one filesystem)."""
    final = checkpoints_dpath / step_dname(step)
    replace_dpath(partial_dpath(checkpoints_dpath, step), final)  # the same step saved again: replaced
    return final


def apply_retention(checkpoints_dpath: Path, keep_last: int, best_step: int | None) -> list[int]:
    """Delete step directories except the last `keep_last` and the best; return the deleted steps."""
    steps = completed_steps(checkpoints_dpath)
    keep = set(steps[-keep_last:]) if keep_last > 0 else set()
    if best_step is not None:
        keep.add(best_step)
    deleted = [s for s in steps if s not in keep]
    for step in deleted:
        shutil.rmtree(checkpoints_dpath / step_dname(step), ignore_errors=True)
    return deleted


def damage(step_dpath: Path, rank: int) -> str | None:
    """What keeps `step_dpath` from being resumed (a truncated or unreadable file), or None if it loads.

    A model checkpoint of an older format is not damage but a version mismatch: UserError."""
    model_dpath = step_model_dpath(step_dpath)
    try:
        read_config(model_dpath)
    except CheckpointVersionError as error:
        raise UserError(f"cannot resume: {error}; or start afresh with another run_dpath") from None
    except ValueError as error:  # damaged config.yaml: not YAML, cut short, not a checkpoint's
        return str(error)
    try:
        read_weights(model_dpath)
    except ValueError as error:
        return str(error)
    optimizer_checks = (
        {LEGACY_OPTIMIZER_FNAME: lambda fpath: torch.load(fpath, map_location="cpu", weights_only=True)}
        if is_legacy_optimizer(step_dpath)
        else {
            OPTIMIZER_TENSORS_FNAME: load_tensors,
            OPTIMIZER_META_FNAME: lambda fpath: json.loads(fpath.read_text()),
        }
    )
    checks = {
        **optimizer_checks,
        "trainer_state.json": lambda fpath: TrainerState(**json.loads(fpath.read_text())),
        f"rng_rank{rank}.safetensors": load_tensors,
    }
    for name, load in checks.items():
        try:
            load(step_dpath / name)
        except Exception as error:  # noqa: BLE001 (any failure to read means: not this checkpoint)
            return f"{name} is damaged or missing ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})"
    return None


def load_trainer_state(step_dpath: Path) -> TrainerState:
    return TrainerState(**json.loads((step_dpath / "trainer_state.json").read_text()))


def is_legacy_optimizer(step_dpath: Path) -> bool:
    return (
        not (step_dpath / OPTIMIZER_TENSORS_FNAME).is_file()
        and (step_dpath / LEGACY_OPTIMIZER_FNAME).is_file()
    )


def load_optimizer(step_dpath: Path, optimizer: torch.optim.Optimizer) -> None:
    if is_legacy_optimizer(step_dpath):
        # weights_only=True: an old checkpoint can hold tensors and plain containers, never code.
        state_dict = torch.load(step_dpath / LEGACY_OPTIMIZER_FNAME, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state_dict)
        return
    meta = json.loads((step_dpath / OPTIMIZER_META_FNAME).read_text())
    load_optimizer_tensors(optimizer, load_tensors(step_dpath / OPTIMIZER_TENSORS_FNAME), meta)


def load_process_rng(step_dpath: Path, rank: int) -> None:
    fpath = step_dpath / f"rng_rank{rank}.safetensors"
    if not fpath.is_file():
        raise UserError(
            f"{fpath.name} missing in {step_dpath}; resume with the train.num_processes the run was saved with"
        )
    load_rng_state(fpath)
