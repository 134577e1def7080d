"""Where the training reward comes from: one interface, chosen by `reward.type`.

- `env`: the game's own reward (the CoinRun task agent);
- `none`: zero everywhere (exploration by entropy alone; a baseline);
- `world_model` (AutoExplore): how uncertain a frozen world model is about the frame each action
  leads to; every env's context is kept in one batched `WorldModel` session (see the class);
- `rnd`: Random Network Distillation (Burda et al. 2018), the standard exploration baseline: how badly
  a predictor, trained online on the frames the agent reaches, matches a fixed random network there.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from agents.reward_shaping import RunningMoments
from common.errors import UserError
from envs.vector import VecStep

REWARD_TYPES = ("env", "none", "world_model", "rnd")
# what the world-model reward gives a step it cannot score yet (an episode's first context_frames - 1 steps):
# zero (the paper's: every new episode starts with steps worth nothing, so ending one costs and surviving
# pays, whatever the returns' remedies), or the running mean of the scored rewards (a new episode neither
# costs nor pays)
UNSCORED_FILLS = ("zero", "mean")
TOP_FRACTION = 0.25  # the reward averages the most uncertain quarter of the predicted tokens


class RewardSource(ABC):
    def reset(self, observations: np.ndarray) -> None:  # noqa: B027 (an optional hook: stateless sources ignore it)
        """Every env starts an episode with these frames, uint8 [N, S, S, 3]."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """What a resumed run needs to continue this source exactly (a learning source's weights)."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:  # noqa: B027 (stateless: nothing)
        """The inverse of `state_tensors`."""

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
    precision: str = "auto"  # inference: auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    unscored: str = "zero"  # a step before the episode has C frames earns: zero | mean (UNSCORED_FILLS)


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
    An unscored step earns 0 (the paper's) or, with `unscored="mean"`, the mean of every reward scored
    so far (kept as state: a resumed run continues it).
    """

    def __init__(self, settings: WorldModelRewardSettings, action_ids: list[int], image_size: int) -> None:
        from models.world_model import WorldModel

        self.wm = WorldModel.from_checkpoint(
            settings.world_model_dpath,
            settings.device,
            expected_image_size=image_size,
            precision=settings.precision,
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
        if settings.unscored not in UNSCORED_FILLS:
            raise UserError(
                f"reward.unscored must be one of {', '.join(UNSCORED_FILLS)} (got '{settings.unscored}')"
            )
        self.settings = settings
        self.scored = RunningMoments.empty()  # of every reward scored so far (the fill of unscored=mean)
        self.action_ids = torch.as_tensor(action_ids, dtype=torch.long)  # local action -> vocabulary id
        self.frames: np.ndarray | None = None  # uint8 [N, C, S, S, 3], newest last
        self.actions: np.ndarray | None = None  # int64 [N, C-1] vocabulary ids between those frames
        self.counts: np.ndarray | None = None  # int64 [N]: frames of the current episode seen

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.scored.state_tensors("scored")

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "scored_count" in tensors:  # runs saved before the fill existed kept no statistics
            self.scored = RunningMoments.from_state_tensors(tensors, "scored")

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
            self.scored.update(torch.from_numpy(rewards[is_scored]))
        if self.settings.unscored == "mean" and self.scored.count > 0:
            rewards[~is_scored] = float(self.scored.mean)
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


RND_FEATURES = 64  # width of the random target's embedding of a frame
RND_LEARNING_RATE = 1e-4  # the predictor's Adam rate (RND's)
RND_SEED = 12345  # the fixed random target: the same network for every run


def rnd_network(image_size: int, head_layers: int) -> nn.Sequential:
    """Frames [N, 3, S, S] -> features [N, RND_FEATURES]: 3 convs, then `head_layers` linear layers."""
    convs = [nn.Conv2d(3, 16, 4, stride=2, padding=1), nn.LeakyReLU(),
             nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.LeakyReLU(),
             nn.Conv2d(32, 32, 3, stride=1, padding=1), nn.LeakyReLU(), nn.Flatten()]  # fmt: skip
    width = 32 * (image_size // 4) ** 2
    head: list[nn.Module] = []
    for _ in range(head_layers - 1):
        head += [nn.Linear(width, 256), nn.ReLU()]
        width = 256
    return nn.Sequential(*convs, *head, nn.Linear(width, RND_FEATURES))


class RandomNetworkDistillationReward(RewardSource):
    """RND's intrinsic reward for the frame each action leads to: the mean squared error of a predictor
    network against a fixed, randomly initialised target network's features of that frame. The predictor
    takes one Adam step on every batch of frames it scores, so frames the agent keeps reaching stop
    paying and unseen ones pay most. Frames are whitened per pixel by running statistics (clipped to
    [-5, 5]), as in the paper; the predictor is deeper than the target (the paper's asymmetry)."""

    def __init__(self, image_size: int, device: str | torch.device) -> None:
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RND_SEED)
            self.target = rnd_network(image_size, 1).to(self.device).requires_grad_(False)
        self.predictor = rnd_network(image_size, 3).to(self.device)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=RND_LEARNING_RATE)
        shape = (3, image_size, image_size)
        self.pixel_count = torch.zeros((), dtype=torch.float64)
        self.pixel_mean = torch.zeros(shape, dtype=torch.float64)
        self.pixel_var = torch.ones(shape, dtype=torch.float64)

    def whitened(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, S, S, 3] -> float [N, 3, S, S], per-pixel running statistics updated with this batch."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).double() / 255.0
        n = x.shape[0]
        total = self.pixel_count + n
        delta = x.mean(0) - self.pixel_mean
        self.pixel_var = (self.pixel_var * self.pixel_count + x.var(0, unbiased=False) * n
                          + delta.pow(2) * self.pixel_count * n / total) / total  # fmt: skip
        self.pixel_mean = self.pixel_mean + delta * n / total
        self.pixel_count = total
        whitened = (x - self.pixel_mean) / (self.pixel_var.sqrt() + 1e-4)
        return whitened.clamp(-5.0, 5.0).float().to(self.device)

    def __call__(self, actions: np.ndarray, step: VecStep) -> np.ndarray:
        frames = self.whitened(step.observations)
        with torch.no_grad():
            target = self.target(frames)  # [N, F]
        with torch.enable_grad():  # collection runs under no_grad; the predictor learns here all the same
            errors = (self.predictor(frames) - target).pow(2).mean(-1)  # [N]
            self.optimizer.zero_grad(set_to_none=True)
            errors.mean().backward()
        self.optimizer.step()
        return errors.detach().cpu().numpy().astype(np.float32)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        from common.state_files import optimizer_tensors

        tensors, meta = optimizer_tensors(self.optimizer)
        steps = {name: torch.as_tensor(value) for name, value in meta["scalars"].items()}
        return {  # copies: the predictor and its optimizer keep training in place
            **{f"predictor.{k}": v.detach().clone() for k, v in self.predictor.state_dict().items()},
            **{f"optimizer.{k}": v.detach().clone() for k, v in tensors.items()},
            **{f"optimizer_scalar.{k}": v.reshape(-1) for k, v in steps.items()},
            "pixel_count": self.pixel_count.reshape(-1), "pixel_mean": self.pixel_mean, "pixel_var": self.pixel_var,
        }  # fmt: skip

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        from common.state_files import load_optimizer_tensors, under_prefix

        self.predictor.load_state_dict(under_prefix(tensors, "predictor."))
        scalars = {k: v.reshape(()).item() for k, v in under_prefix(tensors, "optimizer_scalar.").items()}
        groups = self.optimizer.state_dict()["param_groups"]
        load_optimizer_tensors(
            self.optimizer, under_prefix(tensors, "optimizer."), {"param_groups": groups, "scalars": scalars}
        )
        self.pixel_count = tensors["pixel_count"].reshape(()).clone()
        self.pixel_mean, self.pixel_var = tensors["pixel_mean"].clone(), tensors["pixel_var"].clone()


def build_reward_source(
    reward_type: str,
    world_model: WorldModelRewardSettings | None = None,
    action_ids: list[int] | None = None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
) -> RewardSource:
    """`world_model` settings, the game's action vocabulary ids and frame size: reward_type world_model only."""
    if reward_type == "world_model":
        if world_model is None or action_ids is None or image_size is None:
            raise UserError("reward.type world_model needs a world_model_dpath (a GenieRedux-G checkpoint)")
        return WorldModelUncertaintyReward(world_model, action_ids, image_size)
    if reward_type == "rnd":
        if image_size is None:
            raise UserError("reward.type rnd needs the frame size (collection.image_size)")
        return RandomNetworkDistillationReward(image_size, device)
    sources = {"env": EnvReward, "none": NoReward}
    if reward_type not in sources:
        raise UserError(f"unknown reward.type '{reward_type}'; choose one of: {', '.join(REWARD_TYPES)}")
    return sources[reward_type]()
