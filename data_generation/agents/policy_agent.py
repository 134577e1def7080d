"""A trained actor-critic checkpoint as a recording agent (`variant=policy`): the CoinRun task agent,
and the AutoExplore agent that shares its model.

Each step it takes a uniformly random action with probability `gamma`, else samples the policy at
`temperature`, so episodes differ although the policy is fixed; all draws come from the per-episode
`rng`, and the network runs on CPU in one thread, so an episode is a function of its seed.
`repeat_prob` repeats the previous action, as for the random agent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from data_generation.agents.base import Agent
from data_generation.envs.frames import square_and_resize


class PolicyAgent(Agent):
    uses_observation = True

    def __init__(
        self,
        num_actions: int,
        checkpoint_dpath: str | None = None,
        gamma: float = 0.0,
        temperature: float = 1.0,
        repeat_prob: float = 0.0,
    ) -> None:
        from agents.checkpoint import load_policy

        self.check_options(checkpoint_dpath, gamma, temperature, repeat_prob)
        torch.set_num_threads(1)  # one worker process per core: the policy must not spread over them
        self.model, config = load_policy(checkpoint_dpath)
        if self.model.config.num_actions != num_actions:
            raise UserError(
                f"the policy at {checkpoint_dpath} has {self.model.config.num_actions} actions but this "
                f"game has {num_actions}: it was trained on {config['env']['game']}"
            )
        self.num_actions, self.image_size = int(num_actions), self.model.config.image_size
        self.gamma, self.temperature, self.repeat_prob = float(gamma), float(temperature), float(repeat_prob)
        self.reset()

    @classmethod
    def check_options(
        cls,
        checkpoint_dpath: str | None = None,
        gamma: float = 0.0,
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
        if not 0.0 <= gamma <= 1.0:
            raise UserError(f"agent.gamma (random-action probability) must be in [0, 1] (got {gamma})")
        if temperature <= 0.0:
            raise UserError(f"agent.temperature must be > 0 (got {temperature})")
        if not 0.0 <= repeat_prob < 1.0:
            raise UserError(f"agent.repeat_prob must be in [0, 1) (got {repeat_prob})")

    def reset(self) -> None:
        self._state = self.model.initial_state(1)
        self._is_first = torch.ones(1, dtype=torch.bool)
        self._previous: int | None = None

    @torch.no_grad()
    def act(self, observation: np.ndarray | None, rng: np.random.Generator) -> int:
        if observation.shape[0] != self.image_size:  # the data's frame size may differ from the agent's
            observation = square_and_resize(observation, self.image_size)
        frames = torch.tensor(observation)[None]  # [1, S, S, 3], a copy: recorder buffers are read-only views
        logits, _, self._state = self.model.step(frames, self._state, self._is_first)
        self._is_first = torch.zeros(1, dtype=torch.bool)
        # Every draw is made every step, so the rng stream (and the episode) does not depend on branches.
        is_repeat, is_random = rng.random() < self.repeat_prob, rng.random() < self.gamma
        random_action = int(rng.integers(self.num_actions))
        probs = torch.softmax(logits[0].double() / self.temperature, dim=-1).numpy()  # [A]
        sampled = int(rng.choice(self.num_actions, p=probs / probs.sum()))
        if is_repeat and self._previous is not None:
            return self._previous
        self._previous = random_action if is_random else sampled
        return self._previous
