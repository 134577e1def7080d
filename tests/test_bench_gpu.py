"""`bench gpu`: its time guards, batch search, peak table, and the whole command as the CPU stand-in
(tiny preset) writing its three records, with a CoinRun training run whose loss falls."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import torch

from benchmarks import bench_gpu, results_md, train_step_speed
from benchmarks.devices import bf16_peak_tflops, is_out_of_memory
from benchmarks.train_step_speed import Deadline, StepFigures, StepSetup
from common.errors import UserError


@pytest.mark.parametrize(
    ("name", "tflops"),
    [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.0),
     ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L40S", 362.0), ("NVIDIA L4", 121.0),
     ("NVIDIA GeForce RTX 3090", None), ("cpu", None)],
)  # fmt: skip
def test_the_bf16_peak_is_known_for_data_centre_gpus_and_no_mfu_otherwise(name, tflops):
    assert bf16_peak_tflops(name) == tflops
    figures = StepFigures(
        batch=8, s_per_step=0.5, tokens_per_step=8 * 4096, peak_memory_gb=1.0, flops_per_step=1e14
    )
    assert figures.mfu(tflops) == (None if tflops is None else pytest.approx(2e14 / (tflops * 1e12)))


def test_a_part_past_its_limits_is_recorded_and_the_next_one_runs():
    started = time.perf_counter()
    status = bench_gpu.guarded("slow", 0.2, 0.1, lambda deadline: time.sleep(30), grace_s=0.3)
    assert "slow: stopped at its hard time limit" in status and time.perf_counter() - started < 5
    assert "skipped, 0 s of the budget left, it needs 9 s" in bench_gpu.guarded("late", 0.4, 9.0, print)
    failed = bench_gpu.guarded("broken", 5.0, 0.1, lambda deadline: 1 / 0)
    assert failed.startswith("broken: failed after 0 s: ZeroDivisionError")
    seen = []
    assert "fine:" in bench_gpu.guarded("fine", 5.0, 0.1, lambda deadline: seen.append(deadline.left()))
    assert 4.0 < seen[0] <= 5.0


def test_an_inner_time_limit_keeps_the_outer_one():
    with pytest.raises(bench_gpu.TimeLimitReached), bench_gpu.hard_limit(0.5):
        with bench_gpu.hard_limit(5.0):  # ends early ...
            pass
        time.sleep(3)  # ... and the outer limit still fires
    started = time.perf_counter()
    with pytest.raises(bench_gpu.TimeLimitReached), bench_gpu.hard_limit(0.2):
        with contextlib.suppress(bench_gpu.TimeLimitReached), bench_gpu.hard_limit(10.0):
            time.sleep(3)  # an inner limit longer than the outer one is cut to it ...
        time.sleep(3)  # ... and the outer one, spent, fires at once
    assert time.perf_counter() - started < 1.5


def fake_device(monkeypatch, fits_up_to: int, peak_gb=lambda batch: 1.0, total_gb=None) -> list[int]:
    """train_step_speed on a pretend device: batches above `fits_up_to` run out of memory."""
    tried: list[int] = []

    def step_function(model, setup):
        def step(frames, actions):
            tried.append(frames.shape[0])
            if frames.shape[0] > fits_up_to:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        return step

    monkeypatch.setattr(train_step_speed, "step_function", step_function)
    monkeypatch.setattr(
        train_step_speed, "make_batch", lambda model, setup, b: (torch.zeros(b), torch.zeros(b))
    )
    monkeypatch.setattr(train_step_speed, "peak_memory_gb", lambda device: peak_gb(tried[-1]))
    monkeypatch.setattr(train_step_speed, "total_memory_gb", lambda device: total_gb)
    return tried


def test_the_batch_search_doubles_until_out_of_memory_a_memory_budget_or_max_batch(monkeypatch):
    setup = StepSetup("tokenizer", "tiny", torch.device("cpu"), None)
    tried = fake_device(monkeypatch, fits_up_to=8)
    assert train_step_speed.find_batch(torch.nn.Linear(1, 1), setup, 64, 0.85, Deadline(60)) == (
        8,
        "batch 16 ran out of memory",
    )
    assert tried == [1, 2, 4, 8, 16]
    fake_device(monkeypatch, fits_up_to=1000, peak_gb=lambda b: 1.0 + b, total_gb=10.0)  # 1 GB + 1 GB/sample
    assert train_step_speed.find_batch(torch.nn.Linear(1, 1), setup, 64, 0.85, Deadline(60)) == (
        4,
        "batch 8 would pass 85% of 10 GB",
    )
    fake_device(monkeypatch, fits_up_to=1000)
    assert train_step_speed.find_batch(torch.nn.Linear(1, 1), setup, 4, 0.85, Deadline(60)) == (
        4,
        "max_batch 4",
    )
    fake_device(monkeypatch, fits_up_to=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # not even batch 1: the configuration fails, recorded
        train_step_speed.find_batch(torch.nn.Linear(1, 1), setup, 4, 0.85, Deadline(60))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory")) and not is_out_of_memory(
        ValueError()
    )


def test_unknown_options_are_one_line():
    with pytest.raises(UserError, match="unknown gpu option"):
        bench_gpu.parse_options({"budget": "10"}, has_cuda=False)
    with pytest.raises(UserError, match="models must be"):
        bench_gpu.parse_options({"models": "lam"}, has_cuda=False)
    assert bench_gpu.parse_options({}, has_cuda=False)["presets"] == ["tiny"]
    assert bench_gpu.parse_options({}, has_cuda=True)["presets"] == ["neurips", "cvpr"]


@pytest.fixture
def results_in(tmp_path, monkeypatch):
    """publish() writes under tmp_path, not into benchmarks/RESULTS.md."""
    monkeypatch.setattr(results_md, "BENCH_DPATH", tmp_path)
    monkeypatch.setattr(results_md, "RESULTS_MD_FPATH", tmp_path / "RESULTS.md")
    (tmp_path / "results").mkdir()
    return tmp_path


def records(dpath, suffix: str = "_cpu_tiny") -> dict[str, dict]:
    return {
        name: json.loads((dpath / "results" / f"{name}{suffix}.json").read_text())
        for name in bench_gpu.COLUMNS
    }


@pytest.mark.slow
def test_the_cpu_stand_in_records_every_part_and_its_coinrun_loss_falls(results_in):
    torch.set_num_threads(1)
    assert bench_gpu.main(budget_s="150", train_s="15") == 0  # the CPU defaults: modes=eager
    got = records(results_in)
    train = got["gpu_training_step"]["rows"]
    assert [(r["model"], r["mode"]) for r in train] == [("genie_redux_guided", "eager"), ("tokenizer", "eager"),
                                                        ("genie_redux", "eager")]  # fmt: skip
    for row in train:
        assert row["s_per_step"] > 0 and row["tokens_per_s"] > 0 and row["batch"] >= 1, row
        assert row["mfu"] == "–"  # a CPU has no bf16 peak in the table
    assert "MFU not reported: cpu is not in the bf16 peak table" in got["gpu_training_step"]["notes"]
    inference = got["gpu_inference"]["rows"]
    assert {(r["part"], r["maskgit_steps"]) for r in inference if r["batch"] == 1} >= {
        ("generation", 1),
        ("generation", 8),
        ("generation", 25),
        ("player", 2),
        ("player", 8),
    }
    assert [r["batch"] for r in inference if r["part"] == "auto_explore_reward"] == [8]
    assert all(r["frames_per_s"] > 0 for r in inference)
    (run,) = got["gpu_coinrun_training"]["rows"]
    assert run["steps"] >= 20 and run["loss_fell"] is True, run
    assert run["loss_last"] < run["loss_first"]
    assert "<!-- bench:gpu_coinrun_training_cpu_tiny -->" in (results_in / "RESULTS.md").read_text()


@pytest.mark.slow
def test_the_compiled_mode_of_the_training_steps_runs_on_cpu(monkeypatch):
    """The benchmark's compiled path (compile, warm-up, timing, the twin's batch) with Dynamo's eager
    backend: inductor's kernels against eager are tests/test_compile.py's job, and its C++ build takes
    a minute per model here."""
    torch.set_num_threads(1)
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, **{**kw, "backend": "eager"}))
    opts = bench_gpu.parse_options({"models": "tokenizer", "modes": "eager,compiled"}, has_cuda=False)
    rows, measured = [], {}
    bench_gpu.training_steps(rows, opts, torch.device("cpu"), None, Deadline(900), measured)
    assert [r["mode"] for r in rows] == ["eager", "compiled"]
    assert all(r.get("s_per_step") for r in rows), [r["note"] for r in rows]
    assert measured["tiny", "tokenizer", "compiled"].batch == measured["tiny", "tokenizer", "eager"].batch


class FakeCuda:
    """torch.cuda's memory and naming functions for a pretend 80 GB H100."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_device_name(self, device) -> str:
        return "NVIDIA H100 80GB HBM3"

    def empty_cache(self) -> None:
        self.calls.append("empty_cache")

    def reset_peak_memory_stats(self, device) -> None:
        self.calls.append("reset_peak_memory_stats")

    def max_memory_allocated(self, device) -> int:
        return 3 * 1024**3

    def get_device_properties(self, device):
        return type("Properties", (), {"total_memory": 80 * 1024**3})()


def test_the_gpu_side_of_the_device_helpers_through_a_stand_in():
    from benchmarks import devices

    cuda, gpu = FakeCuda(), torch.device("cuda")
    assert bf16_peak_tflops(devices.device_name(gpu, cuda)) == 989.0
    devices.reset_peak_memory(gpu, cuda)
    assert cuda.calls == ["empty_cache", "reset_peak_memory_stats"]
    assert devices.peak_memory_gb(gpu, cuda) == 3.0 and devices.total_memory_gb(gpu, cuda) == 80.0
    cpu = torch.device("cpu")
    devices.reset_peak_memory(cpu, cuda)
    assert len(cuda.calls) == 2 and devices.total_memory_gb(cpu, cuda) is None
    assert devices.device_name(cpu, cuda) == "cpu" and devices.peak_memory_gb(cpu, cuda) > 0
    devices.synchronize(cpu)  # torch.cpu.synchronize: the line torch.cuda.synchronize takes on a GPU
