"""Checkpoints, and the only module that knows their layout. Loading never unpickles anything.

    <checkpoint>/                    what `save_checkpoint` writes and `load_model` reads
        config.yaml                  format version, kind, preset, every config field of every part,
                                     and the caller's extra config (step, best metric, data, command)
        model.safetensors            all weights, the frozen tokenizer's embedded under `tokenizer.`
        README.md                    its model card (models/model_card.py), for people and the Hub
    <run>/best_model/, final_model/  the checkpoints a training run leaves (`best_model_dpath`, ...)
    <run>/checkpoints/step_N/model/  the model part of a resumable training step (`step_model_dpath`)

`find_checkpoint(path, kind=...)` turns any of these (a checkpoint, a run, a step) into a checkpoint
directory; `load_model` rebuilds the model from it; `WorldModel.from_checkpoint` wraps the two for
inference. The directory is written with the one atomic scheme of `common/atomic.py`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from common.atomic import atomic_dpath, atomic_write_text
from common.state_files import load_tensors, save_tensors
from common.yaml_files import YamlFileError, read_yaml_file
from models.config import DynamicsConfig, LamConfig, TokenizerConfig, make_config, to_dict
from models.model_card import render_model_card
from models.presets import KINDS, build_from_configs, model_tokenizer

# 2: time as a relative bias in temporal attention; format-1 weights expect absolute
# temporal codes added to the tokens and would load as a shape error or run silently wrong.
FORMAT_VERSION = 2
CONFIG_FNAME = "config.yaml"
WEIGHTS_FNAME = "model.safetensors"
MODEL_CARD_FNAME = "README.md"  # where the Hub (and a person) looks first
BEST_DNAME = "best_model"  # in a run directory: the checkpoint with the best validation metric
FINAL_DNAME = "final_model"  # in a run directory: the checkpoint after the last step
STEP_MODEL_DNAME = "model"  # in a training step directory: its model checkpoint
PART_CLASSES = {"tokenizer": TokenizerConfig, "lam": LamConfig, "dynamics": DynamicsConfig}
# the parts a kind's config.yaml must describe (a truncated file may parse and still lack one)
KIND_PARTS = {
    "tokenizer": ("tokenizer",),
    "genie_redux": ("tokenizer", "lam", "dynamics"),
    "genie_redux_guided": ("tokenizer", "dynamics"),
}
DAMAGED_FIX = "retrain it or use another checkpoint"
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, as the Hugging Face Hub spells repos


class CheckpointDamagedError(ValueError):
    """A checkpoint file that cannot be read (truncated, overwritten, not YAML): use another checkpoint."""


class CheckpointVersionError(ValueError):
    """A checkpoint intact but written in another format version: retrain it with this version."""


def best_model_dpath(run_dpath: str | Path) -> Path:
    return Path(run_dpath) / BEST_DNAME


def final_model_dpath(run_dpath: str | Path) -> Path:
    return Path(run_dpath) / FINAL_DNAME


def step_model_dpath(step_dpath: str | Path) -> Path:
    return Path(step_dpath) / STEP_MODEL_DNAME


def weights_fpath(dpath: str | Path) -> Path:
    return Path(dpath) / WEIGHTS_FNAME


def model_card_fpath(dpath: str | Path) -> Path:
    return Path(dpath) / MODEL_CARD_FNAME


def is_checkpoint(dpath: str | Path) -> bool:
    dpath = Path(dpath)
    return (dpath / CONFIG_FNAME).is_file() and (dpath / WEIGHTS_FNAME).is_file()


def find_checkpoint(path: str | Path, kind: str | None = None) -> Path:
    """The checkpoint directory `path` names: itself, a run's best_model/ (else final_model/), or a
    training step's model/. With `kind`, the checkpoint must hold a model of that kind. ValueError if not."""
    dpath = Path(path)
    candidates = (dpath, best_model_dpath(dpath), final_model_dpath(dpath), step_model_dpath(dpath))
    found = next((candidate for candidate in candidates if is_checkpoint(candidate)), None)
    if found is None:
        raise ValueError(
            f"{path} is not a model checkpoint (no {CONFIG_FNAME} + {WEIGHTS_FNAME} there); "
            f"point it at a trained run's {BEST_DNAME}/ directory"
        )
    if kind is not None:
        found_kind = read_config(found)["kind"]
        if found_kind != kind:
            raise ValueError(f"{path} holds a '{found_kind}' checkpoint, but this run needs a '{kind}' one")
    return found


