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
