"""The AutoExplore config (auto_explore/configs/train, the paper's key names) -> the agents trainer's
AgentTrainConfig, and the run folder a command means (run_dpath, or upstream's common.resume_id)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from agents.config import AgentTrainConfig, parse_config
from common.errors import UserError

RUNS_DPATH = Path("outputs") / "auto_explore"


def run_dpath_of(run_dpath: str | None, resume_id: int | None) -> Path | None:
    """The run folder named by run_dpath or by resume_id (outputs/auto_explore/run_NNN); None: neither."""
    if run_dpath and resume_id is not None:
        raise UserError("give run_dpath or common.resume_id, not both")
    if resume_id is not None:
        return Path.cwd() / RUNS_DPATH / f"run_{int(resume_id):03d}"
    return Path(run_dpath) if run_dpath else None


def next_run_dpath() -> Path:
    """outputs/auto_explore/run_NNN, one past the highest existing number."""
    parent = Path.cwd() / RUNS_DPATH
    numbers = [int(p.name[4:]) for p in parent.glob("run_[0-9][0-9][0-9]*") if p.name[4:].isdigit()]
    return parent / f"run_{max(numbers, default=0) + 1:03d}"


def world_model_image_size(world_model_dpath: str) -> int:
    """The frame size the world model was trained on (AutoExplore plays the games at that size)."""
    from models.world_model import WorldModel

    try:
        return int(WorldModel.from_checkpoint(world_model_dpath).tokenizer.config.image_size)
    except ValueError as error:
        raise UserError(str(error)) from None


def to_agent_config(cfg: DictConfig, run_dpath: Path) -> AgentTrainConfig:
    """Every key of the AutoExplore tree read once, onto the agents trainer's sections."""
    common, collection = cfg.common, cfg.collection
    config = collection.train.config
    actor_critic = cfg.training.actor_critic
    if common.resume_ckpt_id not in (None, "last"):
        raise UserError(
            f"training resumes from `last` only (got common.resume_ckpt_id={common.resume_ckpt_id})"
        )
    if not cfg.world_model_dpath:
        raise UserError(
            "auto_explore train needs world_model_dpath=<GenieRedux-G checkpoint or its run folder>"
        )
    if not collection.games:
        raise UserError(
            "collection.games is empty; name at least one game, e.g. [MontezumaRevenge-Atari2600]"
        )
    image_size = collection.image_size or world_model_image_size(cfg.world_model_dpath)
    values = {
        "run_dpath": str(run_dpath),
        "common": {"seed": common.seed, "epochs": common.epochs, "device": common.device,
                   "precision": common.precision, "num_threads": common.num_threads},
        "env": {"game": list(collection.games), "num_envs": config.num_envs, "frame_skip": collection.frame_skip,
                "image_size": image_size, "levels": None, "max_episode_steps": collection.max_episode_steps},
        "reward": {"type": "world_model", "scale": config.reward_scale, "world_model_dpath": cfg.world_model_dpath,
                   "n_preds": config.n_preds, "context_frames": config.context_frames},
        "agent": {"size": cfg.agent.size},
        "collection": {"num_steps": config.num_steps, "epsilon_start": config.epsilon,
                       "epsilon_end": config.epsilon_end, "epsilon_decay_epochs": config.epsilon_decay_epochs},
        "training": {"algorithm": actor_critic.algorithm, "start_after": actor_critic.start_after,
                     "sequence_length": actor_critic.sequence_length, "batch_size": actor_critic.batch_size,
                     "ppo_epochs": actor_critic.ppo_epochs, "steps_per_epoch": actor_critic.steps_per_epoch,
                     "replay_epochs": actor_critic.replay_epochs, "learning_rate": actor_critic.learning_rate,
                     "gamma": actor_critic.gamma, "lam": actor_critic.lam, "clip": actor_critic.clip,
                     "entropy_coef": actor_critic.entropy_coef, "value_coef": actor_critic.value_coef,
                     "normalize_advantages": actor_critic.normalize_advantages,
                     "max_grad_norm": actor_critic.max_grad_norm},
        "checkpoint": {"every": cfg.checkpoint.every, "best_window": cfg.checkpoint.best_window},
        "evaluation": {"every": cfg.evaluation.every, "num_steps": cfg.evaluation.num_steps},
    }  # fmt: skip
    return parse_config(OmegaConf.create(values))
