"""Where the training reward comes from: one interface, chosen by `reward.type`.

- `env`: the game's own reward (the CoinRun task agent);
- `none`: zero everywhere (exploration by entropy alone; a baseline);
- `world_model` (AutoExplore): how uncertain a frozen world model is about the frame each action
  leads to; every env's context is kept in one batched `WorldModel` session (see the class).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from common.errors import UserError
from envs.vector import VecStep

REWARD_TYPES = ("env", "none", "world_model")
TOP_FRACTION = 0.25  # the reward averages the most uncertain quarter of the predicted tokens


class RewardSource(ABC):
    def reset(self, observations: np.ndarray) -> None:  # noqa: B027 (an optional hook: stateless sources ignore it)
        """Every env starts an episode with these frames, uint8 [N, S, S, 3]."""

    @abstractmethod
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        """actions int64 [N] that led to `step` -> training rewards float32 [N] for that step."""


class EnvReward(RewardSource):
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        return step.rewards.astype(np.float32)


class NoReward(RewardSource):
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        return np.zeros_like(step.rewards, dtype=np.float32)


def uncertainty_score(logits: torch.Tensor) -> torch.Tensor:
    """logits [B, N, K] of N predicted tokens -> [B]: mean of the top 25 % per-token entropies / log K."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    entropies = -(log_probs.exp() * log_probs).sum(-1)  # [B, N], nats
    k = max(1, math.ceil(TOP_FRACTION * entropies.shape[1]))
    return entropies.topk(k, dim=1).values.mean(1) / math.log(logits.shape[-1])


@dataclass(frozen=True)
class WorldModelRewardSettings:
    world_model_dpath: str  # a GenieRedux-G checkpoint (or run folder)
    n_preds: int  # frames predicted jointly after each action (the taken action repeated)
    context_frames: int  # C: real frames the prediction is conditioned on; reward 0 until an episode has C
    device: str  # where the world model runs (cpu | cuda)


class WorldModelUncertaintyReward(RewardSource):
    """AutoExplore's reward: how uncertain the frozen world model is about what the action leads to.

    At step t env i has frames f_0..f_t (f_t: the frame action a_t was chosen on). The world model,
    primed with f_{t-C+1}..f_t and the actions between them, predicts the next `n_preds` frames under
    a_t with one MaskGIT step (the logits of fully masked frames); the reward is `uncertainty_score`
    of those logits. Then the real next frame f_{t+1} is tokenized and appended to the context.

    All envs share one `WorldModel` session of batch N, whose cache always holds exactly C frames per
    row, so one call scores every env and nothing is recomputed per step. An env whose episode has
    fewer than C frames earns 0 and its row holds stale context; when its episode reaches C frames the
    row is re-primed with them (`WorldModel.reset_rows`: equal to a fresh reset of that row).
    Each observed frame is encoded once, against the tokenizer encoder's cache of the frames before it.
    """

    def __init__(self, settings: WorldModelRewardSettings, action_ids: list[int], image_size: int) -> None:
        from models.world_model import WorldModel

        self.wm = WorldModel.from_checkpoint(
            settings.world_model_dpath, settings.device, expected_image_size=image_size
        )
        if not self.wm.is_action_guided:
            raise UserError(
                f"{settings.world_model_dpath}: the AutoExplore reward needs a GenieRedux-G model"
            )
        if max(action_ids) >= self.wm.num_actions:
            raise UserError(
                f"the game's actions (vocabulary ids {action_ids}) exceed the world model's "
                f"{self.wm.num_actions} actions; use a world model trained on this action set"
            )
        if not 1 <= settings.context_frames <= self.wm.max_frames - settings.n_preds:
            raise UserError(
                f"context_frames ({settings.context_frames}) + n_preds ({settings.n_preds}) must fit the "
                f"world model's {self.wm.max_frames}-frame window"
            )
        self.settings = settings
        self.action_ids = torch.as_tensor(action_ids, dtype=torch.long)  # local action -> vocabulary id
        self.frames: np.ndarray | None = None  # uint8 [N, C, S, S, 3], newest last
        self.actions: np.ndarray | None = None  # int64 [N, C-1] vocabulary ids between those frames
        self.counts: np.ndarray | None = None  # int64 [N]: frames of the current episode seen

    def _to_model(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [..., S, S, 3] -> float [..., 3, S, S] in [0, 1] on the model's device."""
        tensor = torch.from_numpy(frames).to(self.wm.device)
        return tensor.movedim(-1, -3).float() / 255.0

    def reset(self, observations: np.ndarray) -> None:
        c = self.settings.context_frames
        self.frames = np.repeat(observations[:, None], c, axis=1)  # placeholder context until C real frames
        self.actions = np.zeros((len(observations), c - 1), dtype=np.int64)
        self.counts = np.ones(len(observations), dtype=np.int64)
        self.wm.reset(self._to_model(self.frames), torch.from_numpy(self.actions).to(self.wm.device))
        self._reprime(np.flatnonzero(self.counts >= c))

    def _reprime(self, rows: np.ndarray) -> None:
        if len(rows):
            actions = torch.from_numpy(self.actions[rows]).to(self.wm.device)
            self.wm.reset_rows(torch.from_numpy(rows), self._to_model(self.frames[rows]), actions)

    @torch.no_grad()
    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        c, n_preds = self.settings.context_frames, self.settings.n_preds
        taken = self.action_ids[torch.from_numpy(actions)]  # [N] vocabulary ids
        is_scored = self.counts >= c  # [N]: the context is C real frames ending at f_t
        rewards = np.zeros(len(actions), dtype=np.float32)
        if is_scored.any():
            logits = self.wm.next_frames_logits(taken[:, None].expand(-1, n_preds))  # [N, n_preds*h*w, K]
            rewards[is_scored] = uncertainty_score(logits).cpu().numpy()[is_scored]
        # the context moves on to f_{t+1}; an ended episode restarts from its next episode's first frame
        dones = step.dones
        self.frames = np.concatenate([self.frames[:, 1:], step.observations[:, None]], axis=1)
        self.actions = np.concatenate([self.actions[:, 1:], taken.numpy()[:, None]], axis=1)
        self.counts = np.where(dones, 1, self.counts + 1)
        self.frames[dones] = step.observations[dones][:, None]
        self.actions[dones] = 0
        if (self.counts > c).any():  # rows that keep their context: append f_{t+1}, one batched call
            self.wm.observe(self._to_model(step.observations[:, None]), taken, max_context=c)
        self._reprime(np.flatnonzero(self.counts == c))
        return rewards


def build_reward_source(
    reward_type: str,
    world_model: WorldModelRewardSettings | None = None,
    action_ids: list[int] | None = None,
    image_size: int | None = None,
) -> RewardSource:
    """`world_model` settings, the game's action vocabulary ids and frame size: reward_type world_model only."""
    if reward_type == "world_model":
        if world_model is None or action_ids is None or image_size is None:
            raise UserError("reward.type world_model needs a world_model_dpath (a GenieRedux-G checkpoint)")
        return WorldModelUncertaintyReward(world_model, action_ids, image_size)
    sources = {"env": EnvReward, "none": NoReward}
    if reward_type not in sources:
        raise UserError(f"unknown reward.type '{reward_type}'; choose one of: {', '.join(REWARD_TYPES)}")
    return sources[reward_type]()
