"""Build the model a config asks for: from a preset, or from a checkpoint to fine-tune, with the frozen
tokenizer installed for the dynamics kinds. Every path problem becomes one UserError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from torch import nn

from common.errors import UserError

DYNAMICS_KINDS = ("genie_redux", "genie_redux_guided")


def resolve_checkpoint_dpath(path: str, key: str, expected_kind: str | None) -> Path:
    """A model checkpoint directory (config.yaml + model.safetensors) named by config key `key`.

    Accepts the checkpoint itself, or a run directory (its best_model/, else final_model/).
    """
    dpath = Path(path)
    for candidate in (dpath, dpath / "best_model", dpath / "final_model"):
        if (candidate / "config.yaml").is_file() and (candidate / "model.safetensors").is_file():
            dpath = candidate
            break
    else:
        raise UserError(
            f"{key}={path} is not a model checkpoint (no config.yaml + model.safetensors there); "
            f"point it at a trained run's best_model/ directory"
        )
    kind = (yaml.safe_load((dpath / "config.yaml").read_text()) or {}).get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise UserError(
            f"{key}={path} holds a '{kind}' checkpoint, but this run needs a '{expected_kind}' one"
        )
    return dpath


def model_overrides(cfg: DictConfig) -> dict[str, Any]:
    """`model_overrides` plus gradient checkpointing, in `models.presets.build` form."""
    overrides = OmegaConf.to_container(cfg.model_overrides, resolve=True)
    if cfg.train.gradient_checkpointing:
        if cfg.kind == "tokenizer":
            overrides["activation_checkpointing"] = True
        else:
            parts = ("lam", "dynamics") if cfg.kind == "genie_redux" else ("dynamics",)
            for part in parts:  # the frozen tokenizer runs under no_grad: nothing to recompute
                overrides[part] = {**overrides.get(part, {}), "activation_checkpointing": True}
    return overrides


def build_training_model(cfg: DictConfig) -> nn.Module:
    """The trainable model on CPU: a fresh preset, or the `model_fpath` checkpoint to fine-tune."""
    from models.checkpoint import load_model
    from models.presets import build

    if cfg.kind not in ("tokenizer", *DYNAMICS_KINDS):
        raise UserError(f"kind={cfg.kind} is unknown; use tokenizer, genie_redux or genie_redux_guided")
    tokenizer = None
    if cfg.kind in DYNAMICS_KINDS:
        if cfg.tokenizer_fpath is None and cfg.model_fpath is None:
            raise UserError(
                f"kind={cfg.kind} trains on a frozen tokenizer: set tokenizer_fpath=<tokenizer run>/best_model"
            )
        if cfg.tokenizer_fpath is not None:
            tokenizer_dpath = resolve_checkpoint_dpath(cfg.tokenizer_fpath, "tokenizer_fpath", "tokenizer")
            try:
                tokenizer = load_model(tokenizer_dpath, "cpu", expected_kind="tokenizer")
            except ValueError as error:
                raise UserError(f"{error} (tokenizer_fpath)") from None
    if cfg.model_fpath is not None:
        model_dpath = resolve_checkpoint_dpath(cfg.model_fpath, "model_fpath", cfg.kind)
        try:
            model = load_model(model_dpath, "cpu")
        except ValueError as error:
            raise UserError(f"{error} (model_fpath)") from None
        if tokenizer is not None:  # fine-tuning on a new game: swap in that game's tokenizer
            model.set_tokenizer(tokenizer)
        return model
    try:
        return build(cfg.kind, cfg.model, tokenizer=tokenizer, **model_overrides(cfg))
    except ValueError as error:
        raise UserError(f"{error} (model={cfg.model}, model_overrides)") from None
