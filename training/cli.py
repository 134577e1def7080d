"""`python run.py genie_redux train|eval key=value ...`: compose a config from configs/ and run it.

With train.num_processes > 1 the command re-launches itself through `accelerate launch --multi_gpu`
(on a CPU-only machine that gives several gloo processes); `train.launch_args` passes accelerate's own
options through, e.g. for several machines.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from common.config import compose_config
from common.errors import UserError
from common.paths import ensure_writable_dpath
from common.processes import is_launched_worker, launched_rank
from training.config_checks import check_train_config

REPO_DPATH = Path(__file__).resolve().parents[1]
CONFIG_DPATH = REPO_DPATH / "configs"
DEFAULT_CONFIG = "genie_redux"
# accelerate launch asks for these when no `accelerate config` file exists; we choose them explicitly.
LAUNCH_DEFAULTS = {"--num_machines": "1", "--mixed_precision": "no", "--dynamo_backend": "no"}


def launch_command(cfg: DictConfig, args: list[str]) -> list[str]:
    launch_args = [str(a) for a in cfg.train.launch_args]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    command += ["--num_processes", str(cfg.train.num_processes)]
    for flag, value in LAUNCH_DEFAULTS.items():
        if flag not in launch_args:
            command += [flag, value]
    return [*command, *launch_args, str(REPO_DPATH / "run.py"), "genie_redux", "train", *args]


def relaunch(cfg: DictConfig, args: list[str]) -> int:
    command = launch_command(cfg, args)
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    print(f"launching {cfg.train.num_processes} processes: {' '.join(command)}", flush=True)
    return subprocess.call(command, env=env, cwd=os.getcwd())


def print_summary(summary: dict) -> None:
    print(
        f"\nrun folder: {summary['run_dpath']}  (config.yaml, command.txt, metrics.jsonl, checkpoints/, samples/)"
    )
    print(f"final model: {summary['final_model']}")
    if summary["best_model"]:
        print(f"best model: {summary['best_model']}  {json.dumps(summary['best'])}")
    final = {k: round(v, 5) for k, v in summary["metrics"].items() if not k.startswith("perf/")}
    print(f"step {summary['step']} metrics: {json.dumps(final)}")
    line = damaged_episodes_line(summary)
    if line:
        print(line)


def damaged_episodes_line(summary: dict) -> str | None:
    """The end-of-run warning that counts every damaged episode training skipped, or None if none."""
    at_open, in_reads = summary["num_unreadable_episodes"], summary["num_skipped_reads"]
    if not at_open and not in_reads:
        return None
    return (
        f"warning: training skipped damaged episodes: {at_open} unreadable when the store was opened (left "
        f"out), {in_reads} reads that met a damaged chunk (served from another episode of the same game); "
        f"chunks no read touched were not checked: `python -m data.episode_store summary {summary['store_dpath']}` "
        "decodes every episode and lists them all"
    )


def main(mode: str | None, args: list[str]) -> int:
    cfg = compose_config(CONFIG_DPATH, DEFAULT_CONFIG, args)
    if mode == "eval":
        from training.evaluation.run import run_evaluation

        return int(run_evaluation(cfg, shlex.join(["python", "run.py", "genie_redux", "eval", *args])) or 0)
    if mode != "train":
        raise UserError(f"genie_redux needs mode train or eval, got {mode}")
    check_train_config(cfg)  # before any process starts or any file is written
    if cfg.get("tokenizer_dpath") is not None or cfg.get("model_dpath") is not None:
        from training.model_setup import check_named_checkpoints

        check_named_checkpoints(cfg)
    ensure_writable_dpath(cfg.run_dpath, "run_dpath")
    if cfg.train.num_processes > 1 and not is_launched_worker():
        return relaunch(cfg, args)
    from training.trainer import Trainer

    summary = Trainer(cfg, ["run.py", "genie_redux", "train", *args]).run()
    if launched_rank() == 0:
        print_summary(summary)
    return 0
