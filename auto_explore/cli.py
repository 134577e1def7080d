"""`python run.py auto_explore train world_model_dpath=... collection.games=[...]` and
`python run.py auto_explore eval run_dpath=... checkpoint=best_reward`.

train: a new numbered run folder under outputs/auto_explore/ unless run_dpath= (or common.resume_id=N)
names one; naming an existing run resumes it from `last`. The agents trainer runs it
(agents/trainer.py): the AutoExplore config only maps the paper's key names onto it.
eval: one long episode per game with the chosen checkpoint, its return, intrinsic return and a gif.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.config import compose_config
from common.errors import UserError

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"


def train(args: list[str]) -> int:
    from agents.trainer import AgentTrainer
    from auto_explore.config import next_run_dpath, run_dpath_of, to_agent_config

    cfg = compose_config(CONFIG_DPATH / "train", "default", args)
    run_dpath = run_dpath_of(cfg.run_dpath, cfg.common.resume_id) or next_run_dpath()
    if cfg.common.resume_id is not None and not run_dpath.is_dir():
        raise UserError(f"common.resume_id={cfg.common.resume_id}: no run folder {run_dpath}")
    trainer = AgentTrainer(to_agent_config(cfg, run_dpath), run_dpath)
    try:
        trainer.run()
    finally:
        trainer.close()
    return 0


def evaluate(args: list[str]) -> int:
    import dataclasses

    import torch

    from agents.checkpoint import CHECKPOINT_NAMES, load_policy, resolve_checkpoint
    from agents.config import parse_config
    from agents.long_episodes import play_long_episodes
    from agents.trainer import reward_source_for
    from auto_explore.config import run_dpath_of

    cfg = compose_config(CONFIG_DPATH / "eval", "default", args)
    run_dpath = run_dpath_of(cfg.run_dpath, cfg.common.resume_id)
    if run_dpath is None:
        raise UserError("auto_explore eval needs run_dpath=<run folder> (or common.resume_id=N)")
    name = cfg.common.resume_ckpt_id or cfg.checkpoint
    if name not in CHECKPOINT_NAMES:
        raise UserError(f"checkpoint must be one of {CHECKPOINT_NAMES} (got '{name}')")
    checkpoint_dpath = resolve_checkpoint(run_dpath / "checkpoints", name)
    if checkpoint_dpath is None:
        raise UserError(f"{run_dpath} has no checkpoint '{name}' (train longer, or choose checkpoint=last)")
    model, config_values = load_policy(checkpoint_dpath)  # on CPU, eval mode
    config = parse_config(config_values)
    if cfg.num_steps is not None:
        evaluation = dataclasses.replace(config.evaluation, num_steps=cfg.num_steps)
        config = dataclasses.replace(config, evaluation=evaluation)
    action_names = tuple(json.loads((checkpoint_dpath / "trainer_state.json").read_text())["action_names"])
    rows = play_long_episodes(model, config, lambda: reward_source_for(config, action_names, "cpu"),
                              torch.device("cpu"), run_dpath / "eval", name)  # fmt: skip
    (run_dpath / f"eval_{name}.json").write_text(json.dumps({"checkpoint": name, "episodes": rows}, indent=1))
    for row in rows:
        print(f"{row['game']}: {row['steps']} steps, return {row['return']:.1f}, "
              f"intrinsic return {row['reward_return']:.3f}, gif {row['gif']}")  # fmt: skip
    return 0


def main(mode: str | None, args: list[str]) -> int:
    if mode == "train":
        return train(args)
    if mode == "eval":
        return evaluate(args)
    raise UserError(f"auto_explore needs a mode, train or eval (got {mode!r})")
