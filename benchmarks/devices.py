"""What a benchmark needs to know about the device it times: waiting for it, its peak memory, its
bf16 peak (for model FLOPs utilisation), and whether an error was running out of its memory.

Each helper takes the device, so a CPU run goes through the same lines as a GPU run; the GPU side goes
through a `cuda` argument (torch.cuda), which a stand-in with the same functions replaces in CPU tests.
"""

from __future__ import annotations

import resource
from typing import Any

import torch

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched in order
# against torch.cuda.get_device_name (more specific names first). A device not listed gets no MFU.
BF16_PEAK_TFLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIE"), 756.0),
    (("H100", "NVL"), 835.0),
    (("H200", "NVL"), 835.0),
    (("GH200",), 989.0),
    (("H200",), 989.0),  # SXM
    (("H100",), 989.0),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L40",), 181.0),
    (("L4",), 121.0),
    (("A10",), 125.0),
)


def device_name(device: torch.device, cuda: Any = torch.cuda) -> str:
    """The name the peak table is matched against: the GPU's, or "cpu"."""
    return cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def bf16_peak_tflops(name: str) -> float | None:
    """Dense bf16 peak of a device by name (None: not in BF16_PEAK_TFLOPS, so no MFU is reported)."""
    upper = name.upper()
    for parts, tflops in BF16_PEAK_TFLOPS:
        if all(part in upper for part in parts):
            return tflops
    return None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a timer read after it measures the work, not its launch)."""
    getattr(torch, device.type).synchronize()  # torch.cuda.synchronize, or torch.cpu's (a no-op)


def reset_peak_memory(device: torch.device, cuda: Any = torch.cuda) -> None:
    """Give cached blocks back and restart the peak count (GPU; nothing to do on CPU)."""
    if device.type == "cuda":
        cuda.empty_cache()
        cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device, cuda: Any = torch.cuda) -> float:
    """Peak allocated GPU memory since `reset_peak_memory`; on CPU the process's peak RSS (ru_maxrss,
    which never resets: the largest configuration so far)."""
    if device.type == "cuda":
        return cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def total_memory_gb(device: torch.device, cuda: Any = torch.cuda) -> float | None:
    """The GPU's memory (None on CPU: no fixed budget to fill)."""
    if device.type == "cuda":
        return cuda.get_device_properties(device).total_memory / 1024**3
    return None


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error (or a CPU allocator's), which ends a batch search instead of the run."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
