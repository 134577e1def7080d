"""MaskGIT dynamics model: predicts the tokens of frame t+1 from the tokens of frames <= t and the
action a_t, with a causal ST-transformer over token embeddings.

Training masks each future frame's tokens with a rate drawn per (sample, frame) from
U(mask_rate_min, mask_rate_max); frame 0 is always visible context. Loss: cross-entropy on masked
positions, optionally weighted by the distance between predicted and true codebook vectors (TDCE).
Actions arrive as embeddings [B, T-1, D] so one model serves both latent (LAM) and named actions.

Two training regimes, mixed per batch by `clean_context_fraction`:
- clean context (as autoregressive inference sees it): the clip runs through the transformer twice,
  clean and masked, and each masked frame t attends to the *clean* frames before it and to itself.
  At inference the past comes from the cache of final (clean) frames, so this is the conditional the
  sampler asks for: next frame given clean history and the action. It costs ~2x compute per sample.
- masked context (Genie's regime, as one_go inference sees it): one stream, every frame after the
  first partially masked, each attending to the masked frames before it.
Measured on the synthetic block game (docs/models.md), the masked-only regime learns to lean on the
always-clean frame 0 and integrate actions from there, and barely responds to the last action.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.components import FrameCache, STTransformer, add_positions
from models.components.st_transformer import KeyValue
from models.config import DynamicsConfig


@dataclass
class DynamicsOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    masked_logits: torch.Tensor  # [M, K]: logits at the M masked positions, in mask.nonzero() order
    mask: torch.Tensor  # bool [B, T, h*w], True where the input token was masked


class DynamicsModel(nn.Module):
    def __init__(self, config: DynamicsConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_id = config.codebook_size  # one extra embedding row for [MASK]
        self.token_embed = nn.Embedding(config.codebook_size + 1, config.dim)
        self.start_action = nn.Parameter(torch.zeros(config.dim))  # "no action yet" for frame 0
        if config.action_conditioning == "prepend":
            self.action_token_type = nn.Parameter(torch.zeros(config.dim))
        self.transformer = STTransformer(
            config.dim,
            config.num_blocks,
            config.num_heads,
            config.mlp_ratio,
            config.activation_checkpointing,
            grid=(config.grid_size, config.grid_size),
        )
        if config.token_input_skip:
            self.skip_norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.codebook_size)

    @property
    def grid(self) -> tuple[int, int]:
        return self.config.grid_size, self.config.grid_size

    def frame_actions(self, action_embeds: torch.Tensor) -> torch.Tensor:
        """action_embeds [B, T-1, D] (a_t leads to frame t+1) -> per-frame conditioning [B, T, D]."""
        start = self.start_action.expand(action_embeds.shape[0], 1, -1).to(action_embeds.dtype)
        return torch.cat([start, action_embeds], dim=1)

    def embed(self, token_ids: torch.Tensor, frame_actions: torch.Tensor) -> torch.Tensor:
        """token_ids [B, T, h, w] (mask_id allowed), frame_actions [B, T, D] -> stream [B, T, S', D]."""
        tokens = self.token_embed(token_ids.flatten(2))  # [B, T, h*w, D]
        if self.config.action_conditioning == "additive":
            x = tokens + frame_actions[:, :, None, :]
        else:  # prepend: one action token per frame joins the spatial attention of that frame
            action_tokens = (frame_actions + self.action_token_type)[:, :, None, :]  # [B, T, 1, D]
            x = torch.cat([action_tokens, tokens], dim=2)  # [B, T, 1+h*w, D]
        return add_positions(x, self.grid)

    def token_features(self, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """Transformer output [B, T, S', D] -> what the head reads for each token [B, T, h*w, D]."""
        if self.config.action_conditioning == "prepend":
            hidden = hidden[:, :, 1:]  # drop the action token
        if self.config.token_input_skip:
            # skip connection from the input token embedding: visible tokens reach the head directly,
            # so the transformer's capacity goes to the masked ones
            hidden = hidden + self.skip_norm(self.token_embed(token_ids.flatten(2)))
        return hidden

    def to_logits(self, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, S', D] -> logits [B, T, h*w, K]."""
        return self.head(self.token_features(hidden, token_ids))

    def logits(
        self, token_ids: torch.Tensor, frame_actions: torch.Tensor, window: int | None = None
    ) -> torch.Tensor:
        """Whole clip: token_ids [B, T, h, w], frame_actions [B, T, D] -> logits [B, T, h*w, K].

        `window`: each frame attends to at most this many frames (itself included); None = all.
        """
        hidden = self.transformer(self.embed(token_ids, frame_actions), window=window)
        return self.to_logits(hidden, token_ids)

    def logits_clean_context(
        self, clean_ids: torch.Tensor, masked_ids: torch.Tensor, frame_actions: torch.Tensor
    ) -> torch.Tensor:
        """Logits [B, T, h*w, K] of masked_ids [B, T, h, w] where frame t sees clean_ids of frames < t."""
        return self.head(self.clean_context_features(clean_ids, masked_ids, frame_actions))

    def clean_context_features(
        self, clean_ids: torch.Tensor, masked_ids: torch.Tensor, frame_actions: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.transformer.forward_two_stream(
            self.embed(clean_ids, frame_actions), self.embed(masked_ids, frame_actions)
        )
        return self.token_features(hidden, masked_ids)  # [B, T, h*w, D]

    def logits_cached(
        self, token_ids: torch.Tensor, frame_actions: torch.Tensor, cache: FrameCache | None
    ) -> tuple[torch.Tensor, list[KeyValue]]:
        """New frames only: token_ids [B, Tn, h, w] after the cached frames -> (logits, their k/v)."""
        hidden, new_kv = self.transformer.forward_cached(self.embed(token_ids, frame_actions), cache)
        return self.to_logits(hidden, token_ids), new_kv

    def sample_mask(
        self, shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """bool [B, T, S]: frame 0 visible; frame t>=1 masked with a rate ~ U(min, max) drawn per (b, t)."""
        b, t, s = shape
        low, high = self.config.mask_rate_min, self.config.mask_rate_max
        rates = low + (high - low) * torch.rand(b, t, 1, device=device, generator=generator)  # [B, T, 1]
        mask = torch.rand(b, t, s, device=device, generator=generator) < rates
        mask[:, 0] = False
        return mask

    def forward(
        self,
        token_ids: torch.Tensor,
        action_embeds: torch.Tensor,
        code_vectors: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> DynamicsOutput:
        """token_ids [B, T, h, w], action_embeds [B, T-1, D]; code_vectors [K, C] needed for TDCE."""
        b, t = token_ids.shape[:2]
        targets = token_ids.flatten(2)  # [B, T, S]
        mask = self.sample_mask(targets.shape, token_ids.device, generator)
        inputs = torch.where(mask, torch.full_like(targets, self.mask_id), targets).view_as(token_ids)
        frame_actions = self.frame_actions(action_embeds)  # [B, T, D]
        # the first num_clean samples train with clean context, the rest with masked context
        num_clean = round(b * self.config.clean_context_fraction)
        parts = []
        if num_clean > 0:
            parts.append(
                self.clean_context_features(
                    token_ids[:num_clean], inputs[:num_clean], frame_actions[:num_clean]
                )
            )
        if num_clean < b:
            masked_part = self.transformer(self.embed(inputs[num_clean:], frame_actions[num_clean:]))
            parts.append(self.token_features(masked_part, inputs[num_clean:]))
        features = torch.cat(parts) if len(parts) > 1 else parts[0]  # [B, T, S, D]
        # the head and the loss only where there is something to predict (~75 % of tokens, and the
        # head over K codes is the largest matmul of a small model)
        logits = self.head(features[mask])  # [M, K]
        masked_targets = targets[mask]  # [M]
        ce = F.cross_entropy(logits.float(), masked_targets, reduction="none")  # [M]
        predicted = logits.argmax(-1)
        weights = torch.ones_like(ce)
        if self.config.tdce:
            if code_vectors is None:
                raise ValueError("tdce=True needs the tokenizer's codebook vectors (code_vectors)")
            weights = self.tdce_weights(predicted, masked_targets, code_vectors)
        num_masked = max(int(mask.sum()), 1)
        loss = (ce * weights).sum() / num_masked
        with torch.no_grad():
            metrics = {
                "ce": ce.sum() / num_masked,
                "token_accuracy": (predicted == masked_targets).sum() / num_masked,
                "mask_rate": mask[:, 1:].float().mean() if t > 1 else mask.float().mean(),
            }
        return DynamicsOutput(loss, metrics, logits, mask)

    def tdce_weights(
        self, predicted: torch.Tensor, targets: torch.Tensor, code_vectors: torch.Tensor
    ) -> torch.Tensor:
        """w = 1 + lambda * ||c[pred] - c[true]||^2 / 4, in [1, 1 + lambda] for unit codes; no gradient."""
        with torch.no_grad():
            codes = F.normalize(code_vectors.float(), dim=-1)
            sq_distance = (codes[predicted] - codes[targets]).pow(2).sum(-1)  # [...] in [0, 4]
            return 1.0 + self.config.tdce_weight * sq_distance / 4.0
