"""Run `python run.py ...` commands for an experiment: logged per chain, several chains side by side."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]


class Launcher:
    """Runs `python run.py ...` commands, logging them; several chains may run at once (threads)."""

    def __init__(self, log_fpath: Path, threads_per_job: int) -> None:
        self.log_fpath, self.threads = log_fpath, threads_per_job
        self.lock = threading.Lock()
        self.commands: list[str] = []

    def __call__(self, args: list[str], tag: str, module: str | None = None) -> None:
        """`python run.py ARGS` (or `python -m MODULE ARGS`), its output appended to the chain's log."""
        entry = ["-m", module] if module else [str(REPO_DPATH / "run.py")]
        line = f"python {f'-m {module}' if module else 'run.py'} {' '.join(args)}"
        with self.lock:
            self.commands.append(line)
            print(f"[{tag}] $ {line}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        part_fpath = self.log_fpath.with_name(f"{self.log_fpath.stem}_{tag}.log")
        with open(part_fpath, "a") as log:
            log.write(f"$ {line}\n")
            log.flush()
            code = subprocess.call(
                [sys.executable, *entry, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_DPATH,
                env=env,
            )
        if code != 0:
            raise RuntimeError(f"`{line}` failed ({code}); see {part_fpath}")


def run_chains(chains: dict[str, list[list[str]]], launch: Launcher, jobs: int) -> None:
    """Each chain's commands in order; up to `jobs` chains at once. The first failure stops the run."""
    errors: list[BaseException] = []
    pending = list(chains.items())
    lock = threading.Lock()

    def worker() -> None:
        while not errors:
            with lock:
                if not pending:
                    return
                tag, commands = pending.pop(0)
            try:
                for args in commands:
                    launch(args, tag)
            except BaseException as error:  # noqa: BLE001 - reported below, after the other chains stop
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"error: {errors[0]}")
