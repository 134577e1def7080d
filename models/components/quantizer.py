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
        dead_code_threshold: float = 0.01,
        usage_decay: float = 0.99,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.commitment_weight = commitment_weight
        # a code is dead when its smoothed assignments per batch fall below this (it has gone ~unused for
        # hundreds of steps); an absolute count, so rare-but-real content (a small sprite) keeps its code; 0 = never
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        self.register_buffer("usage", torch.ones(codebook_size))  # EMA of assignments per batch
        # data-dependent init: the first training batch seeds the codebook, so codes start where the
        # encodings are instead of collapsing onto the few random codes nearest to them
        self.register_buffer("is_initialized", torch.tensor(False))

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)  # [K, C]

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices [...] -> unit code vectors [..., C]."""
        return F.embedding(indices, self.normalized_codebook())

    def forward(self, latents: torch.Tensor) -> QuantizerOutput:
        """latents [..., C] -> nearest unit code (cosine similarity) per vector."""
        flat = F.normalize(latents.reshape(-1, latents.shape[-1]), dim=-1)  # [N, C]
        if self.training and not bool(self.is_initialized):
            self.init_from(flat.detach())
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
    def init_from(self, encodings: torch.Tensor) -> None:
        picks = torch.randint(0, encodings.shape[0], (self.codebook_size,), device=encodings.device)
        noise = 1e-3 * torch.randn_like(self.codebook)  # distinct codes even when picks repeat
        self.codebook.data.copy_(encodings[picks].to(self.codebook.dtype) + noise)
        self.is_initialized.fill_(True)
        self.broadcast_from_rank0()

    def broadcast_from_rank0(self) -> None:
        if dist.is_available() and dist.is_initialized():
            # inits/resets draw from each rank's own batch; keep every replica's codebook identical
            dist.broadcast(self.codebook.data, src=0)
            dist.broadcast(self.usage, src=0)

    @torch.no_grad()
    def reset_dead_codes(self, counts: torch.Tensor, encodings: torch.Tensor) -> None:
        """Move codes nobody has used for a while onto random encodings of this batch."""
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * counts)
        dead = (self.usage < self.dead_code_threshold).nonzero().squeeze(1)
        if dead.numel() > 0:
            picks = torch.randint(0, encodings.shape[0], (dead.numel(),), device=encodings.device)
            self.codebook.data[dead] = encodings[picks].to(self.codebook.dtype)
            self.usage[dead] = 1.0
        self.broadcast_from_rank0()
