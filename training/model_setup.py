"""Build the model a config asks for: from a preset, or from a checkpoint to fine-tune, with the frozen
tokenizer installed for the dynamics kinds. Every path problem becomes one UserError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from common.errors import UserError
from data.actions import ACTION_VOCABULARY, NUM_ACTIONS, vocabulary_size_for
from models.checkpoint import find_checkpoint, load_model, read_config
from models.presets import KINDS, build, model_tokenizer

DYNAMICS_KINDS = tuple(kind for kind in KINDS if kind != "tokenizer")


def checked_checkpoint(path: str, key: str, kind: str) -> tuple[Path, str]:
    """(checkpoint directory, its kind) for config key `key`, whose config.yaml reads and whose kind
    serves as a `kind` (a world model serves as a tokenizer); one UserError line if not."""
    try:
        dpath = find_checkpoint(path)
        found_kind = read_config(dpath)["kind"]
        if not (kind == "tokenizer" and found_kind in DYNAMICS_KINDS):
            find_checkpoint(path, kind=kind)  # the one error line for a wrong kind
    except ValueError as error:
        raise UserError(f"{key}={error}") from None
    return dpath, found_kind


def check_named_checkpoints(cfg: DictConfig) -> None:
    """The checkpoints `tokenizer_dpath` and `model_dpath` name, checked before the run folder exists:
    a missing, damaged or wrong-kind one stops with nothing written."""
    if cfg.get("tokenizer_dpath") is not None:
        checked_checkpoint(cfg.tokenizer_dpath, "tokenizer_dpath", "tokenizer")
    if cfg.get("model_dpath") is not None:
        checked_checkpoint(cfg.model_dpath, "model_dpath", cfg.kind)


def load_checkpoint_for(path: str, key: str, kind: str) -> nn.Module:
    """The model of the checkpoint config key `key` names (a checkpoint or a run directory), on CPU.

    Where a tokenizer is asked for, a world model's checkpoint also serves: its embedded tokenizer is
    the one its dynamics was trained on (AutoExplore's flow fine-tunes both from one GenieRedux-G).
    """
    dpath, found_kind = checked_checkpoint(path, key, kind)
    takes_embedded_tokenizer = kind == "tokenizer" and found_kind in DYNAMICS_KINDS
    try:
        model = load_model(dpath, "cpu", expected_kind=found_kind)
    except ValueError as error:
        raise UserError(f"{error} ({key})") from None
    if not takes_embedded_tokenizer:
        return model
    # the world model froze its tokenizer (models/genie.py); fine-tuning it needs it trainable again
    tokenizer = model_tokenizer(model).train().requires_grad_(True)
    tokenizer.preset = model.preset
    return tokenizer


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


def sized_for_actions(overrides: dict[str, Any], data_action_names: set[str] | None) -> dict[str, Any]:
    """`overrides` with GenieRedux-G's action embedding grown to the whole vocabulary when the data's games
    use names beyond the first ones (gymnasium games' diagonals, ...); models of the other games keep the
    size they always had. An explicit model_overrides.dynamics.num_actions wins."""
    dynamics = dict(overrides.get("dynamics", {}))
    if (
        data_action_names
        and "num_actions" not in dynamics
        and vocabulary_size_for(data_action_names) == NUM_ACTIONS
    ):
        dynamics["num_actions"] = NUM_ACTIONS
        return {**overrides, "dynamics": dynamics}
    return overrides


def check_action_embedding(model: nn.Module, data_action_names: set[str] | None, source: str) -> None:
    """A GenieRedux-G to fine-tune must embed every action of the data (its rows are vocabulary names)."""
    beyond = sorted(n for n in data_action_names or () if ACTION_VOCABULARY.index(n) >= model.num_actions)
    if beyond:
        raise UserError(
            f"{source} embeds the first {model.num_actions} actions of the vocabulary, but this data's games also "
            f"take {beyond}; train a new GenieRedux-G on it (tokenizer_dpath=... without model_dpath)"
        )


def build_training_model(cfg: DictConfig, data_action_names: set[str] | None = None) -> nn.Module:
    """The trainable model on CPU: a fresh preset, or the `model_dpath` checkpoint to fine-tune.
    `data_action_names`: the vocabulary names the data's games use (sizes GenieRedux-G's action embedding)."""
    if cfg.kind not in KINDS:
        raise UserError(f"kind={cfg.kind} is unknown; use {', '.join(KINDS)}")
    tokenizer = None
    if cfg.kind in DYNAMICS_KINDS:
        if cfg.tokenizer_dpath is None and cfg.model_dpath is None:
            raise UserError(
                f"kind={cfg.kind} trains on a frozen tokenizer: set tokenizer_dpath=<tokenizer run>/best_model"
            )
        if cfg.tokenizer_dpath is not None:
            tokenizer = load_checkpoint_for(cfg.tokenizer_dpath, "tokenizer_dpath", "tokenizer")
    is_guided = cfg.kind == "genie_redux_guided"
    if cfg.model_dpath is not None:
        model = load_checkpoint_for(cfg.model_dpath, "model_dpath", cfg.kind)
        if is_guided:
            check_action_embedding(model, data_action_names, f"model_dpath={cfg.model_dpath}")
        if tokenizer is not None:  # fine-tuning on a new game: swap in that game's tokenizer
            model.set_tokenizer(tokenizer)
        return model
    overrides = model_overrides(cfg)
    if is_guided:
        overrides = sized_for_actions(overrides, data_action_names)
    try:
        return build(cfg.kind, cfg.model, tokenizer=tokenizer, **overrides)
    except ValueError as error:
        raise UserError(f"{error} (model={cfg.model}, model_overrides)") from None
