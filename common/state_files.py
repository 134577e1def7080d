"""The pieces every checkpoint is made of: tensors as safetensors, everything else as JSON or YAML.

World models (models/checkpoint.py), the world-model trainer's step directories (training/checkpointing.py)
and agent checkpoints (agents/checkpoint.py) all write through these functions, inside a directory that
common.atomic.atomic_dpath swaps into place. Nothing is ever pickled: an optimizer's state is split into
its tensors (safetensors) and its param groups and scalars (JSON); a snapshot's `bytes` (an emulator
state) become uint8 tensors referenced from the JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from common.atomic import atomic_path
from common.yaml_files import read_yaml_file


def save_tensors(fpath: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write named tensors as safetensors, atomically (CPU copies; shared storage is split)."""
    with atomic_path(fpath) as tmp_fpath:
        save_file(
            {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}, str(tmp_fpath)
        )


def load_tensors(fpath: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a truncated, damaged or missing file is one ValueError line."""
    try:
        return load_file(str(fpath))
    except Exception as error:  # noqa: BLE001 (safetensors raises its own error type, or OSError)
        raise ValueError(f"{fpath} is damaged or missing ({type(error).__name__})") from None


def read_yaml(fpath: str | Path) -> Any:
    """A YAML file's contents; missing, unreadable or not YAML (a NUL byte, a syntax error) is one
    ValueError line naming the file."""
    try:
        return read_yaml_file(fpath)
    except OSError as error:
        raise ValueError(f"{fpath} is missing or unreadable ({error.strerror})") from None


def under_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries named `prefix...`, with the prefix taken off (one part of a file several parts share)."""
    return {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state_dict split into tensors (safetensors) and JSON (param groups, scalars)."""
    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """The inverse of `optimizer_tensors`, into an optimizer over the same parameters."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def split_bytes(snapshot: Any, tensors: dict[str, torch.Tensor], prefix: str = "env") -> Any:
    """Replace every `bytes` in a JSON-like snapshot by a reference to a uint8 tensor added to `tensors`."""
    if isinstance(snapshot, bytes):
        name = f"{prefix}.{len(tensors)}"
        tensors[name] = torch.from_numpy(np.frombuffer(snapshot, dtype=np.uint8).copy())
        return {"__tensor__": name}
    if isinstance(snapshot, dict):
        return {key: split_bytes(value, tensors, prefix) for key, value in snapshot.items()}
    if isinstance(snapshot, list | tuple):
        return [split_bytes(value, tensors, prefix) for value in snapshot]
    return snapshot


def join_bytes(snapshot: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `split_bytes`."""
    if isinstance(snapshot, dict):
        if set(snapshot) == {"__tensor__"}:
            return tensors[snapshot["__tensor__"]].numpy().tobytes()
        return {key: join_bytes(value, tensors) for key, value in snapshot.items()}
    if isinstance(snapshot, list):
        return [join_bytes(value, tensors) for value in snapshot]
    return snapshot
