"""Agent checkpoints: a directory per name, config + safetensors + JSON (common/state_files.py), never pickle.

    checkpoints/<name>/
        config.yaml              the full training config (agents/config.py tree)
        model.safetensors        ActorCritic weights
        trainer_state.json       epoch, env steps, best score, optimizer param groups, env snapshot metadata
        optimizer.safetensors    Adam tensors                                            `last`, `previous`
        collector.safetensors    frames, LSTM state, episode tallies, env snapshot bytes  `last`, `previous`

`last` is written every `checkpoint.every` epochs and the one it replaces is kept as `previous`;
`best_reward` holds the best mean training-reward return. Each is swapped into place by
common.atomic.atomic_dpath, so a kill leaves a complete checkpoint; resuming from a damaged `last`
(a truncated file, a config.yaml that is not YAML) warns and falls back to `previous`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml

from agents.actor_critic import ActorCritic, build_actor_critic
from common.atomic import atomic_dpath, restore_interrupted
from common.errors import UserError
from common.state_files import load_tensors, read_yaml, save_tensors
from models.checkpoint import CONFIG_FNAME, weights_fpath  # the one protocol's file names

CHECKPOINT_NAMES = ("last", "best_reward")
PREVIOUS_NAMES = {"last": "previous"}  # what the checkpoint a save replaces is kept as


def resolve_checkpoint(checkpoints_dpath: Path, name: str) -> Path | None:
    """The complete checkpoint directory `name` (restored after a kill mid-swap), or None if there is none."""
    final = restore_interrupted(checkpoints_dpath / name)
    return final if (final / "trainer_state.json").is_file() else None


def write_checkpoint(
    checkpoints_dpath: Path,
    name: str,
    config: dict[str, Any],
    tensors: dict[str, dict[str, torch.Tensor]],
    state: dict,
) -> Path:
    """tensors: file stem -> {name: tensor} (e.g. {'model': ..., 'optimizer': ...}); state: JSON-able."""
    final = checkpoints_dpath / name
    previous = checkpoints_dpath / PREVIOUS_NAMES[name] if name in PREVIOUS_NAMES else None
    with atomic_dpath(final, previous) as tmp_dpath:
        (tmp_dpath / CONFIG_FNAME).write_text(yaml.safe_dump(config, sort_keys=False))
        for stem, named in tensors.items():
            save_tensors(tmp_dpath / f"{stem}.safetensors", named)
        (tmp_dpath / "trainer_state.json").write_text(json.dumps(state, indent=1))
    return final


def damage(dpath: Path) -> str | None:
    """What keeps checkpoint `dpath` from loading (a damaged or missing file), or None if it loads."""
    try:
        if not isinstance(read_yaml(dpath / CONFIG_FNAME), dict):
            return f"{dpath / CONFIG_FNAME} is not a training config"
        try:
            json.loads((dpath / "trainer_state.json").read_text())
        except json.JSONDecodeError as error:
            return f"{dpath / 'trainer_state.json'} is damaged ({error})"
        for fpath in sorted(dpath.glob("*.safetensors")):
            load_tensors(fpath)
    except (ValueError, OSError) as error:
        return str(error).splitlines()[0]
    return None


def resume_checkpoint(checkpoints_dpath: Path) -> Path | None:
    """The checkpoint to resume from: `last`, or `previous` when `last` is damaged (with a warning)."""
    found = [resolve_checkpoint(checkpoints_dpath, name) for name in ("last", PREVIOUS_NAMES["last"])]
    found = [dpath for dpath in found if dpath is not None]
    for dpath in found:
        problem = damage(dpath)
        if problem is None:
            return dpath
        warnings.warn(f"cannot resume from {dpath}: {problem}; trying the checkpoint before it", stacklevel=2)
    if found:
        raise UserError(
            f"no checkpoint in {checkpoints_dpath} loads (see the warnings); move the run folder away to start afresh"
        )
    return None


def read_tensors(dpath: Path, stem: str) -> dict[str, torch.Tensor]:
    return load_tensors(dpath / f"{stem}.safetensors")


def load_policy(checkpoint_dpath: str | Path) -> tuple[ActorCritic, dict[str, Any]]:
    """An agent checkpoint directory (or a run directory: its `best_reward`, else `last`) -> (model in
    eval mode on CPU, training config in today's tree)."""
    from agents.config import upgrade_saved_config

    dpath = Path(checkpoint_dpath)
    if (dpath / "checkpoints").is_dir():
        found = [resolve_checkpoint(dpath / "checkpoints", name) for name in ("best_reward", "last")]
        dpath = next((d for d in found if d is not None), dpath)
    if not weights_fpath(dpath).is_file() or not (dpath / CONFIG_FNAME).is_file():
        raise UserError(
            f"{dpath} is not an agent checkpoint (needs {CONFIG_FNAME} + {weights_fpath(dpath).name}); "
            f"give a run folder of `python run.py agent train` or its checkpoints/<name>"
        )
    problem = damage(dpath)
    if problem is not None:
        raise UserError(
            f"cannot load the agent checkpoint {dpath}: {problem}; retrain it or use another checkpoint"
        )
    config = read_yaml(dpath / CONFIG_FNAME)
    if "agent" not in config or not {"env", "collection"} & set(config):
        raise UserError(
            f"{dpath / CONFIG_FNAME} is not an agent training config (wrong checkpoint for the agent)"
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
