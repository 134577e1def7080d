"""What a run leaves for the user to read: the run directory, metrics.jsonl, the progress bar, wandb.

Only the main process logs. metrics.jsonl has one JSON object per logged step; on resume, lines past
the checkpoint's step are dropped so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from common.atomic import atomic_write_text
from common.paths import run_config_fpath
from common.progress import progress_bar

METRICS_FNAME = "metrics.jsonl"


def write_run_files(run_dpath: Path, cfg: DictConfig, argv: list[str]) -> None:
    """The resolved config and the command line, so a run folder says how it was made."""
    run_dpath.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_config_fpath(run_dpath), OmegaConf.to_yaml(cfg, resolve=True))
    command = shlex.join([Path(sys.executable).name, *argv])
    with open(run_dpath / "command.txt", "a") as handle:  # appended: each resume adds a line
        handle.write(command + "\n")


def truncate_metrics(metrics_fpath: Path, last_step: int) -> None:
    """Drop records logged after `last_step` (the checkpoint a resumed run restarts from)."""
    if not metrics_fpath.is_file():
        return
    kept = []
    for line in metrics_fpath.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by SIGKILL
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line)
    atomic_write_text(metrics_fpath, "".join(f"{line}\n" for line in kept))


def read_metrics(metrics_fpath: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(metrics_fpath).read_text().splitlines() if line.strip()]


class RunLogger:
    """JSONL + tqdm + optional wandb for the main process; a no-op on the others."""

    def __init__(
        self,
        run_dpath: Path,
        *,
        is_main: bool,
        start_step: int,
        num_train_steps: int,
        wandb_cfg: DictConfig,
        cfg: DictConfig,
    ) -> None:
        self.is_main = is_main
        self.metrics_fpath = run_dpath / METRICS_FNAME
        self.bar = progress_bar(total=num_train_steps, initial=start_step, desc="train", disable=not is_main)
        self.wandb_run = None
        if is_main and wandb_cfg.enabled:
            self.wandb_run = start_wandb(run_dpath, wandb_cfg, cfg)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.is_main:
            return
        record = {"step": step, **metrics}
        with open(self.metrics_fpath, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=step)

    def set_total(self, num_train_steps: int) -> None:
        """A time-budgeted run knows its length after its first steps."""
        if self.is_main:
            self.bar.total = num_train_steps
            self.bar.refresh()

    def advance(self, step: int, loss: float | None) -> None:
        if self.is_main:
            self.bar.update(step - self.bar.n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def start_wandb(run_dpath: Path, wandb_cfg: DictConfig, cfg: DictConfig):  # noqa: ANN201 (wandb type)
    try:
        import wandb
    except ImportError:
        from common.errors import UserError

        raise UserError("train.wandb.enabled=true needs wandb: pip install 'genie-redux[wandb]'") from None
    return wandb.init(
        project=wandb_cfg.project,
        entity=wandb_cfg.entity,
        mode=wandb_cfg.mode,
        dir=str(run_dpath),
        name=run_dpath.name,
        config=OmegaConf.to_container(cfg, resolve=True),
        resume="allow",
        id=run_dpath.name,
    )


def last_validation(metrics_fpath: Path) -> dict[str, float]:
    """The last `val/...` record of a run's metrics.jsonl, with its step ({} if it never validated)."""
    records = read_metrics(metrics_fpath) if metrics_fpath.is_file() else []
    for record in reversed(records):
        values = {k: v for k, v in record.items() if k.startswith("val/")}
        if values:
            return {"step": record["step"], **values}
    return {}
