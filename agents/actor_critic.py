"""Conv encoder + LSTM actor-critic over uint8 frames.

The default (`size=paper`) is AutoExplore's: 4 conv layers to a 1024-d feature, LSTMCell(1024 -> 512),
linear policy and value heads, ~3.3 M parameters at 64 px. `size=small` (~0.4 M) keeps a 2-core CPU
collecting and training at a few hundred env steps/s. One construction path: `build_actor_critic`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ActorCriticConfig:
    num_actions: int  # the env's Discrete(n)
    image_size: int = 64  # frames are square uint8 [S, S, 3]
    channels: tuple[int, ...] = (32, 64, 64, 64)  # conv widths, each a 4x4 stride-2 conv (halves S)
    hidden_size: int = 512  # LSTM state width

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}


SIZES: dict[str, dict] = {
    "paper": {"channels": (32, 64, 64, 64), "hidden_size": 512},  # 64 px: 64 x 4 x 4 = 1024 -> 512
    "small": {"channels": (16, 32, 32, 32), "hidden_size": 256},
    "tiny": {"channels": (8, 16), "hidden_size": 32},  # tests
}


def build_actor_critic(num_actions: int, image_size: int, size: str) -> ActorCritic:
    if size not in SIZES:
        raise ValueError(f"unknown agent size '{size}'; choose one of: {', '.join(SIZES)}")
    return ActorCritic(ActorCriticConfig(num_actions, image_size, **SIZES[size]))


LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each float [B, H]


class ActorCritic(nn.Module):
    def __init__(self, config: ActorCriticConfig) -> None:
        super().__init__()
        self.config = config
        layers, in_channels, size = [], 3, config.image_size
        for out_channels in config.channels:
            layers += [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1), nn.ReLU()]
            in_channels, size = out_channels, size // 2
        if size < 1:
            raise ValueError(f"{len(config.channels)} stride-2 convs leave nothing of {config.image_size} px")
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.feature_size = in_channels * size * size
        self.lstm = nn.LSTMCell(self.feature_size, config.hidden_size)
        self.policy_head = nn.Linear(config.hidden_size, config.num_actions)
        self.value_head = nn.Linear(config.hidden_size, 1)
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)  # near-uniform policy at the start
        nn.init.zeros_(self.policy_head.bias)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LSTMState:
        zeros = torch.zeros(batch_size, self.config.hidden_size, device=device)
        return zeros, zeros.clone()

    def step(
        self, frames: torch.Tensor, state: LSTMState, firsts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """One step. frames uint8 [B, S, S, 3]; firsts bool [B] (frame starts an episode: state zeroed first).
        Returns logits [B, A], values [B], the new state."""
        keep = (~firsts).to(state[0].dtype)[:, None]  # [B, 1]
        h, c = state[0] * keep, state[1] * keep
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # [B, 3, S, S]
        features = self.encoder(x)  # [B, F]
        h, c = self.lstm(features, (h, c))
        return self.policy_head(h), self.value_head(h).squeeze(-1), (h, c)

    def forward(
        self, frames: torch.Tensor, state: LSTMState, firsts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        return self.unroll(frames, state, firsts)

    def unroll(
        self, frames: torch.Tensor, state: LSTMState, firsts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """A sequence from `state` (the LSTM state before frame 0). frames uint8 [B, L, S, S, 3], firsts bool
        [B, L] -> logits [B, L, A], values [B, L], final state. The conv runs once over all B*L frames."""
        batch, length = frames.shape[:2]
        x = frames.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0  # [B*L, 3, S, S]
        features = self.encoder(x).view(batch, length, -1)  # [B, L, F]
        keeps = (~firsts).to(features.dtype)  # [B, L]
        h, c = state
        hidden = []
        for t in range(length):
            h, c = self.lstm(features[:, t], (h * keeps[:, t, None], c * keeps[:, t, None]))
            hidden.append(h)
        hidden = torch.stack(hidden, 1)  # [B, L, H]
        return self.policy_head(hidden), self.value_head(hidden).squeeze(-1), (h, c)


def action_probabilities(logits: torch.Tensor, temperature: float, epsilon: float) -> torch.Tensor:
    """The behaviour policy: softmax(logits / temperature) mixed with a uniform random action with
    probability `epsilon`. logits [..., A] -> probabilities [..., A]."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    probs = F.softmax(logits.float() / temperature, dim=-1)
    return (1.0 - epsilon) * probs + epsilon / logits.shape[-1]


def sample_actions(
    logits: torch.Tensor, temperature: float, epsilon: float, uniforms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one way every caller draws from the behaviour policy (training's collection, evaluation,
    recording): the inverse CDF of `action_probabilities` at `uniforms`, one draw in [0, 1) per row.

    Taking the draws from the caller lets each keep its own random stream (a torch.Generator in the
    trainer, the per-episode numpy rng in a recording). logits [B, A], uniforms [B] ->
    (actions int64 [B], probabilities [B, A]).
    """
    probs = action_probabilities(logits, temperature, epsilon)  # [B, A]
    cdf = probs.cumsum(-1)  # [B, A]
    targets = uniforms.to(cdf)[:, None] * cdf[:, -1:]  # [B, 1], scaled so rounding never overshoots
    actions = torch.searchsorted(cdf, targets, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
    return actions, probs
