"""`python run.py agent train|eval ...` and `python run.py auto_explore train|eval ...`: one agent stack.

Both stacks compose the same config tree (agents/config.py), each from its own config folder: the
CoinRun task agent's (agents/configs/) and AutoExplore's (auto_explore/configs/, the paper's defaults).
train: a new numbered run folder under `runs_dpath` unless run_dpath= (or common.resume_id=N) names
one; naming an existing run resumes it from `last`. eval: held-out episodes of every game of the run,
the trained policy beside the random agent (agents/evaluate.py).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from common.config import compose_config
from common.errors import UserError
from common.processes import is_launched_worker, torchrun_command

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
# command-line spellings of the agent stack before it took AutoExplore's key names
RENAMED_TRAIN_KEYS = {
    "env.num_envs": "collection.train.config.num_envs",
    "env.image_size": "collection.image_size",
    "env.frame_skip": "collection.frame_skip",
    "env.levels": "collection.levels",
    "env.max_episode_steps": "collection.max_episode_steps",
    "collection.num_steps": "collection.train.config.num_steps",
    "collection.epsilon_start": "collection.train.config.epsilon",
    "collection.epsilon_end": "collection.train.config.epsilon_end",
    "collection.epsilon_decay_epochs": "collection.train.config.epsilon_decay_epochs",
    "reward.scale": "collection.train.config.reward_scale",
    "reward.world_model_dpath": "world_model_dpath",
    "reward.n_preds": "collection.train.config.n_preds",
    "reward.context_frames": "collection.train.config.context_frames",
    **{f"training.{key}": f"training.actor_critic.{key}" for key in (
        "algorithm", "start_after", "sequence_length", "batch_size", "ppo_epochs", "steps_per_epoch",
        "replay_epochs", "learning_rate", "gamma", "lam", "clip", "entropy_coef", "value_coef",
        "normalize_advantages", "max_grad_norm")},
}  # fmt: skip
RENAMED_EVAL_KEYS = {"num_levels": "num_episodes", "num_steps": "max_episode_steps"}


def train_config(config_dpath: Path, default_name: str, args: list[str]):  # noqa: ANN201 (AgentTrainConfig)
    """The composed, checked training config, with its run folder and frame size filled in."""
    from agents.config import parse_config
    from agents.run_folder import named_run_dpath, next_run_dpath

    cfg = compose_config(config_dpath / "train", default_name, args, renamed_keys=RENAMED_TRAIN_KEYS)
    config = parse_config(cfg)
    common = config.common
    if common.resume_ckpt_id not in (None, "last"):
        raise UserError(
            f"training resumes from `last` only (got common.resume_ckpt_id={common.resume_ckpt_id})"
        )
    if config.reward.type == "world_model" and not config.world_model_dpath:
        raise UserError(
            "reward.type world_model needs world_model_dpath=<GenieRedux-G checkpoint or its run folder>"
        )
    run_dpath = named_run_dpath(config.run_dpath, config.runs_dpath, common.resume_id)
    run_dpath = run_dpath or next_run_dpath(config.runs_dpath)
    image_size = config.collection.image_size or world_model_image_size(config.world_model_dpath)
    collection = dataclasses.replace(config.collection, image_size=image_size)
    common = dataclasses.replace(common, resume_id=None)  # the run folder is named now
    return dataclasses.replace(config, run_dpath=str(run_dpath), collection=collection, common=common)


def world_model_image_size(world_model_dpath: str | None) -> int:
    """The frame size the world model was trained on (its agent plays the games at that size)."""
    from models.checkpoint import checkpoint_image_size

    if not world_model_dpath:
        raise UserError(
            "collection.image_size=null means the world model's frame size: give world_model_dpath="
        )
    try:
        return checkpoint_image_size(world_model_dpath)
    except ValueError as error:
        raise UserError(str(error)) from None


def relaunch(stack: str, num_processes: int, run_dpath: str, args: list[str]) -> int:
    """Start `num_processes` training processes (torchrun) on the run folder chosen here, so that they
    all name the same one; each then joins the DDP group (agents/trainer.py)."""
    naming = ("run_dpath=", "common.resume_id=", "+run_dpath=")
    worker_args = [arg for arg in args if not arg.startswith(naming)] + [f"run_dpath={run_dpath}"]
    command = torchrun_command(num_processes, [stack, "train", *worker_args])
    print(f"launching {num_processes} processes: {' '.join(command)}", flush=True)
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    return subprocess.call(command, env=env, cwd=os.getcwd())


def train(config_dpath: Path, default_name: str, args: list[str], stack: str = "agent") -> int:
    from agents.trainer import AgentTrainer

    config = train_config(config_dpath, default_name, args)
    if config.common.num_processes > 1 and not is_launched_worker():
        return relaunch(stack, config.common.num_processes, config.run_dpath, args)
    trainer = AgentTrainer(config, Path(config.run_dpath))
    try:
        trainer.run()
    finally:
        trainer.close()
    return 0


def evaluate(config_dpath: Path, default_name: str, args: list[str]) -> int:
    from omegaconf import OmegaConf

    from agents.config import parse_section
    from agents.evaluate import EvalConfig, run_evaluation
    from agents.trainer import reward_source_for

    cfg = compose_config(config_dpath / "eval", default_name, args, renamed_keys=RENAMED_EVAL_KEYS)
    settings = parse_section(EvalConfig, OmegaConf.to_container(cfg, resolve=True), "")
    run_evaluation(settings, lambda config: lambda names: reward_source_for(config, names, "cpu"))
    return 0


def run_stack(stack: str, config_dpath: Path, default_name: str, mode: str | None, args: list[str]) -> int:
    if mode == "train":
        return train(config_dpath, default_name, args, stack)
    if mode == "eval":
        return evaluate(config_dpath, default_name, args)
    raise UserError(f"{stack} needs a mode, train or eval (got {mode!r})")


def main(mode: str | None, args: list[str]) -> int:
    return run_stack("agent", CONFIG_DPATH, "coinrun", mode, args)
