"""A trained actor-critic checkpoint as a recording driver (`variant=policy`): the CoinRun task agent,
and the AutoExplore agent that shares its model.

Each step it takes a uniformly random action with probability `random_action_prob` (the config's
`agent.gamma`, the paper's name), else samples the policy at `temperature`, so episodes differ although
the policy is fixed; all draws come from the per-episode `rng`, and the network runs on CPU in one
thread, so an episode is a function of its seed. `repeat_prob` repeats the previous action, as for the
random agent.
"""

from __future__ import annotations

import numpy as np
import torch

from common.errors import UserError
from data_generation.drivers.base import Driver
from envs.frames import square_and_resize


class PolicyDriver(Driver):
    uses_observation = True

    def __init__(
        self,
        num_actions: int,
        checkpoint_dpath: str | None = None,
        random_action_prob: float = 0.0,
        temperature: float = 1.0,
        repeat_prob: float = 0.0,
    ) -> None:
        from agents.checkpoint import load_policy

        if not checkpoint_dpath:
            raise UserError("variant=policy needs agent.checkpoint_dpath=<agent run folder or checkpoint>")
        if not 0.0 <= random_action_prob <= 1.0:
            raise UserError(
                f"agent.gamma (random-action probability) must be in [0, 1] (got {random_action_prob})"
            )
        if temperature <= 0.0:
            raise UserError(f"agent.temperature must be > 0 (got {temperature})")
        if not 0.0 <= repeat_prob < 1.0:
            raise UserError(f"agent.repeat_prob must be in [0, 1) (got {repeat_prob})")
        torch.set_num_threads(1)  # one worker process per core: the policy must not spread over them
        self.model, config = load_policy(checkpoint_dpath)
        if self.model.config.num_actions != num_actions:
            raise UserError(
                f"the policy at {checkpoint_dpath} has {self.model.config.num_actions} actions but this "
                f"game has {num_actions}: it was trained on {config['env']['game']}"
            )
        self.num_actions, self.image_size = int(num_actions), self.model.config.image_size
        self.random_action_prob, self.temperature = float(random_action_prob), float(temperature)
        self.repeat_prob = float(repeat_prob)
        self.reset()

    def reset(self) -> None:
        self._state = self.model.initial_state(1)
        self._is_first = torch.ones(1, dtype=torch.bool)
        self._previous: int | None = None

    @torch.no_grad()
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        from agents.actor_critic import sample_actions

        if observation.shape[0] != self.image_size:  # the data's frame size may differ from the agent's
            observation = square_and_resize(observation, self.image_size)
        frames = torch.tensor(observation)[None]  # [1, S, S, 3], a copy: recorder buffers are read-only views
        logits, _, self._state = self.model.step(frames, self._state, self._is_first)
        self._is_first = torch.zeros(1, dtype=torch.bool)
        # Both draws are made every step, so the rng stream (and the episode) does not depend on branches.
        is_repeat, uniform = rng.random() < self.repeat_prob, rng.random()
        if is_repeat and self._previous is not None:
            return self._previous
        actions, _ = sample_actions(logits, self.temperature, self.random_action_prob, torch.tensor([uniform]))
        self._previous = int(actions[0])
        return self._previous