def hub_checkpoint(repo_id: str, revision: str | None = None, cache_dpath: str | Path | None = None) -> Path:
    """The checkpoint a Hugging Face Hub model repo holds at its root (its config, weights and model card
    only), downloaded into the hub client's cache or found there. One ValueError line when `repo_id` is no
    repo id, the hub client is not installed, or the repo cannot be had (offline and not cached, unknown)."""
    if not HUB_REPO_ID.match(repo_id):
        raise ValueError(f"{repo_id} is neither a folder on this machine nor a hub repo id (owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ValueError(
            f"{repo_id} is not a folder on this machine, and loading a hub repo needs huggingface_hub "
            "(pip install huggingface_hub)"
        ) from None
    try:
        local = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=None if cache_dpath is None else str(cache_dpath),
            allow_patterns=[CONFIG_FNAME, WEIGHTS_FNAME, MODEL_CARD_FNAME],
        )
    except Exception as error:  # the client's errors: offline and not cached, no such repo, no access
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"cannot get hub repo {repo_id} ({type(error).__name__}: {reason}); without internet, download it "
            f"where there is (`hf download {repo_id} --local-dir DIR`) and pass that folder"
        ) from None
    if not is_checkpoint(local):
        raise ValueError(
            f"hub repo {repo_id} holds no world-model checkpoint ({CONFIG_FNAME} + {WEIGHTS_FNAME})"
        )
    return Path(local)


def model_configs(model: nn.Module) -> dict[str, Any]:
    configs = {"tokenizer": model_tokenizer(model).config}
    for part in ("lam", "dynamics"):
        if hasattr(model, part):
            configs[part] = getattr(model, part).config
    return configs


