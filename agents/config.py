"""The agent training config as typed dataclasses; every YAML of the stack mirrors this tree.

One tree for every agent the actor-critic trainer learns: the CoinRun task agent
(agents/configs/train/coinrun.yaml) and AutoExplore (auto_explore/configs/train/default.yaml) are two
configurations of it. The keys are AutoExplore's (the CVPR paper's upstream names: `common.resume_id`,
`collection.train.config.num_envs`, `training.actor_critic.*`), so nothing translates them. Each
section is built from its YAML mapping, so a key the code does not know, or one it needs and the YAML
lacks, fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from common.errors import UserError


@dataclass(frozen=True)
class CommonConfig:
    seed: int  # model init, action sampling, minibatch order, env levels
    epochs: int  # collection + training rounds in total (a resumed run continues up to this)
    device: str  # cpu | gpu (Lightning Fabric accelerator)
    num_processes: int  # >1: DDP over that many processes (GPUs, or gloo on CPU), each its own envs and seed
    precision: str  # Fabric precision: 32-true, or bf16-mixed on GPU
    num_threads: int  # torch CPU threads per process (0: leave torch's default)
    resume_id: int | None  # N: resume <runs_dpath>/run_NNN (upstream's way to name a run)
    resume_ckpt_id: str | None  # null | last: training always resumes from `last`


@dataclass(frozen=True)
class CollectionStepConfig:
    """`collection.train.config`: how each epoch collects, and the world-model reward's settings."""

    num_envs: int  # episodes stepped together
    num_steps: int  # steps per env per epoch (rollout length T)
    epsilon: float  # probability of a uniformly random action at epoch 0, decaying linearly ...
    epsilon_end: float  # ... to this ...
    epsilon_decay_epochs: int  # ... over this many epochs
    n_preds: int  # reward world_model: frames predicted after each action (1 MaskGIT step)
    context_frames: int  # reward world_model: real frames the prediction is conditioned on
    world_model_precision: str  # reward world_model: auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    reward_scale: float  # training rewards = reward * reward_scale (CoinRun's 10 for the coin -> 1)


@dataclass(frozen=True)
class CollectionTrainConfig:
    config: CollectionStepConfig


@dataclass(frozen=True)
class CollectionConfig:
    games: list[
        str
    ]  # coinrun | synthetic-cue | synthetic-block | stable-retro games: env i plays game i % len
    image_size: int | None  # frames are uint8 [S, S, 3]; null: the world model's frame size
    frame_skip: int  # emulator frames per step (CoinRun: 1, its native step)
    max_episode_steps: int | None  # cut episodes at this length (games without their own limit)
    levels: list[int] | None  # coinrun: [start, count] of the training levels (LEVEL_RANGES.agent_train)
    train: CollectionTrainConfig


@dataclass(frozen=True)
class RewardConfig:
    type: str  # env (the game's reward) | none | world_model (AutoExplore: world_model_dpath's uncertainty) | rnd
    episodic: (
        bool  # true: an episode end cuts the return (the paper's); false: it runs on (RND's intrinsic return)
    )
    normalize: bool  # divide rewards by a running std of their discounted returns (RND)
    center: bool  # subtract a running mean of the per-step reward: a longer episode earns nothing by itself
    # world_model: what a step earns before the episode has context_frames frames: zero (the paper's) | mean
    # (the running mean of the scored rewards, so a new episode neither costs nor pays)
    unscored: str


@dataclass(frozen=True)
class AgentConfig:
    size: str  # paper (~3.3 M params at 64 px) | small | tiny


@dataclass(frozen=True)
class ActorCriticTrainingConfig:
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
class TrainingConfig:
    actor_critic: ActorCriticTrainingConfig


@dataclass(frozen=True)
class CheckpointConfig:
    every: int  # save `last` every this many epochs (and at the end)
    best_window: int  # `best_reward` = best mean training-reward return over this many latest episodes


@dataclass(frozen=True)
class EvaluationConfig:
    every: int  # every this many epochs, one long episode per game (return, training-reward return, gif); 0: never
    num_steps: int  # steps of that episode at most


