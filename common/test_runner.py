"""`python run.py test [pytest args]`: the whole suite, slow end-to-end tests included (as CI runs it)."""

from __future__ import annotations

import os
import subprocess
import sys


def main(mode: str | None, args: list[str]) -> int:
    # pytest exits 5 when nothing was collected: treat that as a failure, CI must run tests.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    # the slowest tests are listed at the end: the suite must stay under 15 minutes, and this shows where it goes
    return subprocess.call(
        [sys.executable, "-m", "pytest", "--durations=15", *parallel_args(args), *args], env=env
    )


def parallel_args(args: list[str]) -> list[str]:
    """One pytest-xdist worker per core, up to 4 (tests/conftest.py gives each its share of the cores); a
    test file stays on one worker, so its module fixtures are built once. None when the caller chose (-n,
    -p no:xdist) or on one core."""
    workers = min(4, os.cpu_count() or 1)
    chose = any(a.startswith("-n") or a.startswith("--numprocesses") or "xdist" in a for a in args)
    return [] if chose or workers < 2 else ["-n", str(workers), "--dist", "loadfile"]
