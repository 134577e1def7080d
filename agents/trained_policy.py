"""A trained actor-critic checkpoint as a policy (`generate variant=policy`): the CoinRun task agent,
and the AutoExplore agent that shares its model.

Each step it takes a uniformly random action with probability `random_action_prob` (the config's
`agent.gamma`, the paper's name), else samples the policy at `temperature`, so episodes differ although
the policy is fixed; all draws come from the per-episode `rng`, and the network runs on CPU in one
thread, so an episode is a function of its seed. `repeat_prob` repeats the previous action, as for the
random agent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agents.actor_critic import ActorCritic, sample_actions
from agents.checkpoint import load_policy, trained_games
from agents.policy import Policy
from common.errors import UserError
from envs.frames import square_and_resize


class TrainedPolicy(Policy):
    uses_observation = True

    def __init__(
        self,
        model: ActorCritic,
        random_action_prob: float = 0.0,
        temperature: float = 1.0,
        repeat_prob: float = 0.0,
    ) -> None:
        self.check_sampling(random_action_prob, temperature, repeat_prob)
        self.model = model
        self.device = next(model.parameters()).device
        self.num_actions, self.image_size = model.config.num_actions, model.config.image_size
        self.random_action_prob, self.temperature = float(random_action_prob), float(temperature)
        self.repeat_prob = float(repeat_prob)
        self.reset()

    @staticmethod
    def check_sampling(random_action_prob: float, temperature: float, repeat_prob: float) -> None:
        if not 0.0 <= random_action_prob <= 1.0:
            raise UserError(
                f"agent.gamma (random-action probability) must be in [0, 1] (got {random_action_prob})"
            )
        if temperature <= 0.0:
            raise UserError(f"agent.temperature must be > 0 (got {temperature})")
        if not 0.0 <= repeat_prob < 1.0:
            raise UserError(f"agent.repeat_prob must be in [0, 1) (got {repeat_prob})")

    @classmethod
    def check_options(
        cls,
        checkpoint_dpath: str | None = None,
        random_action_prob: float = 0.0,
        temperature: float = 1.0,
        repeat_prob: float = 0.0,
    ) -> None:
        if not checkpoint_dpath:
            raise UserError("variant=policy needs agent.checkpoint_dpath=<agent run folder or checkpoint>")
        if not Path(checkpoint_dpath).exists():
            raise UserError(
                f"agent.checkpoint_dpath={checkpoint_dpath} does not exist; pass an agent run folder "
                "(python run.py agent train ...) or one of its checkpoints/<name> folders"
            )
        cls.check_sampling(random_action_prob, temperature, repeat_prob)

    @classmethod
    def from_options(
        cls,
        num_actions: int,
        checkpoint_dpath: str | None = None,
        random_action_prob: float = 0.0,
        temperature: float = 1.0,
        repeat_prob: float = 0.0,
    ) -> TrainedPolicy:
        """The policy of an agent run folder (its best_reward, else last) or of a checkpoints/<name> folder,
        on CPU in one thread (recording runs one worker process per core)."""
        cls.check_options(checkpoint_dpath, random_action_prob, temperature, repeat_prob)
        torch.set_num_threads(1)  # one worker process per core: the policy must not spread over them
        model, config = load_policy(checkpoint_dpath)
        if model.config.num_actions != num_actions:
            raise UserError(
                f"the policy at {checkpoint_dpath} has {model.config.num_actions} actions but this "
                f"game has {num_actions}: it was trained on {trained_games(config)}"
            )
        return cls(model, random_action_prob, temperature, repeat_prob)

    def reset(self) -> None:
        self._state = self.model.initial_state(1, self.device)
        self._is_first = torch.ones(1, dtype=torch.bool, device=self.device)
        self._previous: int | None = None

    @torch.no_grad()
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        if observation.shape[0] != self.image_size:  # the data's frame size may differ from the agent's
            observation = square_and_resize(observation, self.image_size)
        frames = torch.tensor(observation, device=self.device)[
            None
        ]  # [1, S, S, 3], a copy: recorder buffers are read-only
        logits, _, self._state = self.model.step(frames, self._state, self._is_first)
        self._is_first = torch.zeros(1, dtype=torch.bool, device=self.device)
        # Both draws are made every step, so the rng stream (and the episode) does not depend on branches.
        is_repeat, uniform = rng.random() < self.repeat_prob, rng.random()
        if is_repeat and self._previous is not None:
            return self._previous
        actions, _ = sample_actions(
            logits.cpu(), self.temperature, self.random_action_prob, torch.tensor([uniform])
        )
        self._previous = int(actions[0])
        return self._previous
