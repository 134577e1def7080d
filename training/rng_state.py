"""Capture and restore every RNG a training process touches, as tensors and JSON (no pickle).

torch (CPU and CUDA) holds the randomness that matters (masking, dropout); Python's `random` and
NumPy's global generator are saved too so a library that uses them cannot break exact resume.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from common.atomic import atomic_write_text
from common.state_files import load_tensors, save_tensors


def save_rng_state(fpath: Path, cuda: ModuleType = torch.cuda) -> None:
    """Write this process's RNG states to `fpath` (safetensors) plus `fpath`.json for the scalars.

    `cuda`: where the GPU generators live (a stand-in with the same functions lets CPU tests reach this
    path: is_available, get_rng_state_all, set_rng_state_all, device_count)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if cuda.is_available():
        for index, state in enumerate(cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{index}"] = state
    kind, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    python_version, python_state, python_gauss = random.getstate()
    scalars = {
        "numpy": {
            "kind": kind,
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": {"version": python_version, "state": list(python_state), "gauss": python_gauss},
    }
    save_tensors(fpath, tensors)
    atomic_write_text(f"{fpath}.json", json.dumps(scalars))


def load_rng_state(fpath: Path, cuda: ModuleType = torch.cuda) -> None:
    tensors = load_tensors(fpath)
    scalars = json.loads(Path(f"{fpath}.json").read_text())
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_keys = sorted(
        (k for k in tensors if k.startswith("torch_cuda_")), key=lambda k: int(k.rsplit("_", 1)[1])
    )
    cuda_states = [tensors[k] for k in cuda_keys]  # in device order (torch_cuda_10 after torch_cuda_9)
    if cuda_states and cuda.is_available():
        cuda.set_rng_state_all(cuda_states[: cuda.device_count()])
    numpy = scalars["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["pos"], numpy["has_gauss"], numpy["cached_gauss"]))
    python = scalars["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
