"""`python run.py test`: one pytest-xdist worker per core unless the caller chose, each with its share."""

from __future__ import annotations

import os

import torch

from common.test_runner import parallel_args
from tests.conftest import SUITE_THREADS, WORKERS


def test_the_suite_runs_one_worker_per_core_unless_the_caller_chose(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert parallel_args([]) == ["-n", "2", "--dist", "loadfile"]
    assert parallel_args(["-k", "store"]) == ["-n", "2", "--dist", "loadfile"]
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert parallel_args([])[:2] == ["-n", "4"]  # more workers than that build more fixtures than they save
    for chose in (["-n", "1"], ["-n3"], ["-nauto"], ["--numprocesses=2"], ["-p", "no:xdist"]):
        assert parallel_args(chose) == [], chose
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert parallel_args([]) == []


def test_each_worker_keeps_to_its_share_of_the_cores():
    # two 2-thread processes on two cores run several times slower each than two 1-thread ones
    assert max(2, os.cpu_count() or 1) >= SUITE_THREADS * WORKERS
    assert torch.get_num_threads() == SUITE_THREADS  # the autouse fixture ran
    if WORKERS > 1:
        assert os.environ["OMP_NUM_THREADS"] == str(SUITE_THREADS)  # what the commands a test starts inherit


def test_two_tests_that_start_process_groups_never_overlap(tmp_path):
    """Two pytest processes (as two xdist workers are), each running a test that holds the lock for 1 s:
    the second starts only after the first has finished."""
    import subprocess
    import sys
    from pathlib import Path

    repo_dpath = Path(__file__).resolve().parents[1]
    (tmp_path / "test_holder.py").write_text(
        "import os, time\n"
        "def test_hold(one_process_group_at_a_time):\n"
        "    start = time.time(); time.sleep(1.0)\n"
        "    open(os.environ['SPAN_FPATH'], 'w').write(f'{start} {time.time()}')\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
               "-p", "tests.conftest", str(tmp_path / "test_holder.py")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo_dpath)}
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**env, "SPAN_FPATH": str(tmp_path / f"span{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for i in range(2)
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stdout.read().decode()[-2000:]
    (a0, a1), (b0, b1) = (tuple(map(float, (tmp_path / f"span{i}").read_text().split())) for i in range(2))
    assert a1 <= b0 or b1 <= a0, ((a0, a1), (b0, b1))
