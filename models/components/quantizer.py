"""Vector quantizer with an l2-normalised codebook (cosine nearest neighbour), straight-through
gradients, commitment loss and dead-code reset from the current batch's encodings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [..., code_dim], straight-through: forward = code, backward = identity
    indices: torch.Tensor  # [...] int64
    loss: torch.Tensor  # codebook + commitment loss, scalar
    metrics: dict[str, torch.Tensor]


class VectorQuantizer(nn.Module):
    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        commitment_weight: float = 0.25,
        dead_code_threshold: float = 0.03,
        usage_decay: float = 0.99,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.commitment_weight = commitment_weight
        # a code is dead when its smoothed usage falls below this fraction of uniform usage; 0 disables reset
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        self.register_buffer("usage", torch.ones(codebook_size))  # EMA of usage / uniform usage

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)  # [K, C]

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices [...] -> unit code vectors [..., C]."""
        return F.embedding(indices, self.normalized_codebook())

    def forward(self, latents: torch.Tensor) -> QuantizerOutput:
        """latents [..., C] -> nearest unit code (cosine similarity) per vector."""
        flat = F.normalize(latents.reshape(-1, latents.shape[-1]), dim=-1)  # [N, C]
        codebook = self.normalized_codebook()
        indices = (flat @ codebook.t()).argmax(dim=-1)  # [N]: max cosine = min l2 on the sphere
        codes = codebook[indices]  # [N, C]
        loss = F.mse_loss(codes, flat.detach()) + self.commitment_weight * F.mse_loss(flat, codes.detach())
        quantized = flat + (codes - flat).detach()  # straight-through estimator
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        if self.training and self.dead_code_threshold > 0:
            self.reset_dead_codes(counts, flat.detach())
        probs = counts / counts.sum()
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
        metrics = {
            "perplexity": entropy.exp().detach(),
            "usage": (counts > 0).float().mean(),
        }
        shape = latents.shape[:-1]
        return QuantizerOutput(quantized.reshape(*shape, -1), indices.reshape(shape), loss, metrics)

    @torch.no_grad()
    def reset_dead_codes(self, counts: torch.Tensor, encodings: torch.Tensor) -> None:
        """Move codes nobody has used for a while onto random encodings of this batch."""
        uniform = counts.sum() / self.codebook_size
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * counts / uniform)
        dead = (self.usage < self.dead_code_threshold).nonzero().squeeze(1)
        if dead.numel() > 0:
            picks = torch.randint(0, encodings.shape[0], (dead.numel(),), device=encodings.device)
            self.codebook.data[dead] = encodings[picks].to(self.codebook.dtype)
            self.usage[dead] = 1.0
        if dist.is_available() and dist.is_initialized():
            # resets draw from each rank's own batch; keep every replica's codebook identical
            dist.broadcast(self.codebook.data, src=0)
            dist.broadcast(self.usage, src=0)