def save_checkpoint(model: nn.Module, dpath: str | Path, extra_config: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint directory atomically (common.atomic.atomic_dpath), its model card included.
    `extra_config`: what the caller knows (the trainer: step, trained_on, last_validation, command)."""
    dpath = Path(dpath)
    config = {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "preset": getattr(model, "preset", "custom"),
        "num_parameters": sum(p.numel() for p in model.parameters()),  # the frozen tokenizer's included
        "extra": dict(extra_config or {}),
        # the parts last: a file cut short loses one of them, which read_config names as damage
        **{part: to_dict(cfg) for part, cfg in model_configs(model).items()},
    }
    with atomic_dpath(dpath) as tmp_dpath:
        (tmp_dpath / CONFIG_FNAME).write_text(yaml.safe_dump(config, sort_keys=False))
        save_tensors(weights_fpath(tmp_dpath), model.state_dict())
        model_card_fpath(tmp_dpath).write_text(render_model_card(config, config["num_parameters"]))
    return dpath


def record_evaluation(path: str | Path, evaluation: dict[str, Any]) -> Path:
    """Add the results of an evaluation to the model card of the checkpoint `path` names (atomically; its
    config and weights stay as they are). `evaluation`: {"metrics": {...}, "dataset", "split", "command"}."""
    dpath = find_checkpoint(path)
    config = read_config(dpath)
    num_parameters = config.get("num_parameters")
    if num_parameters is None:  # a checkpoint saved before its config counted them
        num_parameters = sum(p.numel() for p in load_model(dpath).parameters())
    atomic_write_text(model_card_fpath(dpath), render_model_card(config, int(num_parameters), evaluation))
    return model_card_fpath(dpath)


def read_config(dpath: str | Path) -> dict[str, Any]:
    fpath = Path(dpath) / CONFIG_FNAME
    if not fpath.is_file():
        raise ValueError(
            f"{dpath} is not a model checkpoint (no {CONFIG_FNAME}); point to a directory save_checkpoint wrote"
        )
    try:
        config = read_yaml_file(fpath)
    except YamlFileError as error:
        raise CheckpointDamagedError(f"{error}: the checkpoint is damaged; {DAMAGED_FIX}") from None
    if not isinstance(config, dict) or config.get("kind") not in KINDS:
        raise CheckpointDamagedError(
            f"{fpath} names no known model kind (expected one of {KINDS}): damaged or not a checkpoint's; "
            f"{DAMAGED_FIX}"
        )
    version = config.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise CheckpointVersionError(
            f"checkpoint {dpath} has format {version} and this version reads format {FORMAT_VERSION} "
            f"(format 2 replaced absolute frame-index codes with relative time in attention): "
            f"retrain it with this version (docs/models.md, 'Checkpoint format')"
        )
    missing = [part for part in KIND_PARTS[config["kind"]] if not isinstance(config.get(part), dict)]
    if missing:
        raise CheckpointDamagedError(
            f"{fpath} lacks the {', '.join(missing)} part of a {config['kind']} checkpoint (cut short?): "
            f"the checkpoint is damaged; {DAMAGED_FIX}"
        )
    return config


def checkpoint_image_size(path: str | Path) -> int:
    """The frame size of the checkpoint `path` names (as find_checkpoint takes it), from its config alone."""
    return int(read_config(find_checkpoint(path))["tokenizer"]["image_size"])


def read_weights(dpath: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors; a truncated or missing file is one ValueError line."""
    try:
        return load_tensors(weights_fpath(dpath))
    except ValueError as error:
        raise CheckpointDamagedError(f"{error}; {DAMAGED_FIX}") from None


def load_weights(model: nn.Module, dpath: str | Path) -> None:
    """Load the checkpoint's weights into an already built `model` (strict: every tensor must match;
    a mismatch means config.yaml and the weights disagree, so one of them is damaged: ValueError).

    One exception: the dynamics' copy of the tokenizer's code vectors (a buffer since the token input
    skip reads them) is derived from the embedded tokenizer, so a checkpoint saved before it was a buffer
    loads by rederiving it.
    """
    weights = read_weights(dpath)
    expected = model.state_dict()
    rederived = {"dynamics.code_vectors"} - set(weights) if hasattr(model, "set_tokenizer") else set()
    rederived &= set(expected)
    problems = [f"missing {name}" for name in expected if name not in weights and name not in rederived]
    problems += [f"unexpected {name}" for name in weights if name not in expected]
    problems += [
        f"{name} is {list(tensor.shape)}, the config makes it {list(expected[name].shape)}"
        for name, tensor in weights.items()
        if name in expected and tensor.shape != expected[name].shape
    ]
    if problems:
        raise CheckpointDamagedError(
            f"{weights_fpath(dpath)} does not match {Path(dpath) / CONFIG_FNAME} ({len(problems)} tensors: "
            f"{'; '.join(problems[:3])}): one of the two is damaged; {DAMAGED_FIX}"
        )
    model.load_state_dict(weights, strict=not rederived)
    if rederived:
        model.set_tokenizer(model.tokenizer)


def load_model(
    dpath: str | Path,
    device: str | torch.device = "cpu",
    expected_kind: str | None = None,
    expected_image_size: int | None = None,
) -> nn.Module:
    """Rebuild the model from config.yaml and load its safetensors weights (strict)."""
    config = read_config(dpath)
    if expected_kind is not None and config["kind"] != expected_kind:
        raise ValueError(f"checkpoint {dpath} holds a '{config['kind']}' model, expected '{expected_kind}'")
    try:
        configs = {
            part: make_config(cls, cls(), config[part], part)
            for part, cls in PART_CLASSES.items()
            if part in config
        }
    except (ValueError, TypeError) as error:  # a hand-edited or half-written value
        raise CheckpointDamagedError(
            f"{Path(dpath) / CONFIG_FNAME} does not describe a model ({error}); {DAMAGED_FIX}"
        ) from None
    image_size = configs["tokenizer"].image_size
    if expected_image_size is not None and image_size != expected_image_size:
        raise ValueError(
            f"checkpoint {dpath} was trained at {image_size} px, expected {expected_image_size} px"
        )
    configs.setdefault("lam", LamConfig())
    model = build_from_configs(config["kind"], configs)
    load_weights(model, dpath)
    model.preset = config.get("preset", "custom")
    model.extra_config = config.get("extra", {})
    return model.to(device)
