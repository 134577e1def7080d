"""Checkpoints: a directory with `config.yaml` (kind, preset, every config field of every part,
plus the caller's extra config) and `model.safetensors` (all weights, the frozen tokenizer's
embedded under `tokenizer.`). Loading never unpickles anything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from models.config import DynamicsConfig, LamConfig, TokenizerConfig, make_config, to_dict
from models.presets import KINDS, build_from_configs, model_tokenizer

# 2: time as a relative bias in temporal attention (issue 8); format-1 weights expect absolute
# temporal codes added to the tokens and would load as a shape error or run silently wrong.
FORMAT_VERSION = 2
CONFIG_FNAME = "config.yaml"
WEIGHTS_FNAME = "model.safetensors"
PART_CLASSES = {"tokenizer": TokenizerConfig, "lam": LamConfig, "dynamics": DynamicsConfig}


def model_configs(model: nn.Module) -> dict[str, Any]:
    configs = {"tokenizer": model_tokenizer(model).config}
    for part in ("lam", "dynamics"):
        if hasattr(model, part):
            configs[part] = getattr(model, part).config
    return configs


def save_checkpoint(model: nn.Module, dpath: str | Path, extra_config: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint directory atomically: build it under a temp name, then rename into place."""
    dpath = Path(dpath)
    dpath.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "preset": getattr(model, "preset", "custom"),
        **{part: to_dict(cfg) for part, cfg in model_configs(model).items()},
        "extra": dict(extra_config or {}),
    }
    tmp_dpath = Path(tempfile.mkdtemp(prefix=f".{dpath.name}.", suffix=".tmp", dir=dpath.parent))
    try:
        (tmp_dpath / CONFIG_FNAME).write_text(yaml.safe_dump(config, sort_keys=False))
        # safetensors refuses shared storage; contiguous clones keep it simple and exact
        state = {name: tensor.detach().contiguous().clone() for name, tensor in model.state_dict().items()}
        save_file(state, str(tmp_dpath / WEIGHTS_FNAME))
        for fname in (CONFIG_FNAME, WEIGHTS_FNAME):
            with open(tmp_dpath / fname, "rb") as handle:
                os.fsync(handle.fileno())
        old_dpath = dpath.with_name(f".{dpath.name}.old")
        if dpath.exists():
            shutil.rmtree(old_dpath, ignore_errors=True)
            os.replace(dpath, old_dpath)
        os.replace(tmp_dpath, dpath)
        shutil.rmtree(old_dpath, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_dpath, ignore_errors=True)
    return dpath


def read_config(dpath: str | Path) -> dict[str, Any]:
    fpath = Path(dpath) / CONFIG_FNAME
    if not fpath.is_file():
        raise ValueError(
            f"{dpath} is not a model checkpoint (no {CONFIG_FNAME}); point to a directory save_checkpoint wrote"
        )
    config = yaml.safe_load(fpath.read_text())
    if not isinstance(config, dict) or config.get("kind") not in KINDS:
        raise ValueError(f"{fpath} names no known model kind (expected one of {KINDS})")
    version = config.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {dpath} has format {version} and this version reads format {FORMAT_VERSION} "
            f"(format 2 replaced absolute frame-index codes with relative time in attention): "
            f"retrain it with this version (docs/models.md, 'Checkpoint format')"
        )
    return config


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
    image_size = config["tokenizer"]["image_size"]
    if expected_image_size is not None and image_size != expected_image_size:
        raise ValueError(
            f"checkpoint {dpath} was trained at {image_size} px, expected {expected_image_size} px"
        )
    configs = {
        part: make_config(cls, cls(), config[part], part)
        for part, cls in PART_CLASSES.items()
        if part in config
    }
    configs.setdefault("lam", LamConfig())
    model = build_from_configs(config["kind"], configs)
    weights_fpath = Path(dpath) / WEIGHTS_FNAME
    try:
        weights = load_file(str(weights_fpath))
    except Exception as error:  # noqa: BLE001 (safetensors raises its own error type, or OSError)
        raise ValueError(
            f"{weights_fpath} is damaged or missing ({type(error).__name__}); retrain it or use another checkpoint"
        ) from None
    # the dynamics' copy of the tokenizer's code vectors (a buffer since the token input skip read them)
    # is derived from the embedded tokenizer: a checkpoint saved before it was a buffer loads by rederiving it
    derived = {"dynamics.code_vectors"} - set(weights)
    if derived and hasattr(model, "set_tokenizer") and "dynamics.code_vectors" in model.state_dict():
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if set(missing) != derived or unexpected:
            model.load_state_dict(weights, strict=True)  # raises naming every mismatch
        model.set_tokenizer(model.tokenizer)
    else:
        model.load_state_dict(weights, strict=True)
    model.preset = config.get("preset", "custom")
    model.extra_config = config.get("extra", {})
    return model.to(device)
