"""Several processes of one run: whether this one was started by a launcher (`accelerate launch`,
torchrun), and the command that starts N of them for agent training."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]


def is_launched_worker() -> bool:
    """True inside a process started by `accelerate launch` / torchrun."""
    return "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def launched_rank() -> int:
    """This process's global rank under a launcher (0 in a plain process)."""
    return int(os.environ.get("RANK", "0"))


def torchrun_command(num_processes: int, run_args: list[str]) -> list[str]:
    """`python -m torch.distributed.run` starting `num_processes` copies of `run.py <run_args>` on this
    machine; `--standalone` picks a free rendezvous port, so parallel runs never collide."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*command, "--nproc_per_node", str(num_processes), str(REPO_DPATH / "run.py"), *run_args]
