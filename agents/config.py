"""The training config as typed dataclasses; the YAML (agents/configs/train/*.yaml) mirrors this tree.

Each section is built with `Section(**yaml_section)`, so a key the code does not know, or one it
needs and the YAML lacks, fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from common.errors import UserError


@dataclass(frozen=True)
class CommonConfig:
    seed: int  # model init, action sampling, minibatch order, env levels
    epochs: int  # collection + training rounds in total (a resumed run continues up to this)
    device: str  # cpu | gpu (Lightning Fabric accelerator)
    precision: str  # Fabric precision: 32-true, or bf16-mixed on GPU
    num_threads: int  # torch CPU threads (0: leave torch's default)


@dataclass(frozen=True)
class EnvConfig:
    game: (
        str | list[str]
    )  # coinrun | synthetic-cue | synthetic-block | stable-retro game(s): env i plays game i % len
    num_envs: int  # episodes stepped together
    frame_skip: int  # emulator frames per step (CoinRun: 1, its native step)
    image_size: int  # frames are uint8 [S, S, 3]
    levels: list[int] | None  # coinrun: [start, count] of the training levels (LEVEL_RANGES.agent_train)
    max_episode_steps: int | None  # cut episodes at this length (games without their own limit)


@dataclass(frozen=True)
class RewardConfig:
    type: str  # env (game reward) | none | world_model (AutoExplore)
    scale: float  # training rewards = reward * scale (CoinRun's 10 for the coin -> 1)
    world_model_dpath: str | None  # world_model: the frozen GenieRedux-G checkpoint
    n_preds: int  # world_model: frames predicted after each action (1 MaskGIT step)
    context_frames: int  # world_model: real frames the prediction is conditioned on


@dataclass(frozen=True)
class AgentConfig:
    size: str  # paper (~3.3 M params at 64 px) | small | tiny


@dataclass(frozen=True)
class CollectionConfig:
    num_steps: int  # steps per env per epoch (rollout length T)
    epsilon_start: float  # probability of a uniformly random action, decaying linearly ...
    epsilon_end: float  # ... to this ...
    epsilon_decay_epochs: int  # ... over this many epochs


@dataclass(frozen=True)
class TrainingConfig:
    algorithm: str  # ppo | actor_critic (agents/losses.py)
    start_after: int  # warm-up: epochs of collection only before the first gradient step
    sequence_length: int  # L: steps per training sequence (the LSTM unrolls L+1 frames)
    batch_size: int  # sequences per gradient step
    ppo_epochs: int  # ppo: passes over each rollout
    steps_per_epoch: int  # actor_critic: gradient steps per epoch, sequences sampled from the replay
    replay_epochs: int  # actor_critic: rollouts kept in the replay (1 = on-policy)
    learning_rate: float
    gamma: float  # discount
    lam: float  # lambda of the lambda-returns / GAE
    clip: float  # ppo ratio clip
    entropy_coef: float
    value_coef: float
    normalize_advantages: bool
    max_grad_norm: float  # 0 disables clipping


@dataclass(frozen=True)
class CheckpointConfig:
    every: int  # save `last` every this many epochs (and at the end)
    best_window: int  # `best_reward` = best mean game return over this many latest episodes


@dataclass(frozen=True)
class EvaluationConfig:
    every: int  # every this many epochs, one long episode per game (return, training-reward return, gif); 0: never
    num_steps: int  # steps of that episode at most


@dataclass(frozen=True)
class AgentTrainConfig:
    run_dpath: str | None
    common: CommonConfig
    env: EnvConfig
    reward: RewardConfig
    agent: AgentConfig
    collection: CollectionConfig
    training: TrainingConfig
    checkpoint: CheckpointConfig
    evaluation: EvaluationConfig

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _section(cls: type, values: Any, name: str) -> Any:
    if not isinstance(values, dict):
        raise UserError(f"config section '{name}' must be a mapping (got {values!r})")
    known = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(values) - known), sorted(known - set(values))
    if unknown or missing:
        raise UserError(f"config section '{name}': unknown keys {unknown}, missing keys {missing}")
    return cls(**values)


def parse_config(cfg: DictConfig | dict) -> AgentTrainConfig:
    """A composed YAML tree -> AgentTrainConfig (every key read, none missing)."""
    values = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    sections = {f.name: f.type for f in fields(AgentTrainConfig) if f.name != "run_dpath"}
    classes = {
        "common": CommonConfig, "env": EnvConfig, "reward": RewardConfig, "agent": AgentConfig,
        "collection": CollectionConfig, "training": TrainingConfig, "checkpoint": CheckpointConfig,
        "evaluation": EvaluationConfig,
    }  # fmt: skip
    unknown = sorted(set(values) - set(sections) - {"run_dpath"})
    if unknown:
        raise UserError(f"unknown top-level config keys {unknown}")
    parsed = {name: _section(classes[name], values.get(name), name) for name in sections}
    return AgentTrainConfig(run_dpath=values.get("run_dpath"), **parsed)
