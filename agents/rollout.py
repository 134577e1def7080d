"""Collection into rollouts, and the sequence batches training reads from them.

Every step stores the LSTM state the policy had *before* that frame (before an episode start zeroes
it), so any sequence cut from a rollout starts from the state the policy really had there: no burn-in,
and an episode start inside a sequence resets the state exactly where collection did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from agents.actor_critic import ActorCritic, sample_actions
from agents.reward_shaping import RewardShaping
from agents.rewards import RewardSource
from common.state_files import under_prefix
from envs.vector import VecEnv


@dataclass
class Rollout:
    frames: torch.Tensor  # uint8 [T+1, N, S, S, 3]; frame t is what action t was chosen on
    firsts: torch.Tensor  # bool [T+1, N]: frame t starts an episode
    actions: torch.Tensor  # int64 [T, N]
    rewards: torch.Tensor  # float [T, N], the reward source's, times reward.scale
    dones: torch.Tensor  # bool [T, N]: step t ended the episode (all False for non-episodic returns)
    log_probs: torch.Tensor  # float [T, N], behaviour log-probability of the action taken
    values: torch.Tensor  # float [T+1, N] at collection time
    states_h: torch.Tensor  # float [T, N, H], LSTM state before frame t
    states_c: torch.Tensor  # float [T, N, H]
    advantages: torch.Tensor | None = None  # float [T, N], GAE at collection time (ppo)
    returns: torch.Tensor | None = None  # float [T, N]


@dataclass
class SequenceBatch:
    frames: torch.Tensor  # uint8 [B, L+1, S, S, 3]: L steps and the frame after the last
    firsts: torch.Tensor  # bool [B, L+1]
    actions: torch.Tensor  # int64 [B, L]
    rewards: torch.Tensor  # float [B, L]
    dones: torch.Tensor  # bool [B, L]
    log_probs: torch.Tensor  # float [B, L]
    state: tuple[torch.Tensor, torch.Tensor]  # (h, c) each float [B, H]: before frame 0
    advantages: torch.Tensor | None  # float [B, L] (ppo)
    returns: torch.Tensor | None  # float [B, L] (ppo)


def cut_sequences(
    rollout: Rollout, env_indices: torch.Tensor, starts: torch.Tensor, length: int
) -> SequenceBatch:
    """Sequences of `length` steps from (env, start) pairs, env_indices/starts int64 [B], start <= T - length."""
    steps = starts[:, None] + torch.arange(length + 1)  # [B, L+1]
    envs = env_indices[:, None]  # [B, 1]
    inner = steps[:, :length]  # [B, L]

    def pick(tensor: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
        return None if tensor is None else tensor[index, envs]

    return SequenceBatch(
        frames=rollout.frames[steps, envs],
        firsts=rollout.firsts[steps, envs],
        actions=pick(rollout.actions, inner),
        rewards=pick(rollout.rewards, inner),
        dones=pick(rollout.dones, inner),
        log_probs=pick(rollout.log_probs, inner),
        state=(rollout.states_h[starts, env_indices], rollout.states_c[starts, env_indices]),
        advantages=pick(rollout.advantages, inner),
        returns=pick(rollout.returns, inner),
    )


@dataclass
class EpisodeTally:
    """Finished episodes of one collection: game return, training-reward return, length."""

    game_returns: list[float] = field(default_factory=list)
    reward_returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


class Collector:
    """Runs the policy in a VecEnv, `num_steps` steps per env per call; carries episodes across calls."""

    def __init__(
        self,
        vec_env: VecEnv,
        reward_source: RewardSource,
        num_steps: int,
        reward_scale: float,
        shaping: RewardShaping | None = None,
        is_episodic: bool = True,
    ) -> None:
        """shaping: what training sees of the reward (agents/reward_shaping.py); is_episodic False: the
        episode ends returns see are none (the return runs on across episodes)."""
        self.vec_env, self.reward_source = vec_env, reward_source
        self.num_steps, self.reward_scale = num_steps, reward_scale
        self.shaping = shaping or RewardShaping(vec_env.num_envs, normalize=False, center=False, gamma=1.0)
        self.is_episodic = is_episodic
        num_envs = vec_env.num_envs
        self.frames = torch.from_numpy(vec_env.reset())  # uint8 [N, S, S, 3]
        reward_source.reset(self.frames.numpy())
        self.firsts = torch.ones(num_envs, dtype=torch.bool)  # [N]
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None  # (h, c) [N, H], made on first use
        self.game_returns = torch.zeros(num_envs, dtype=torch.float64)
        self.reward_returns = torch.zeros(num_envs, dtype=torch.float64)
        self.lengths = torch.zeros(num_envs, dtype=torch.int64)

    @torch.no_grad()
    def collect(
        self, model: ActorCritic, epsilon: float, generator: torch.Generator, device: torch.device
    ) -> tuple[Rollout, EpisodeTally]:
        num_steps, num_envs = self.num_steps, self.vec_env.num_envs
        if self.state is None:
            self.state = model.initial_state(num_envs)
        frames, firsts, values = [self.frames], [self.firsts], []
        actions, rewards, dones, log_probs, states_h, states_c = [], [], [], [], [], []
        tally = EpisodeTally()
        for _ in range(num_steps):
            states_h.append(self.state[0])
            states_c.append(self.state[1])
            state = (self.state[0].to(device), self.state[1].to(device))
            logits, value, state = model.step(self.frames.to(device), state, self.firsts.to(device))
            uniforms = torch.rand(num_envs, generator=generator)  # [N]
            action, probs = sample_actions(logits.cpu(), 1.0, epsilon, uniforms)  # [N], [N, A]
            step = self.vec_env.step(action.numpy())
            reward = torch.from_numpy(self.reward_source(action.numpy(), step))  # [N]
            done = torch.from_numpy(step.dones)
            self._tally(torch.from_numpy(step.rewards), reward, done, tally)
            self.state = (state[0].float().cpu(), state[1].float().cpu())
            self.frames, self.firsts = torch.from_numpy(step.observations), done
            values.append(value.float().cpu())
            actions.append(action)
            log_probs.append(probs.gather(1, action[:, None]).squeeze(1).log())
            rewards.append(self.shaping(reward) * self.reward_scale)
            dones.append(done if self.is_episodic else torch.zeros_like(done))  # the ends returns see
            frames.append(self.frames)
            firsts.append(done)
        _, last_value, _ = model.step(
            self.frames.to(device),
            (self.state[0].to(device), self.state[1].to(device)),
            self.firsts.to(device),
        )
        values.append(last_value.float().cpu())
        rollout = Rollout(
            frames=torch.stack(frames),
            firsts=torch.stack(firsts),
            actions=torch.stack(actions),
            rewards=torch.stack(rewards),
            dones=torch.stack(dones),
            log_probs=torch.stack(log_probs),
            values=torch.stack(values),
            states_h=torch.stack(states_h),
            states_c=torch.stack(states_c),
        )
        return rollout, tally

    def _tally(
        self, game_rewards: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor, tally: EpisodeTally
    ) -> None:
        self.game_returns += game_rewards
        self.reward_returns += rewards
        self.lengths += 1
        for i in torch.nonzero(dones).flatten().tolist():
            tally.game_returns.append(float(self.game_returns[i]))
            tally.reward_returns.append(float(self.reward_returns[i]))
            tally.lengths.append(int(self.lengths[i]))
        self.game_returns[dones] = 0.0
        self.reward_returns[dones] = 0.0
        self.lengths[dones] = 0

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything but the env snapshot, as tensors (checkpointed with the trainer)."""
        tensors = {
            "frames": self.frames,
            "firsts": self.firsts,
            "game_returns": self.game_returns,
            "reward_returns": self.reward_returns,
            "lengths": self.lengths,
        }
        if self.state is not None:
            tensors |= {"state_h": self.state[0], "state_c": self.state[1]}
        tensors |= {f"shaping.{name}": tensor for name, tensor in self.shaping.state_tensors().items()}
        tensors |= {f"reward.{name}": tensor for name, tensor in self.reward_source.state_tensors().items()}
        return {name: tensor.contiguous() for name, tensor in tensors.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.frames, self.firsts = tensors["frames"], tensors["firsts"]
        self.game_returns, self.reward_returns = tensors["game_returns"], tensors["reward_returns"]
        self.lengths = tensors["lengths"]
        if "state_h" in tensors:
            self.state = (tensors["state_h"], tensors["state_c"])
        if under_prefix(tensors, "shaping."):  # a run saved before reward shaping existed has none
            self.shaping.load_state_tensors(under_prefix(tensors, "shaping."))
        self.reward_source.load_state_tensors(under_prefix(tensors, "reward."))
