"""`python run.py agent train config=coinrun key=value ...` and `python run.py agent eval run_dpath=... ...`.

train: a new numbered run folder under outputs/agents/<game>/ unless run_dpath= names one; naming an
existing run folder resumes it. eval: mean return on unseen CoinRun levels, trained agent beside the
random agent, recorded in benchmarks/RESULTS.md and docs/agents.md (agents/evaluate.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.config import compose_config
from common.errors import UserError

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
RUNS_DPATH = Path("outputs") / "agents"


def next_run_dpath(game: str) -> Path:
    """outputs/agents/<game>/run_NNN with NNN one past the highest existing number."""
    parent = Path(os.getcwd()) / RUNS_DPATH / game
    numbers = [int(p.name[4:]) for p in parent.glob("run_[0-9][0-9][0-9]*") if p.name[4:].isdigit()]
    return parent / f"run_{max(numbers, default=0) + 1:03d}"


def train(args: list[str]) -> int:
    from agents.config import parse_config
    from agents.trainer import AgentTrainer

    config = parse_config(compose_config(CONFIG_DPATH / "train", "coinrun", args))
    run_dpath = Path(config.run_dpath) if config.run_dpath else next_run_dpath(config.env.game)
    trainer = AgentTrainer(config, run_dpath)
    try:
        trainer.run()
    finally:
        trainer.close()
    return 0


def evaluate(args: list[str]) -> int:
    from agents.evaluate import EvalConfig, run_evaluation

    cfg = compose_config(CONFIG_DPATH / "eval", "coinrun", args)
    values = {key: cfg[key] for key in cfg}
    try:
        config = EvalConfig(**values)
    except TypeError as error:
        raise UserError(f"bad eval config: {error}") from None
    run_evaluation(config)
    return 0


def main(mode: str | None, args: list[str]) -> int:
    if mode == "train":
        return train(args)
    if mode == "eval":
        return evaluate(args)
    raise UserError(f"agent needs a mode, train or eval (got {mode!r})")