@dataclass(frozen=True)
class AgentTrainConfig:
    run_dpath: str | None  # the run folder; null: a new numbered one under runs_dpath
    runs_dpath: str  # where numbered run folders go (outputs/agents/coinrun, outputs/auto_explore)
    world_model_dpath: str | None  # reward world_model: the frozen GenieRedux-G checkpoint (or its run)
    common: CommonConfig
    collection: CollectionConfig
    reward: RewardConfig
    agent: AgentConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    checkpoint: CheckpointConfig

    @property
    def steps(self) -> CollectionStepConfig:
        """`collection.train.config`, the section collection and the reward read most."""
        return self.collection.train.config

    @property
    def actor_critic(self) -> ActorCriticTrainingConfig:
        return self.training.actor_critic

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_section(cls: type, values: Any, name: str) -> Any:
    """A YAML mapping -> the dataclass `cls`, its dataclass-typed fields parsed the same way."""
    if not isinstance(values, dict):
        raise UserError(f"config section '{name}' must be a mapping (got {values!r})")
    known = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(values) - known), sorted(known - set(values))
    if unknown or missing:
        raise UserError(f"config section '{name}': unknown keys {unknown}, missing keys {missing}")
    hints = typing.get_type_hints(cls)
    parsed = {
        key: parse_section(hints[key], value, f"{name}.{key}" if name else key)
        if dataclasses.is_dataclass(hints[key])
        else value
        for key, value in values.items()
    }
    return cls(**parsed)


def parse_config(cfg: DictConfig | dict) -> AgentTrainConfig:
    """A composed YAML tree -> AgentTrainConfig (every key read, none missing)."""
    values = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    config = parse_section(AgentTrainConfig, values, "")
    if not config.collection.games:
        raise UserError(
            "collection.games is empty; name at least one game, e.g. [MontezumaRevenge-Atari2600]"
        )
    return config


# keys added to the tree after runs were saved, with the value every configuration's YAML gives them
ADDED_KEYS: dict[tuple[str, ...], Any] = {
    ("common", "num_processes"): 1,
    ("collection", "train", "config", "world_model_precision"): "auto",
    ("reward", "unscored"): "zero",
}


def with_added_keys(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with every key of ADDED_KEYS it lacks set to its default (a copy where one is missing)."""
    for path, default in ADDED_KEYS.items():
        section = values
        for part in path[:-1]:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict) and path[-1] not in section:
            values = copy.deepcopy(values)
            section = values
            for part in path[:-1]:
                section = section[part]
            section[path[-1]] = default
    return values


def upgrade_saved_config(values: dict[str, Any]) -> dict[str, Any]:
    """A config.yaml of a saved run or checkpoint, in today's tree (older runs used `env:` and flat
    `training:`/`collection:` sections, and lack the keys in ADDED_KEYS)."""
    if "env" not in values:
        return with_added_keys(values)
    env, reward, collection = values["env"], values["reward"], values["collection"]
    training = values["training"]
    game = env["game"]
    common = {**values["common"], "resume_id": None, "resume_ckpt_id": None}
    steps = {"num_envs": env["num_envs"], "num_steps": collection["num_steps"],
             "epsilon": collection["epsilon_start"], "epsilon_end": collection["epsilon_end"],
             "epsilon_decay_epochs": collection["epsilon_decay_epochs"], "n_preds": reward["n_preds"],
             "context_frames": reward["context_frames"], "reward_scale": reward["scale"]}  # fmt: skip
    return with_added_keys(
        {
            "run_dpath": values.get("run_dpath"),
            "runs_dpath": values.get("runs_dpath", "outputs/agents"),
            "world_model_dpath": reward.get("world_model_dpath"),
            "common": common,
            "collection": {
                "games": [game] if isinstance(game, str) else list(game),
                "image_size": env["image_size"],
                "frame_skip": env["frame_skip"],
                "max_episode_steps": env["max_episode_steps"],
                "levels": env["levels"],
                "train": {"config": steps},
            },  # fmt: skip
            "reward": {
                "type": reward["type"],
                "episodic": True,
                "normalize": False,
                "center": False,
                "unscored": "zero",
            },
            "agent": values["agent"],
            "training": {"actor_critic": training},
            "evaluation": values["evaluation"],
            "checkpoint": values["checkpoint"],
        }
    )
