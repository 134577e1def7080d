"""Vector quantizer with an l2-normalised codebook (cosine nearest neighbour), straight-through
gradients, commitment loss, k-means++ initialisation and dead-code reset onto poorly represented
encodings of the current batch.

Why these choices (measured on real Atari frames, see docs/models.md): game frames are mostly flat
background, so a codebook seeded from random encodings of the first batch starts as near-duplicates of
the background code and training collapses onto a handful of codes. k-means++ seeding spreads the
initial codes over what the batch actually contains, and a dead code is moved onto an encoding the
codebook represents badly (sampled in proportion to its quantisation error), which is where new codes
are needed: rare sprites, edges, text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

MAX_INIT_SAMPLES = 8192  # k-means++ over a random subset of the first batch: O(K * N) work
# A new code (at init or on a dead-code reset) must be at least this squared distance (2 - 2 cos) from
# every code already placed: cos < 0.995. Game frames hold few distinct patches, and seeding or
# resetting codes onto encodings that codes already sit on made near-duplicate codes (measured on the
# block game: 432 used codes for 3 kinds of patch, each within 1e-7 cosine of another), between which
# float noise picked at random, so an unchanged patch changed token from frame to frame.
MIN_NEW_CODE_DISTANCE = 0.01
MAX_RESETS_PER_STEP = 64  # bounds the greedy pick loop (and its host syncs); the rest wait a step


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
        usage_decay: float = 0.9,
        min_code_distance: float = MIN_NEW_CODE_DISTANCE,
    ) -> None:
        super().__init__()
        self.min_code_distance = min_code_distance  # squared distance a new code keeps from every other
        self.codebook_size = codebook_size
        self.commitment_weight = commitment_weight
        # relative criterion: a code is dead when its smoothed share of assignments falls below
        # dead_code_threshold / K (a uniform codebook gives every code 1 / K). 0.01 = under 1 % of a fair
        # share, i.e. practically never chosen: a small sprite seen a few times per batch keeps its code.
        # 0 = never reset
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay  # 0.9: a never-chosen code is found dead after ~44 steps
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        # EMA of each code's share of the batch's assignments; starts uniform
        self.register_buffer("usage", torch.full((codebook_size,), 1.0 / codebook_size))
        # data-dependent init: the first training batch seeds the codebook (k-means++), so codes start
        # where the encodings are instead of collapsing onto the few random codes nearest to them
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
        similarity, indices = (flat @ codebook.t()).max(dim=-1)  # [N]: max cosine = min l2 on the sphere
        codes = codebook[indices]  # [N, C]
        loss = F.mse_loss(codes, flat.detach()) + self.commitment_weight * F.mse_loss(flat, codes.detach())
        quantized = flat + (codes - flat).detach()  # straight-through estimator
        # a scatter, not bincount: bincount's output size depends on the data (a graph break when compiled)
        counts = torch.zeros(self.codebook_size, device=indices.device).index_add_(
            0, indices, torch.ones_like(indices, dtype=torch.float32)
        )  # [K]
        if self.training and self.dead_code_threshold > 0:
            # squared distance to the chosen code of unit vectors: 2 - 2 cos, in [0, 4]
            self.reset_dead_codes(counts, flat.detach(), (2 - 2 * similarity.detach()).clamp_min(0))
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
        """k-means++ seeding on (a subset of) the first batch's unit encodings [N, C]."""
        if encodings.shape[0] > MAX_INIT_SAMPLES:
            subset = torch.randperm(encodings.shape[0], device=encodings.device)[:MAX_INIT_SAMPLES]
            encodings = encodings[subset]
        picks = [int(torch.randint(0, encodings.shape[0], ()).item())]
        nearest = (2 - 2 * encodings @ encodings[picks[0]]).clamp_min(0)  # [N] squared distance to seeds
        while len(picks) < self.codebook_size and bool((nearest >= self.min_code_distance).any()):
            far_enough = torch.where(nearest >= self.min_code_distance, nearest, torch.zeros_like(nearest))
            pick = int(torch.multinomial(far_enough, 1).item())
            picks.append(pick)
            nearest = torch.minimum(nearest, (2 - 2 * encodings @ encodings[pick]).clamp_min(0))
        # the codes the batch has no distinct content for stay at their random init, far from every
        # encoding (random directions): unused, they are reset onto new content when it appears
        self.codebook.data[: len(picks)] = encodings[picks].to(self.codebook.dtype)
        self.usage.fill_(1.0 / self.codebook_size)
        self.is_initialized.fill_(True)
        self.broadcast_from_rank0()

    def broadcast_from_rank0(self) -> None:
        if dist.is_available() and dist.is_initialized():
            # inits/resets draw from each rank's own batch; keep every replica's codebook identical
            dist.broadcast(self.codebook.data, src=0)
            dist.broadcast(self.usage, src=0)

    @torch.no_grad()
    def reset_dead_codes(self, counts: torch.Tensor, encodings: torch.Tensor, errors: torch.Tensor) -> None:
        """Move codes whose usage share has dropped far below uniform onto badly quantised encodings.

        counts [K] assignments this batch, encodings [N, C] unit vectors, errors [N] their squared
        distance to their code. Replacements are drawn in proportion to the error, without replacement,
        so several dead codes spread over the poorly represented content instead of piling on one vector.
        """
        share = counts / counts.sum().clamp_min(1.0)
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * share)
        dead = (self.usage < self.dead_code_threshold / self.codebook_size).nonzero().squeeze(1)
        if dead.numel() > 0:
            picks = self.distinct_badly_quantised(encodings, errors, min(dead.numel(), MAX_RESETS_PER_STEP))
            dead = dead[torch.randperm(dead.numel(), device=dead.device)[: len(picks)]]
            self.codebook.data[dead] = encodings[picks].to(self.codebook.dtype)
            self.usage[dead] = 1.0 / self.codebook_size
        self.broadcast_from_rank0()

    def distinct_badly_quantised(
        self, encodings: torch.Tensor, errors: torch.Tensor, max_picks: int
    ) -> list[int]:
        """Up to `max_picks` encodings drawn in proportion to their error, each at least
        `min_code_distance` from its current code and from the other picks (no duplicate codes)."""
        remaining = torch.where(errors >= self.min_code_distance, errors, torch.zeros_like(errors))  # [N]
        picks: list[int] = []
        while len(picks) < max_picks and bool((remaining > 0).any()):
            pick = int(torch.multinomial(remaining, 1).item())
            picks.append(pick)
            too_close = (2 - 2 * encodings @ encodings[pick]) < self.min_code_distance  # [N]
            remaining = remaining.masked_fill(too_close, 0.0)
        return picks
