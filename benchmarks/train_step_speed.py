"""A world-model training step on one device: step time, tokens/s, peak memory and model FLOPs
utilisation, eager or compiled, at a batch that fills the device (benchmarks/bench_gpu.py).

The batch is found by doubling (eager) until the next doubling would pass `memory_fraction` of the
device's memory by a linear extrapolation of the measured peaks, an out-of-memory error, `max_batch`
or a time limit. FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` over one forward +
backward at a small batch on the same device and scaled to the batch (the masked-token head makes the
count vary by a fraction of a percent between draws); the optimizer step is not counted. MFU = counted
FLOPs / step time / the device's dense bf16 peak (benchmarks/devices.py), none for a device not listed.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.devices import (
    is_out_of_memory,
    peak_memory_gb,
    reset_peak_memory,
    synchronize,
    total_memory_gb,
)

FLOP_COUNT_BATCH = 2  # samples the FLOPs are counted at, then scaled linearly to the batch


@dataclass(frozen=True)
class StepSetup:
    kind: str  # tokenizer | genie_redux_guided | genie_redux
    preset: str
    device: torch.device
    autocast_dtype: torch.dtype | None  # bf16 autocast around the forward, or None for fp32
    num_frames: int = 16


@dataclass
class StepFigures:
    batch: int
    s_per_step: float
    tokens_per_step: int
    peak_memory_gb: float
    flops_per_step: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_step / self.s_per_step

    def mfu(self, peak_tflops: float | None) -> float | None:
        return None if peak_tflops is None else self.flops_per_step / self.s_per_step / (peak_tflops * 1e12)


class Deadline:
    """A time limit for one measurement: `left()` seconds remain; `passed()` once they are spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    def passed(self) -> bool:
        return self.left() <= 0


def build_model(setup: StepSetup) -> nn.Module:
    from models.presets import build

    torch.manual_seed(0)
    return build(setup.kind, setup.preset).to(setup.device).train()


def tokens_per_sample(model: nn.Module, num_frames: int) -> int:
    """Tokens one clip of `num_frames` frames is to the model: frames x the tokenizer's h x w grid."""
    from models.presets import model_tokenizer

    h, w = model_tokenizer(model).grid
    return num_frames * h * w


def make_batch(model: nn.Module, setup: StepSetup, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    from models.presets import model_tokenizer

    size = model_tokenizer(model).config.image_size
    frames = torch.rand(batch, setup.num_frames, 3, size, size, device=setup.device)  # [B, T, 3, H, W]
    actions = torch.randint(0, 8, (batch, setup.num_frames - 1), device=setup.device)  # [B, T-1]
    return frames, actions


def step_function(model: nn.Module, setup: StepSetup) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One AdamW training step (forward under autocast, backward, update) as the trainer does it."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-4)
    dtype = setup.autocast_dtype

    def step(frames: torch.Tensor, actions: torch.Tensor) -> None:
        with torch.autocast(setup.device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(frames, actions).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def count_flops(model: nn.Module, setup: StepSetup, batch: int) -> float:
    """FLOPs of one forward + backward at `batch`, counted at FLOP_COUNT_BATCH and scaled."""
    frames, actions = make_batch(model, setup, FLOP_COUNT_BATCH)
    counter = FlopCounterMode(display=False)
    dtype = setup.autocast_dtype
    with counter, torch.autocast(setup.device.type, dtype=dtype, enabled=dtype is not None):
        model(frames, actions).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() * batch / FLOP_COUNT_BATCH


def timed_steps(step: Callable, frames: torch.Tensor, actions: torch.Tensor, device: torch.device,
                num_warmup: int, num_steps: int, deadline: Deadline) -> float:  # fmt: skip
    """Median seconds of the timed steps after `num_warmup` untimed ones (compilation, allocator)."""
    for _ in range(num_warmup):
        step(frames, actions)
    synchronize(device)
    times = []
    for _ in range(num_steps):
        start = time.perf_counter()
        step(frames, actions)
        synchronize(device)
        times.append(time.perf_counter() - start)
        if deadline.passed():
            break
    return statistics.median(times)


def find_batch(model: nn.Module, setup: StepSetup, max_batch: int, memory_fraction: float,
               deadline: Deadline) -> tuple[int, str]:  # fmt: skip
    """The largest batch (a power of two) that fits, eager; -> (batch, why the doubling stopped)."""
    step, total = step_function(model, setup), total_memory_gb(setup.device)
    batch, fits, peaks = 1, 0, {}
    while True:
        reset_peak_memory(setup.device)
        try:
            frames, actions = make_batch(model, setup, batch)
            step(frames, actions)
            synchronize(setup.device)
        except Exception as error:  # noqa: BLE001 (only an out-of-memory error ends the search quietly)
            if not is_out_of_memory(error) or not fits:
                raise
            model.zero_grad(set_to_none=True)
            reset_peak_memory(setup.device)
            return fits, f"batch {batch} ran out of memory"
        fits, peaks[batch] = batch, peak_memory_gb(setup.device)
        if batch * 2 > max_batch:
            return fits, f"max_batch {max_batch}"
        if total is not None and len(peaks) >= 2:
            # peak = fixed + per_sample * batch: the next doubling's peak by extrapolation
            per_sample = (peaks[batch] - peaks[batch // 2]) / (batch // 2)
            if peaks[batch] + per_sample * batch > memory_fraction * total:
                return fits, f"batch {batch * 2} would pass {memory_fraction:.0%} of {total:.0f} GB"
        if deadline.passed():
            return fits, "time limit of the batch search"
        batch *= 2


def measure(model: nn.Module, setup: StepSetup, batch: int, compiled: bool, num_steps: int,
            deadline: Deadline) -> StepFigures:  # fmt: skip
    """Step time and peak memory at `batch` (compiled: torch.compile first; its compilation is untimed)."""
    flops = count_flops(model, setup, batch)
    runner = torch.compile(model) if compiled else model
    step = step_function(runner, setup)
    frames, actions = make_batch(model, setup, batch)
    reset_peak_memory(setup.device)
    seconds = timed_steps(step, frames, actions, setup.device, 2 if compiled else 1, num_steps, deadline)
    return StepFigures(batch, seconds, batch * tokens_per_sample(model, setup.num_frames),
                       peak_memory_gb(setup.device), flops)  # fmt: skip


@contextlib.contextmanager
def freed(device: torch.device):  # noqa: ANN201 (a context manager)
    """Whatever a measurement allocated goes back to the device afterwards (the next one starts empty)."""
    try:
        yield
    finally:
        import gc

        gc.collect()
        reset_peak_memory(device)
