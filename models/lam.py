"""Latent action model: infers one discrete action per transition from video alone.

Encoder: causal ST-transformer over the patches of frames 0..T-1; the change of the per-patch features
from frame t to frame t+1 (through causal temporal attention, frame t+1's features have seen frames
<= t+1) is mean-pooled over patches, layer-normalised and quantized into the latent action a_t.
Pooling replaces upstream's flatten-everything Linear (67M parameters at 64 px, quadratic in
resolution); the bottleneck stays a small codebook.

Why the change and not frame t+1's features themselves (measured on the block game, docs/models.md):
pooled features are dominated by the static scene, so at initialisation every transition's latent
had cosine > 0.9999 with every other, all transitions took one code and the LAM never left that
collapse (4.5 % of the action information after 1000 steps). The normalised change is diverse and
already clusters by action at initialisation.
Decoder: causal ST-transformer over frames 0..T-2 with a_t added to every patch of frame t;
it predicts frame t+1's patches (MSE). Frame t+1 reaches the decoder only through a_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.components import QuantizerOutput, STTransformer, VectorQuantizer, add_positions
from models.components.patches import patchify, unpatchify
from models.config import LamConfig


@dataclass
class LamOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    actions: torch.Tensor  # int64 [B, T-1] latent action ids
    action_codes: torch.Tensor  # [B, T-1, code_dim] unit code vectors, straight-through gradient
    prediction: torch.Tensor  # [B, T-1, 3, H, W] predicted frames 1..T-1


class LatentActionModel(nn.Module):
    def __init__(self, config: LamConfig) -> None:
        super().__init__()
        self.config = config
        patch_features = 3 * config.patch_size**2
        self.encoder_embed = nn.Linear(patch_features, config.dim)
        self.encoder = STTransformer(
            config.dim,
            config.num_encoder_blocks,
            config.num_heads,
            config.mlp_ratio,
            config.activation_checkpointing,
            grid=config.grid,
        )
        self.change_norm = nn.LayerNorm(config.dim)  # the raw change is tiny when little moves
        self.to_action = nn.Sequential(
            nn.Linear(config.dim, config.dim), nn.GELU(), nn.Linear(config.dim, config.code_dim)
        )
        self.quantizer = VectorQuantizer(
            config.num_latent_actions, config.code_dim, config.commitment_weight, config.dead_code_threshold
        )
        self.decoder_embed = nn.Linear(patch_features, config.dim)
        self.action_embed = nn.Linear(config.code_dim, config.dim)
        self.decoder = STTransformer(
            config.dim,
            config.num_decoder_blocks,
            config.num_heads,
            config.mlp_ratio,
            config.activation_checkpointing,
            grid=config.grid,
        )
        self.to_pixels = nn.Linear(config.dim, patch_features)

    def check_frames(self, frames: torch.Tensor) -> None:
        size = self.config.image_size
        if frames.ndim != 5 or frames.shape[1] < 2 or frames.shape[-3:] != (3, size, size):
            raise ValueError(f"LAM expects frames [B, T>=2, 3, {size}, {size}], got {list(frames.shape)}")

    def action_latents(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, T, 3, H, W] -> continuous (pre-quantization) action latents [B, T-1, C]."""
        self.check_frames(frames)
        x = self.encoder_embed(patchify(frames, self.config.patch_size))  # [B, T, S, D]
        features = self.encoder(add_positions(x, self.config.grid))
        change = (features[:, 1:] - features[:, :-1]).mean(dim=2)  # [B, T-1, D]: transition t -> t+1
        return self.to_action(self.change_norm(change))

    def encode(self, frames: torch.Tensor) -> QuantizerOutput:
        """frames [B, T, 3, H, W] -> quantizer output over the T-1 transitions."""
        return self.quantizer(self.action_latents(frames))  # quantized [B, T-1, C], indices [B, T-1]

    def decode(self, frames: torch.Tensor, action_codes: torch.Tensor) -> torch.Tensor:
        """frames [B, T, 3, H, W] (uses 0..T-2), action_codes [B, T-1, C] -> predicted frames 1..T-1."""
        x = self.decoder_embed(patchify(frames[:, :-1], self.config.patch_size))  # [B, T-1, S, D]
        x = add_positions(x, self.config.grid) + self.action_embed(action_codes)[:, :, None, :]
        patches = self.to_pixels(self.decoder(x))  # [B, T-1, S, p*p*3]
        return unpatchify(patches, self.config.grid, self.config.patch_size)

    def forward(self, frames: torch.Tensor) -> LamOutput:
        quant = self.encode(frames)
        prediction = self.decode(frames, quant.quantized)
        mse = F.mse_loss(prediction, frames[:, 1:])
        metrics = {"mse": mse.detach(), "vq_loss": quant.loss.detach()}
        metrics.update({f"action_{k}": v for k, v in quant.metrics.items()})
        return LamOutput(mse + quant.loss, metrics, quant.indices, quant.quantized, prediction)

    @torch.no_grad()
    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, T, 3, H, W] -> latent action ids int64 [B, T-1]."""
        return self.encode(frames).indices
