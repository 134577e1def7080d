"""`python run.py auto_explore train world_model_dpath=... collection.games=[...]` and
`python run.py auto_explore eval run_dpath=... checkpoint=best_reward`.

AutoExplore is a configuration of the one agent stack (agents/cli.py): the same trainer, evaluation and
run folders, with the paper's defaults from auto_explore/configs/ (reward.type world_model: the frozen
world model's uncertainty). eval: one long episode per game with the chosen checkpoint, its game
return, intrinsic return and a gif.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"


def main(mode: str | None, args: list[str]) -> int:
    from agents.cli import run_stack

    return run_stack("auto_explore", CONFIG_DPATH, "default", mode, args)
