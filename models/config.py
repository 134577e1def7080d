"""One config dataclass per model part. Every field is read by its model; unknown keys fail loudly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")

ACTION_CONDITIONING_MODES = ("additive", "prepend")


@dataclass(frozen=True)
class TokenizerConfig:
    image_size: int = 64  # square frames, pixels
    patch_size: int = 4  # token grid = image_size / patch_size per side
    num_frames: int = 16  # training clip length; also the longest causal context used at inference
    dim: int = 512
    num_heads: int = 8
    num_encoder_blocks: int = 8
    num_decoder_blocks: int = 8
    mlp_ratio: float = 4.0
    codebook_size: int = 1024
    code_dim: int = 32
    commitment_weight: float = 0.25
    dead_code_threshold: float = (
        0.01  # reset a code whose EMA share of assignments < this / codebook_size; 0 = never
    )
    activation_checkpointing: bool = False  # recompute block activations in backward to save memory

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size
        return side, side


@dataclass(frozen=True)
class LamConfig:
    image_size: int = 64  # must equal the tokenizer's (upstream built the LAM for 64 px on 256 px data)
    patch_size: int = 4
    num_frames: int = 16
    dim: int = 512
    num_heads: int = 8
    num_encoder_blocks: int = 8
    num_decoder_blocks: int = 8
    mlp_ratio: float = 4.0
    num_latent_actions: int = 7  # codebook size of the latent actions
    code_dim: int = 32
    commitment_weight: float = 0.25
    dead_code_threshold: float = 0.01  # as in TokenizerConfig (relative to 1 / num_latent_actions)
    loss_weight: float = 1.0  # weight of the LAM reconstruction + VQ loss in GenieRedux's objective
    activation_checkpointing: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size
        return side, side


@dataclass(frozen=True)
class DynamicsConfig:
    num_frames: int = 16
    dim: int = 512
    num_heads: int = 8
    num_blocks: int = 12
    mlp_ratio: float = 4.0
    # "additive": the action embedding is added to every token of its frame (Genie); "prepend": one action
    # token per frame joins its spatial attention. On the block game (docs/models.md) additive followed
    # actions better (autoregressive ΔPSNR@4 +14.7 vs +11.1 dB at 1500 steps); prepend had a slightly lower
    # val CE on CoinRun before the relative-time change, within noise
    action_conditioning: str = "additive"
    num_actions: int = 8  # GenieRedux-G: size of the shared named-action vocabulary (data/actions.py)
    action_code_dim: int = 32  # GenieRedux: width of the LAM code vectors fed in (= LamConfig.code_dim)
    mask_rate_min: float = 0.5  # per (sample, frame) mask rate ~ U(mask_rate_min, mask_rate_max)
    mask_rate_max: float = 1.0
    # share of each batch trained with clean context frames (what autoregressive inference conditions
    # on; two streams, ~2x compute); the rest keep Genie's masked context (what one_go sees). 0.5 serves
    # both inference methods; 1.0 is best frame by frame (the player, AutoExplore). dynamics.py, docs/models.md
    clean_context_fraction: float = 0.5
    # context noise (as GameNGen's noise augmentation, in token space): in training, each sample replaces a share
    # ~ U(0, context_noise) of its visible input tokens by random codes, so a model that generates frame by frame
    # has learned to predict from a context with errors in it, as its own generated frames are. 0 = off
    context_noise: float = 0.0
    # token distance cross-entropy (CVPR paper, as upstream): loss = CE + tdce_weight * E_softmax[1 - cos(c_k,
    # c_true)] over the tokenizer's code vectors c: probability mass on codes that decode to something far
    # from the true one costs more than mass on near-misses, with gradient through the softmax
    tdce: bool = False
    tdce_weight: float = 3.0  # lambda (upstream: 3)
    # token input skip (CVPR paper, upstream's use_token): each visible input token's embedding also gets a
    # projection of the tokenizer's code vector for it, so the dynamics sees what a token looks like
    token_input_skip: bool = False
    activation_checkpointing: bool = False
    # filled from the tokenizer by presets.build; kept here so a checkpoint is self-describing
    codebook_size: int = 1024
    grid_size: int = 16  # tokens per side
    code_dim: int = 32  # width of the tokenizer's code vectors (TDCE, token input skip)


def make_config(cls: type[ConfigT], base: ConfigT | None, overrides: dict[str, Any], part: str) -> ConfigT:
    """`base` with `overrides` applied; an unknown key raises ValueError naming the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown {part} config key(s) {unknown}; valid keys: {sorted(names)}")
    config = dataclasses.replace(base, **overrides) if base is not None else cls(**overrides)
    validate(config)
    return config


def validate(config: Any) -> None:
    if hasattr(config, "patch_size") and config.image_size % config.patch_size != 0:
        raise ValueError(
            f"image_size {config.image_size} is not a multiple of patch_size {config.patch_size}"
        )
    if config.dim % 4 != 0 or config.dim % config.num_heads != 0:
        raise ValueError(f"dim {config.dim} must be divisible by 4 and by num_heads {config.num_heads}")
    if isinstance(config, DynamicsConfig):
        if config.action_conditioning not in ACTION_CONDITIONING_MODES:
            raise ValueError(
                f"action_conditioning '{config.action_conditioning}' unknown; use one of {ACTION_CONDITIONING_MODES}"
            )
        if not 0.0 <= config.mask_rate_min <= config.mask_rate_max <= 1.0:
            raise ValueError("need 0 <= mask_rate_min <= mask_rate_max <= 1")
        if not 0.0 <= config.context_noise <= 1.0:
            raise ValueError(f"context_noise must be in [0, 1], got {config.context_noise}")
        if not 0.0 <= config.clean_context_fraction <= 1.0:
            raise ValueError(f"clean_context_fraction must be in [0, 1], got {config.clean_context_fraction}")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
