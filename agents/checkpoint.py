"""Agent checkpoints: a directory per name (`last`, `best_reward`), never pickle.

    checkpoints/<name>/
        config.yaml              the full training config (agent size, game, image size, ...)
        model.safetensors        ActorCritic weights
        trainer_state.json       epoch, env steps, best score, RNG and env snapshot metadata
        optimizer.safetensors    Adam tensors (+ param groups in trainer_state.json)    `last` only
        collector.safetensors    frames, LSTM state, episode tallies, env snapshot bytes `last` only

A directory is written under `.<name>.partial` and swapped in by renames; a crash between the renames
leaves `.<name>.old`, which `resolve_checkpoint` puts back, so a complete checkpoint always survives.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from agents.actor_critic import ActorCritic, build_actor_critic
from common.atomic import atomic_path
from common.errors import UserError

CHECKPOINT_NAMES = ("last", "best_reward")


def resolve_checkpoint(checkpoints_dpath: Path, name: str) -> Path | None:
    """The complete checkpoint directory `name`, restoring it from `.name.old` after a crash mid-swap."""
    final, old = checkpoints_dpath / name, checkpoints_dpath / f".{name}.old"
    if not final.is_dir() and old.is_dir():
        os.replace(old, final)
    return final if (final / "trainer_state.json").is_file() else None


def write_checkpoint(
    checkpoints_dpath: Path,
    name: str,
    config: dict[str, Any],
    tensors: dict[str, dict[str, torch.Tensor]],
    state: dict,
) -> Path:
    """tensors: file stem -> {name: tensor} (e.g. {'model': ..., 'optimizer': ...}); state: JSON-able."""
    partial, old, final = (checkpoints_dpath / f".{name}.partial", checkpoints_dpath / f".{name}.old",
                           checkpoints_dpath / name)  # fmt: skip
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for stem, named in tensors.items():
        with atomic_path(partial / f"{stem}.safetensors") as tmp_fpath:
            save_file({k: v.detach().cpu().contiguous() for k, v in named.items()}, str(tmp_fpath))
    with atomic_path(partial / "trainer_state.json") as tmp_fpath:
        tmp_fpath.write_text(json.dumps(state, indent=1))
    resolve_checkpoint(checkpoints_dpath, name)  # a leftover .old from a crash is restored, then replaced
    if final.is_dir():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_tensors(dpath: Path, stem: str) -> dict[str, torch.Tensor]:
    return load_file(str(dpath / f"{stem}.safetensors"))


def load_policy(checkpoint_dpath: str | Path) -> tuple[ActorCritic, dict[str, Any]]:
    """An agent checkpoint directory (or a run directory: its `best_reward`, else `last`) -> (model in
    eval mode on CPU, training config in today's tree)."""
    from agents.config import upgrade_saved_config

    dpath = Path(checkpoint_dpath)
    if (dpath / "checkpoints").is_dir():
        found = [resolve_checkpoint(dpath / "checkpoints", name) for name in ("best_reward", "last")]
        dpath = next((d for d in found if d is not None), dpath)
    if not (dpath / "model.safetensors").is_file() or not (dpath / "config.yaml").is_file():
        raise UserError(
            f"{dpath} is not an agent checkpoint (needs config.yaml + model.safetensors); "
            f"give a run folder of `python run.py agent train` or its checkpoints/<name>"
        )
    config = yaml.safe_load((dpath / "config.yaml").read_text())
    if not isinstance(config, dict) or "agent" not in config or not {"env", "collection"} & set(config):
        raise UserError(
            f"{dpath}/config.yaml is not an agent training config (wrong checkpoint for the agent)"
        )
    config = upgrade_saved_config(config)
    state = json.loads((dpath / "trainer_state.json").read_text())
    model = build_actor_critic(
        int(state["num_actions"]), int(config["collection"]["image_size"]), config["agent"]["size"]
    )
    model.load_state_dict(read_tensors(dpath, "model"))
    return model.eval(), config


def trained_games(config: dict[str, Any]) -> str:
    """The games a saved training config played, for messages."""
    return ", ".join(config["collection"]["games"])


# -- optimizer and env snapshots as safetensors + JSON ------------------------------------------------
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


def load_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
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
