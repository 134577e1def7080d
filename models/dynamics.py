"""MaskGIT dynamics model: predicts the tokens of frame t+1 from the tokens of frames <= t and the
action a_t, with a causal ST-transformer over token embeddings.

Training masks each future frame's tokens with a rate drawn per (sample, frame) from
U(mask_rate_min, mask_rate_max); frame 0 is always visible context. Loss: cross-entropy on masked
positions, optionally plus TDCE, the expected cosine distance between the predicted and the true code.
The tokenizer's code vectors (TDCE, token input skip) are installed by the model that owns the frozen
tokenizer (`set_code_vectors`).
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
    logits: torch.Tensor  # [M, K] at the M masked positions, or [B*T*h*w, K] at every one (`dense`)
    mask: torch.Tensor  # bool [B, T, h*w], True where the input token was masked
    dense: bool = False  # a compiled graph computes the head everywhere (see DynamicsModel.forward)

    @property
    def masked_logits(self) -> torch.Tensor:
        """[M, K]: logits at the M masked positions, in mask.nonzero() order."""
        return self.logits[self.mask.flatten()] if self.dense else self.logits


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
            self.code_proj = nn.Linear(config.code_dim, config.dim)
            self.mask_code = nn.Parameter(torch.zeros(config.dim))  # what a masked token's code looks like
        self.head = nn.Linear(config.dim, config.codebook_size)
        # the frozen tokenizer's unit code vectors [K, C], saved with the weights so that a loaded model has
        # those of the tokenizer it was trained with (set again whenever a tokenizer is installed)
        self.register_buffer("code_vectors", torch.zeros(config.codebook_size, config.code_dim))
        self.has_code_vectors = False

    def set_code_vectors(self, code_vectors: torch.Tensor) -> None:
        """Install the tokenizer's code vectors [K, C] (unit rows)."""
        expected = (self.config.codebook_size, self.config.code_dim)
        if tuple(code_vectors.shape) != expected:
            raise ValueError(
                f"code vectors {list(code_vectors.shape)} do not match the dynamics' {list(expected)}"
            )
        self.code_vectors.copy_(code_vectors.detach())
        self.has_code_vectors = True

    def require_code_vectors(self) -> torch.Tensor:
        if not self.has_code_vectors:
            raise ValueError(
                "tdce and token_input_skip need the tokenizer's code vectors: call set_code_vectors"
            )
        return self.code_vectors

    def code_input(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids [B, T, S] (mask_id allowed) -> the token input skip [B, T, S, D]: the projected code
        vector of each visible token, a learned mask vector for masked ones."""
        visible = token_ids != self.mask_id
        codes = self.require_code_vectors()[
            token_ids.clamp(max=self.config.codebook_size - 1)
        ]  # [B, T, S, C]
        return torch.where(visible[..., None], self.code_proj(codes), self.mask_code.to(codes.dtype))

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
        if self.config.token_input_skip:
            tokens = tokens + self.code_input(token_ids.flatten(2))
        if self.config.action_conditioning == "additive":
            x = tokens + frame_actions[:, :, None, :]
        else:  # prepend: one action token per frame joins the spatial attention of that frame
            action_tokens = (frame_actions + self.action_token_type)[:, :, None, :]  # [B, T, 1, D]
            x = torch.cat([action_tokens, tokens], dim=2)  # [B, T, 1+h*w, D]
        return add_positions(x, self.grid)

    def token_features(self, hidden: torch.Tensor) -> torch.Tensor:
        """Transformer output [B, T, S', D] -> what the head reads for each token [B, T, h*w, D]."""
        return hidden[:, :, 1:] if self.config.action_conditioning == "prepend" else hidden  # no action token

    def to_logits(self, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, S', D] -> logits [B, T, h*w, K]."""
        return self.head(self.token_features(hidden))

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
        return self.token_features(hidden)  # [B, T, h*w, D]

    def logits_cached(
        self, token_ids: torch.Tensor, frame_actions: torch.Tensor, cache: FrameCache | None
    ) -> tuple[torch.Tensor, list[KeyValue]]:
        """New frames only: token_ids [B, Tn, h, w] after the cached frames -> (logits, their k/v)."""
        hidden, new_kv = self.transformer.forward_cached(self.embed(token_ids, frame_actions), cache)
        return self.to_logits(hidden, token_ids), new_kv

    def context_cached(
        self, token_ids: torch.Tensor, frame_actions: torch.Tensor, cache: FrameCache | None
    ) -> list[KeyValue]:
        """The k/v final frames token_ids [B, Tn, h, w] leave for the frames after them, without their
        logits: priming, committing and observing read nothing from the head (at the tiny preset the
        head, D x K = 64 x 1024, costs about half as much as the two blocks)."""
        return self.transformer.forward_cached(self.embed(token_ids, frame_actions), cache)[1]

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
        generator: torch.Generator | None = None,
    ) -> DynamicsOutput:
        """token_ids [B, T, h, w], action_embeds [B, T-1, D] -> masked-token loss and metrics."""
        b, t = token_ids.shape[:2]
        targets = token_ids.flatten(2)  # [B, T, S]
        mask = self.sample_mask(targets.shape, token_ids.device, generator)
        context_ids = self.noisy_context(targets, generator) if self.config.context_noise > 0 else targets
        inputs = torch.where(mask, torch.full_like(targets, self.mask_id), context_ids).view_as(token_ids)
        context_ids = context_ids.view_as(token_ids)  # the clean stream's context (noised, if noise is on)
        frame_actions = self.frame_actions(action_embeds)  # [B, T, D]
        # the first num_clean samples train with clean context, the rest with masked context
        num_clean = round(b * self.config.clean_context_fraction)
        parts = []
        if num_clean > 0:
            parts.append(
                self.clean_context_features(
                    context_ids[:num_clean], inputs[:num_clean], frame_actions[:num_clean]
                )
            )
        if num_clean < b:
            masked_part = self.transformer(self.embed(inputs[num_clean:], frame_actions[num_clean:]))
            parts.append(self.token_features(masked_part))
        features = torch.cat(parts) if len(parts) > 1 else parts[0]  # [B, T, S, D]
        dense = torch.compiler.is_compiling()
        if dense:
            # a compiled graph keeps its shapes fixed: the head at every position and the loss counted where
            # masked (indexing by the mask has a data-dependent size: a graph break and a host sync per use)
            logits = self.head(features).flatten(0, 2)  # [B*T*S, K]
            chosen_targets, weights = targets.flatten(), mask.flatten().to(logits.dtype)  # [B*T*S]
        else:
            # the head and the loss only where there is something to predict (~75 % of tokens, and the
            # head over K codes is the largest matmul of a small model)
            logits = self.head(features[mask])  # [M, K]
            chosen_targets, weights = targets[mask], None  # [M]
        ce = F.cross_entropy(logits.float(), chosen_targets, reduction="none")  # [M] or [B*T*S]
        ce = ce * weights if dense else ce
        num_masked = mask.sum().clamp_min(1)  # a tensor: no host sync
        loss = ce.sum() / num_masked
        metrics = {}
        if self.config.tdce:
            penalty = self.tdce_penalty(logits, chosen_targets)
            penalty = (penalty * weights if dense else penalty).sum() / num_masked
            loss = loss + self.config.tdce_weight * penalty
            metrics["tdce_penalty"] = penalty.detach()
        with torch.no_grad():
            correct = logits.argmax(-1) == chosen_targets
            metrics |= {
                "ce": ce.sum() / num_masked,
                "token_accuracy": (correct & mask.flatten() if dense else correct).sum() / num_masked,
                "mask_rate": mask[:, 1:].float().mean() if t > 1 else mask.float().mean(),
            }
        return DynamicsOutput(loss, metrics, logits, mask, dense)

    def noisy_context(
        self, token_ids: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """token_ids [B, T, S] with a share ~ U(0, context_noise) per sample replaced by random codes."""
        b = token_ids.shape[0]
        device = token_ids.device
        rates = self.config.context_noise * torch.rand(
            b, 1, 1, device=device, generator=generator
        )  # [B, 1, 1]
        noise = torch.rand(token_ids.shape, device=device, generator=generator) < rates
        random_ids = torch.randint(
            0, self.config.codebook_size, token_ids.shape, device=device, generator=generator
        )
        return torch.where(noise, random_ids, token_ids)

    def tdce_penalty(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Expected cosine distance to the true code under the softmax: logits [M, K], targets [M] -> [M].

        0 when all mass is on the true code (or on codes identical to it), up to 2 for its opposite;
        differentiable in the logits.
        """
        codes = F.normalize(self.require_code_vectors().float(), dim=-1)  # [K, C]
        distance = 1.0 - codes[targets] @ codes.T  # [M, K]: cosine distance of every code to the true one
        return (torch.softmax(logits.float(), dim=-1) * distance).sum(-1)
