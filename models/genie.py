"""GenieRedux (latent actions from the LAM) and GenieRedux-G (ground-truth named actions).

Both wrap a frozen tokenizer (eval mode, no gradients; tokens computed under no_grad) and a MaskGIT
dynamics model; they differ only in where action embeddings come from.

GenieRedux trains the LAM jointly: its own loss (next-frame MSE + VQ, weight `lam.loss_weight`) is
in the objective, and the dynamics sees the LAM's quantized codes with a straight-through gradient,
so the dynamics loss also shapes the LAM encoder toward actions that are useful for prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.config import DynamicsConfig, LamConfig
from models.dynamics import DynamicsModel, DynamicsOutput
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer


@dataclass
class GenieOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    dynamics: DynamicsOutput  # the dynamics' logits and mask
    latent_actions: torch.Tensor | None  # int64 [B, T-1] (GenieRedux) or None (guided)

    @property
    def masked_logits(self) -> torch.Tensor:
        """[M, K]: the dynamics' logits at its M masked positions."""
        return self.dynamics.masked_logits


class GenieBase(nn.Module):
    kind = ""
    is_action_guided = False

    def __init__(self, tokenizer: VideoTokenizer, dynamics_config: DynamicsConfig) -> None:
        super().__init__()
        self.dynamics = DynamicsModel(dynamics_config)
        self.tokenizer = tokenizer
        self.set_tokenizer(tokenizer)

    def set_tokenizer(self, tokenizer: VideoTokenizer) -> None:
        """Install a (trained) tokenizer, frozen; its codebook and grid must match the dynamics."""
        dyn = self.dynamics.config
        tok = tokenizer.config
        if (tok.codebook_size, tok.grid[0]) != (dyn.codebook_size, dyn.grid_size):
            raise ValueError(
                f"tokenizer has codebook {tok.codebook_size}, grid {tok.grid[0]}; dynamics expects codebook "
                f"{dyn.codebook_size}, grid {dyn.grid_size}: build the model with this tokenizer's preset"
            )
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.dynamics.set_code_vectors(tokenizer.quantizer.normalized_codebook())

    def train(self, mode: bool = True) -> GenieBase:
        super().train(mode)
        self.tokenizer.eval()  # frozen: no dead-code resets, no dropout, ever
        return self

    @property
    def image_size(self) -> int:
        return self.tokenizer.config.image_size

    @torch.no_grad()
    def tokenize(self, frames: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.encode(frames)  # [B, T, h, w]

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Action ids [B, N] -> dynamics action embeddings [B, N, D]."""
        raise NotImplementedError

    @property
    def num_actions(self) -> int:
        raise NotImplementedError


class GenieRedux(GenieBase):
    kind = "genie_redux"

    def __init__(
        self, tokenizer: VideoTokenizer, lam_config: LamConfig, dynamics_config: DynamicsConfig
    ) -> None:
        if lam_config.image_size != tokenizer.config.image_size:
            raise ValueError(
                f"LAM image_size {lam_config.image_size} != tokenizer image_size {tokenizer.config.image_size}"
            )
        super().__init__(tokenizer, dynamics_config)
        self.lam = LatentActionModel(lam_config)
        self.latent_action_embed = nn.Linear(lam_config.code_dim, dynamics_config.dim)

    @property
    def num_actions(self) -> int:
        return self.lam.config.num_latent_actions

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return self.latent_action_embed(self.lam.quantizer.lookup(actions))

    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        return self.lam.infer_actions(frames)

    def forward(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> GenieOutput:
        """frames [B, T, 3, H, W] in [0, 1]. `actions` is accepted for a uniform call and ignored."""
        token_ids = self.tokenize(frames)
        lam_out = self.lam(frames)
        action_embeds = self.latent_action_embed(lam_out.action_codes)  # [B, T-1, D], straight-through
        dyn_out = self.dynamics(token_ids, action_embeds)
        loss = dyn_out.loss + self.lam.config.loss_weight * lam_out.loss
        metrics = {f"dynamics/{k}": v for k, v in dyn_out.metrics.items()}
        metrics.update({f"lam/{k}": v for k, v in lam_out.metrics.items()})
        metrics["dynamics/loss"] = dyn_out.loss.detach()
        metrics["lam/loss"] = lam_out.loss.detach()
        return GenieOutput(loss, metrics, dyn_out, lam_out.actions)


class GenieReduxGuided(GenieBase):
    kind = "genie_redux_guided"
    is_action_guided = True

    def __init__(self, tokenizer: VideoTokenizer, dynamics_config: DynamicsConfig) -> None:
        super().__init__(tokenizer, dynamics_config)
        # one embedding per named action of the shared vocabulary, so "RIGHT" means the same in every game
        self.action_embed = nn.Embedding(dynamics_config.num_actions, dynamics_config.dim)

    @property
    def num_actions(self) -> int:
        return self.dynamics.config.num_actions

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor:
        # the range check reads two numbers back to the host: not inside a compiled graph (a graph break)
        checked = actions.numel() and not torch.compiler.is_compiling()
        if checked and (int(actions.min()) < 0 or int(actions.max()) >= self.num_actions):
            raise ValueError(
                f"action ids must be in [0, {self.num_actions}), got {int(actions.min())}..{int(actions.max())}"
            )
        return self.action_embed(actions)

    def forward(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> GenieOutput:
        """frames [B, T, 3, H, W] in [0, 1], actions int64 [B, T-1] vocabulary ids."""
        if actions is None or actions.shape != (frames.shape[0], frames.shape[1] - 1):
            got = None if actions is None else list(actions.shape)
            raise ValueError(
                f"GenieReduxGuided needs actions [B, T-1] = {[frames.shape[0], frames.shape[1] - 1]}, got {got}"
            )
        token_ids = self.tokenize(frames)
        dyn_out = self.dynamics(token_ids, self.embed_actions(actions))
        metrics = {f"dynamics/{k}": v for k, v in dyn_out.metrics.items()}
        return GenieOutput(dyn_out.loss, metrics, dyn_out, None)
