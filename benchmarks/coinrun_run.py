"""A short CoinRun training run through the launcher, for bench_gpu: record a small CoinRun store
(`generate config=coinrun/random`), train a tokenizer on it for a fixed wall time
(`genie_redux train config=tokenizer`), and read from its metrics.jsonl whether the loss fell.

The store is recorded in the background while the other parts measure (it needs the CPU, they the
GPU). The run gets as many steps as fit in its time at the step time measured for it, or runs until
its time limit stops it; either way what it logged is the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
STORE_NAME = "coinrun_bench"
LOSS_WINDOW = 3  # logged losses averaged at each end of the run
STOP_WAIT_S = 10.0  # after SIGINT, the run's time to stop before SIGKILL


def launcher(*args: str) -> list[str]:
    return [sys.executable, str(REPO_DPATH / "run.py"), *args]


def start_store(root_dpath: Path, image_size: int, num_sessions: int, max_steps: int,
                num_workers: int) -> subprocess.Popen:  # fmt: skip
    """Start recording random-agent CoinRun episodes into root_dpath/STORE_NAME (returns at once)."""
    command = launcher("generate", "config=coinrun/random", f"output_dpath={root_dpath / STORE_NAME}",
                       f"n_sessions={num_sessions}", f"n_steps_max={max_steps}", f"image_size={image_size}",
                       f"n_workers={num_workers}")  # fmt: skip
    with open(root_dpath / "generate.log", "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env())


def wait_store(process: subprocess.Popen, root_dpath: Path, timeout_s: float) -> str | None:
    """None once the store is complete; else why not (the generator's last lines)."""
    try:
        code = process.wait(timeout=max(timeout_s, 1.0))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return f"recording the CoinRun store took longer than {timeout_s:.0f} s"
    if code != 0:
        tail = (root_dpath / "generate.log").read_text()[-300:].strip().replace("\n", " | ")
        return f"generate exited with {code}: {tail}"
    return None


def child_env() -> dict[str, str]:
    return {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}


def train_command(root_dpath: Path, preset: str, batch: int, num_steps: int, num_workers: int) -> list[str]:
    lr = 1e-3 if preset == "tiny" else 1e-4  # tiny models take (and at this step count need) a larger rate
    return launcher("genie_redux", "train", "config=tokenizer", f"model={preset}", f"run_dpath={root_dpath / 'run'}",
                    f"train.dataset_root_dpath={root_dpath}", f"train.dataset_name={STORE_NAME}",
                    "train.num_processes=1", f"train.batch_size={batch}", "train.grad_accum=1",
                    f"train.num_train_steps={num_steps}", f"train.num_workers={num_workers}",
                    "train.log_every_steps=5", "train.validation.every_steps=0",
                    f"train.checkpoint.every_steps={num_steps}", "train.schedule.warmup_steps=10",
                    f"train.optimizer.lr_max={lr}", f"train.optimizer.lr_min={lr / 2}")  # fmt: skip


def run_for(command: list[str], seconds: float, log_fpath: Path) -> tuple[int | None, float]:
    """Run `command` for at most `seconds`; then SIGINT (its own process group), then SIGKILL.

    -> (exit code, or None when the time limit stopped it; wall seconds)."""
    started = time.perf_counter()
    with open(log_fpath, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                                   start_new_session=True)  # fmt: skip
        try:
            return process.wait(timeout=seconds), time.perf_counter() - started
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):  # then SIGKILL, below
                process.wait(timeout=STOP_WAIT_S)
            return None, time.perf_counter() - started
        finally:  # whatever stopped us (a time limit of the caller too), the run and its workers go
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def logged_losses(run_dpath: Path) -> list[tuple[int, float, float | None]]:
    """(step, train/loss, perf/samples_per_s) of every logged training row."""
    fpath = run_dpath / "metrics.jsonl"
    rows = (
        [json.loads(line) for line in fpath.read_text().splitlines() if line.strip()]
        if fpath.is_file()
        else []
    )
    return [(r["step"], r["train/loss"], r.get("perf/samples_per_s")) for r in rows if "train/loss" in r]


def training_row(root_dpath: Path, preset: str, batch: int, num_steps: int, limit_s: float,
                 num_workers: int) -> dict[str, Any]:  # fmt: skip
    """Train for at most `limit_s` wall seconds (start-up included) and summarise what it logged."""
    command = train_command(root_dpath, preset, batch, num_steps, num_workers)
    code, wall_s = run_for(command, limit_s, root_dpath / "train.log")
    logged = logged_losses(root_dpath / "run")
    row: dict[str, Any] = {"model": "tokenizer", "preset": preset, "batch": batch, "wall_s": wall_s}
    if len(logged) < 2 * LOSS_WINDOW:
        tail = (root_dpath / "train.log").read_text()[-300:].strip().replace("\n", " | ")
        return {**row, "steps": logged[-1][0] if logged else 0, "loss_fell": False,
                "note": f"too few logged losses ({len(logged)}); exit {code}: {tail}"}  # fmt: skip
    first = sum(loss for _, loss, _ in logged[:LOSS_WINDOW]) / LOSS_WINDOW
    last = sum(loss for _, loss, _ in logged[-LOSS_WINDOW:]) / LOSS_WINDOW
    rates = [rate for _, _, rate in logged[1:] if rate]
    ending = (
        "finished its steps"
        if code == 0
        else ("stopped at its time limit" if code is None else f"exit {code}")
    )
    return {**row, "steps": logged[-1][0], "samples_per_s": sum(rates) / len(rates) if rates else None,
            "loss_first": first, "loss_last": last, "loss_fell": last < first,
            "note": f"{ending}; loss = mean of the first / last {LOSS_WINDOW} logged (every 5 steps)"}  # fmt: skip
