"""ST-ViViT VQ-VAE video tokenizer: patchify -> causal ST encoder -> VQ -> causal ST decoder -> unpatchify.

Both halves are causal in time, so frame t's tokens depend only on frames <= t and decoding can be
done frame by frame with cached keys/values (see `decode_step`). Time enters only as a relative
attention bias, never as a code added to the tokens: a frame's tokens depend on its content and its
recent history, not on its index in the clip (an unchanged clip keeps its tokens at every t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.components import FrameCache, QuantizerOutput, STTransformer, VectorQuantizer, add_positions
from models.components.patches import patchify, unpatchify
from models.config import TokenizerConfig


@dataclass
class TokenizerOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    reconstruction: torch.Tensor  # [B, T, 3, H, W]


class VideoTokenizer(nn.Module):
    kind = "tokenizer"

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        patch_features = 3 * config.patch_size**2
        self.patch_embed = nn.Linear(patch_features, config.dim)
        # LayerNorms after the input projections: the fixed position codes have unit-scale entries, a
        # fresh Linear of pixels (or of a unit code vector) is ~5x smaller, and the content would start
        # drowned under the positions (measured: 400 steps at 32 px reach 20 dB without, see docs)
        self.patch_norm = nn.LayerNorm(config.dim)
        self.encoder = STTransformer(
            config.dim,
            config.num_encoder_blocks,
            config.num_heads,
            config.mlp_ratio,
            config.activation_checkpointing,
            grid=config.grid,
        )
        self.to_code = nn.Linear(config.dim, config.code_dim)
        self.quantizer = VectorQuantizer(
            config.codebook_size, config.code_dim, config.commitment_weight, config.dead_code_threshold
        )
        self.from_code = nn.Linear(config.code_dim, config.dim)
        self.code_norm = nn.LayerNorm(config.dim)
        self.decoder = STTransformer(
            config.dim,
            config.num_decoder_blocks,
            config.num_heads,
            config.mlp_ratio,
            config.activation_checkpointing,
            grid=config.grid,
        )
        self.to_pixels = nn.Linear(config.dim, patch_features)

    @property
    def grid(self) -> tuple[int, int]:
        return self.config.grid

    def check_frames(self, frames: torch.Tensor) -> None:
        size = self.config.image_size
        if frames.ndim != 5 or frames.shape[2] != 3 or frames.shape[-2:] != (size, size):
            raise ValueError(f"expected frames [B, T, 3, {size}, {size}], got {list(frames.shape)}")

    def encode_latents(self, frames: torch.Tensor) -> QuantizerOutput:
        self.check_frames(frames)
        x = self.patch_norm(self.patch_embed(patchify(frames, self.config.patch_size)))  # [B, T, h*w, D]
        x = self.encoder(add_positions(x, self.grid))
        return self.quantizer(self.to_code(x))  # quantized [B, T, h*w, C], indices [B, T, h*w]

    def decode_codes(self, codes: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """codes [B, T, h*w, C] -> frames [B, T, 3, H, W] (unclamped); `window` as in STTransformer."""
        x = add_positions(self.code_norm(self.from_code(codes)), self.grid)
        patches = self.to_pixels(self.decoder(x, window=window))  # [B, T, h*w, p*p*3]
        return unpatchify(patches, self.grid, self.config.patch_size)

    def forward(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> TokenizerOutput:
        """frames [B, T, 3, H, W] in [0, 1]. `actions` is accepted for a uniform call and ignored."""
        quant = self.encode_latents(frames)
        reconstruction = self.decode_codes(quant.quantized)
        mse = F.mse_loss(reconstruction, frames)
        with torch.no_grad():
            psnr = -10 * torch.log10(F.mse_loss(reconstruction.clamp(0, 1), frames).clamp_min(1e-10))
        metrics = {"mse": mse.detach(), "vq_loss": quant.loss.detach(), "psnr": psnr}
        metrics.update({f"codebook_{k}": v for k, v in quant.metrics.items()})
        return TokenizerOutput(mse + quant.loss, metrics, reconstruction)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, T, 3, H, W] in [0, 1] -> token_ids int64 [B, T, h, w]."""
        indices = self.encode_latents(frames).indices  # [B, T, h*w]
        return indices.reshape(*indices.shape[:2], *self.grid)

    @torch.no_grad()
    def encode_step(self, frames: torch.Tensor, cache: FrameCache | None) -> tuple[torch.Tensor, FrameCache]:
        """Encode new frames given the encoder cache of the frames before them (the encoder is causal).

        frames [B, Tn, 3, H, W] -> (token_ids int64 [B, Tn, h, w], cache extended by these frames);
        with no cache it equals `encode`. The caller bounds the cache (`FrameCache.last`).
        """
        self.check_frames(frames)
        x = self.patch_norm(self.patch_embed(patchify(frames, self.config.patch_size)))  # [B, Tn, h*w, D]
        hidden, new_kv = self.encoder.forward_cached(add_positions(x, self.grid), cache)
        indices = self.quantizer(self.to_code(hidden)).indices  # [B, Tn, h*w]
        return indices.reshape(*indices.shape[:2], *self.grid), (cache or FrameCache()).appended(new_kv)

    @torch.no_grad()
    def decode(self, token_ids: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """token_ids [B, T, h, w] -> frames [B, T, 3, H, W] in [0, 1].

        `window`: each frame's decoder attends to at most this many frames (itself included), as
        `decode_step` does with a cache of `window - 1` frames; None = every frame before it.
        """
        codes = self.quantizer.lookup(token_ids.flatten(2))  # [B, T, h*w, C]
        return self.decode_codes(codes, window).clamp(0, 1)

    @torch.no_grad()
    def decode_step(
        self, token_ids: torch.Tensor, cache: FrameCache | None
    ) -> tuple[torch.Tensor, FrameCache]:
        """Decode new frames given the decoder cache of the frames before them.

        token_ids [B, Tn, h, w] -> (frames [B, Tn, 3, H, W], cache extended by these frames). The
        caller bounds the cache (`FrameCache.last`); keys carry no frame index, so dropping old
        frames needs no recompute.
        """
        codes = self.quantizer.lookup(token_ids.flatten(2))  # [B, Tn, h*w, C]
        x = add_positions(self.code_norm(self.from_code(codes)), self.grid)
        hidden, new_kv = self.decoder.forward_cached(x, cache)
        frames = unpatchify(self.to_pixels(hidden), self.grid, self.config.patch_size).clamp(0, 1)
        return frames, (cache or FrameCache()).appended(new_kv)
