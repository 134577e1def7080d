"""Model presets and the one construction path: `build(kind, preset, **overrides)`.

Overrides: `tokenizer={...}`, `lam={...}`, `dynamics={...}` per part; `image_size=` and
`num_frames=` apply to every part; for kind "tokenizer" plain field names work too
(`build("tokenizer", "tiny", codebook_size=64)`); `tokenizer=` freezes an already trained tokenizer inside
a GenieRedux model (its config then wins). Unknown keys raise ValueError.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from torch import nn

from models.config import DynamicsConfig, LamConfig, TokenizerConfig, make_config
from models.genie import GenieRedux, GenieReduxGuided
from models.tokenizer import VideoTokenizer

KINDS = ("tokenizer", "genie_redux", "genie_redux_guided")

PRESETS: dict[str, dict[str, Any]] = {
    # CPU tests: a training step well under a second at 16 px
    "tiny": {
        "tokenizer": TokenizerConfig(
            image_size=16,
            patch_size=4,
            num_frames=16,
            dim=64,
            num_heads=4,
            num_encoder_blocks=2,
            num_decoder_blocks=2,
            # 1024 codes as in the papers: on 32 px Atari frames 64 codes cap recon PSNR (400 steps:
            # 64 -> 22.8 dB, 512 -> 25.1, 1024 -> see docs/models.md) and cost nothing at this size
            codebook_size=1024,
            code_dim=16,  # 8 measured 0.6 dB worse than 16 at 512 codes
        ),
        "lam": LamConfig(
            image_size=16,
            patch_size=4,
            num_frames=16,
            dim=64,
            num_heads=4,
            num_encoder_blocks=2,
            num_decoder_blocks=2,
            num_latent_actions=7,
            code_dim=16,
        ),
        # TDCE and token input skip (the CVPR paper's): measured at equal CPU-minutes on CoinRun (+0.8 dB
        # autoregressive, fidelity_batch8), on the demo's games (+0.5 dB, demo_recipe_tdce_skip) and on the
        # block game (ΔPSNR@4 and action following up on both seeds, block_recipe_*); docs/models.md
        "dynamics": DynamicsConfig(
            num_frames=16, dim=64, num_heads=4, num_blocks=2, tdce=True, token_input_skip=True
        ),
    },
    # NeurIPS-W 2024 CoinRun case study: 64 px, patch 4
    "neurips": {
        "tokenizer": TokenizerConfig(),
        "lam": LamConfig(),
        "dynamics": DynamicsConfig(),
    },
    # CVPR 2025 RetroAct: 64 px, patch 4 as in the upstream seed configs (the RetroAct data is recorded at 64
    # px: data_generation/configs/_retro_act.yaml); TDCE and token input skip as in the paper
    "cvpr": {
        "tokenizer": TokenizerConfig(image_size=64, patch_size=4),
        "lam": LamConfig(image_size=64, patch_size=4),
        "dynamics": DynamicsConfig(tdce=True, token_input_skip=True),
    },
}

SHARED_KEYS = ("image_size", "num_frames")


def preset_patch_sizes() -> dict[str, int]:
    """preset -> the side in pixels its frames must be a multiple of (tokenizer and LAM patches)."""
    return {
        name: math.lcm(parts["tokenizer"].patch_size, parts["lam"].patch_size)
        for name, parts in PRESETS.items()
    }


def part_configs(preset: str, kind: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Resolve the per-part config dataclasses of `preset` with `overrides` applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'; use one of {sorted(PRESETS)}")
    if kind not in KINDS:
        raise ValueError(f"unknown model kind '{kind}'; use one of {KINDS}")
    overrides = dict(overrides)
    per_part = {part: dict(overrides.pop(part, None) or {}) for part in ("tokenizer", "lam", "dynamics")}
    shared = {key: overrides.pop(key) for key in SHARED_KEYS if key in overrides}
    if kind == "tokenizer":
        per_part["tokenizer"].update(overrides)
        overrides = {}
    if overrides:
        raise ValueError(
            f"unknown override(s) {sorted(overrides)} for {kind}; use tokenizer=/lam=/dynamics= dicts"
        )
    base = PRESETS[preset]
    tokenizer = make_config(
        TokenizerConfig, base["tokenizer"], {**shared, **per_part["tokenizer"]}, "tokenizer"
    )
    lam = make_config(LamConfig, base["lam"], {**shared, **per_part["lam"]}, "lam")
    dyn_shared = {k: v for k, v in shared.items() if k != "image_size"}
    dynamics = make_config(
        DynamicsConfig, base["dynamics"], {**dyn_shared, **per_part["dynamics"]}, "dynamics"
    )
    return {"tokenizer": tokenizer, "lam": lam, "dynamics": dynamics}


def build_from_configs(
    kind: str, configs: dict[str, Any], tokenizer: VideoTokenizer | None = None
) -> nn.Module:
    """Construct a model from resolved configs (also used by checkpoint loading)."""
    tokenizer = tokenizer or VideoTokenizer(configs["tokenizer"])
    if kind == "tokenizer":
        return tokenizer
    tok = tokenizer.config
    # the dynamics' vocabulary and grid are the tokenizer's; the LAM codes feed its action embedding
    dynamics = dataclasses.replace(
        configs["dynamics"], codebook_size=tok.codebook_size, grid_size=tok.grid[0], code_dim=tok.code_dim
    )
    if kind == "genie_redux":
        lam = configs["lam"]
        dynamics = dataclasses.replace(dynamics, action_code_dim=lam.code_dim)
        return GenieRedux(tokenizer, lam, dynamics)
    if kind == "genie_redux_guided":
        return GenieReduxGuided(tokenizer, dynamics)
    raise ValueError(f"unknown model kind '{kind}'; use one of {KINDS}")


def build(
    kind: str, preset: str, tokenizer: VideoTokenizer | dict[str, Any] | None = None, **overrides: Any
) -> nn.Module:
    """The one construction path for train, eval, play and AutoExplore.

    `tokenizer`: either a dict of tokenizer config overrides (`tokenizer={"codebook_size": 64}`) or an
    already trained tokenizer (e.g. `models.checkpoint.load_model(dpath)`) to freeze inside a world model;
    a trained tokenizer's config then replaces the preset's tokenizer config.
    """
    if isinstance(tokenizer, dict):
        overrides["tokenizer"] = tokenizer
        tokenizer = None
    configs = part_configs(preset, kind, overrides)
    if tokenizer is not None:
        configs["tokenizer"] = tokenizer.config
    model = build_from_configs(kind, configs, tokenizer)
    model.preset = preset
    return model


def model_tokenizer(model: nn.Module) -> VideoTokenizer:
    return model if isinstance(model, VideoTokenizer) else model.tokenizer


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per part (tokenizer, lam, dynamics incl. action embeddings) and the trainable total."""
    counts: dict[str, int] = {}
    for name, param in model.named_parameters():
        part = "tokenizer" if isinstance(model, VideoTokenizer) else name.split(".")[0]
        part = {"latent_action_embed": "dynamics", "action_embed": "dynamics"}.get(part, part)
        counts[part] = counts.get(part, 0) + param.numel()
    counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts
