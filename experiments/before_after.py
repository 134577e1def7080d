"""Run a documented flow on a checkout of this project and keep its figures: before/after comparisons.

    python experiments/before_after.py demo --label after
    python experiments/before_after.py coinrun --label after
    python experiments/before_after.py demo --label before --repo-dpath /tmp/genie-redux-70d9fab   # an older checkout

Flows:
- `demo`: `python run.py demo` as the README runs it (bundled Atari platformers, tiny models, 32 px).
- `coinrun`: the longer CoinRun run recorded in docs/models.md: 120 random-agent sessions x <= 150 steps at
  32 px, tiny tokenizer 1000 steps, tiny GenieRedux-G 2500 steps x batch 8, evaluation on 48 test windows
  (autoregressive, 25 MaskGIT steps). GenieRedux-G learns at the CPU recipe's rate (1e-2 -> 1e-3) unless
  `--dynamics-lr-max 1e-3 --dynamics-lr-min 1e-4` asks for the older records' rate (coinrun_before/_after).
Every command runs with the checkout's own `run.py` (so an older checkout runs its own code); its
results.json files and the tokenizer's last validation are collected into
experiments/results/<flow>_<label>.json and .md of *this* checkout, with date, commit of the checkout
that ran and machine. Outputs go to `--output-dpath` (default outputs/before_after/<flow>_<label>).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))
from common.bootstrap import ensure_environment  # noqa: E402

if __name__ == "__main__":
    ensure_environment(__file__)

from common.results import run_stamp, write_results  # noqa: E402
from models.checkpoint import best_model_dpath  # noqa: E402  (older checkouts keep the same layout)
from pipelines.overrides import DYNAMICS_LR_MAX, DYNAMICS_LR_MIN, TrainingPlan, training_overrides  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402
from training.run_log import last_validation  # noqa: E402


def demo_commands(out: Path, repo_dpath: Path, dynamics_lr: tuple[float, float]) -> list[list[str]]:
    del dynamics_lr  # the demo trains at its own config's rates
    return [["demo", f"output_dpath={out}"]]


def path_key(repo_dpath: Path, name: str) -> str:
    """`name`_dpath, or `name`_fpath on checkouts from before the key rename (the old spelling)."""
    base = (repo_dpath / "configs" / "_base.yaml").read_text()
    return f"{name}_fpath" if "tokenizer_fpath" in base else f"{name}_dpath"


def coinrun_commands(out: Path, repo_dpath: Path, dynamics_lr: tuple[float, float]) -> list[list[str]]:
    """120 random-agent sessions x <= 150 steps at 32 px; tiny tokenizer 1000 steps at lr 1e-3, tiny
    GenieRedux-G 2500 steps x batch 8 at `dynamics_lr` (peak, end): the single-process settings any
    checkout of this project accepts."""
    data = out / "datasets"

    def plan(run: str, steps: int, **lr: float) -> TrainingPlan:  # lr: TrainingPlan's rates unless given
        return TrainingPlan(data, "coinrun", out / run, steps, saves=steps // 500, **lr)

    return [
        ["generate", "config=coinrun/random", "n_sessions=120", "n_steps_max=150", "image_size=32",
         f"output_dpath={data / 'coinrun'}"],
        ["genie_redux", "train", "config=tokenizer", *training_overrides(plan("tokenizer", 1000))],
        ["genie_redux", "train", "config=genie_redux_guided",
         f"{path_key(repo_dpath, 'tokenizer')}={best_model_dpath(out / 'tokenizer')}",
         *training_overrides(plan("genie_redux_guided", 2500, lr_max=dynamics_lr[0], lr_min=dynamics_lr[1]))],
        ["genie_redux", "eval", "config=genie_redux_guided", f"run_dpath={out / 'genie_redux_guided'}",
         f"train.dataset_root_dpath={data}", "train.dataset_name=coinrun",
         f"eval.{path_key(repo_dpath, 'model')}={best_model_dpath(out / 'genie_redux_guided')}",
         "eval.num_sequences=48", "eval.inference_method=autoregressive"],
    ]  # fmt: skip


FLOWS = {"demo": demo_commands, "coinrun": coinrun_commands}


def checkout_runner(repo_dpath: Path, log_fpath: Path) -> CommandRunner:
    """Commands with the checkout's own run.py (so an older checkout runs its own code) and its own
    .venv; a checkout without one runs in this environment (same pyproject.toml assumed), its run.py
    putting its own folder first on sys.path."""
    python = repo_dpath / ".venv" / "bin" / "python"
    return CommandRunner(log_fpath, repo_dpath=repo_dpath, python=str(python) if python.exists() else None,
                         cwd=repo_dpath)  # fmt: skip


def collect(flow: str, out: Path) -> dict[str, Any]:
    dynamics = out / "genie_redux_guided"
    figures = {
        "tokenizer_validation": last_validation(out / "tokenizer" / "metrics.jsonl"),
        "dynamics_validation": last_validation(dynamics / "metrics.jsonl"),
        "replication": read_eval_figures(dynamics / "eval" / "results.json"),
    }
    if flow == "demo":
        figures["control"] = read_eval_figures(dynamics / "control" / "results.json")
    return figures


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# `{report['flow']}` — {report['label']}",
        "",
        f"Written by `python experiments/before_after.py {report['argv']}` on {report['date']}; the flow ran on "
        f"commit {report['commit']} ({report['repo_dpath']}), {report['machine']}, {report['minutes']:.1f} min"
        + (
            f"; GenieRedux-G learning rate {report['dynamics_lr'][0]:g} -> {report['dynamics_lr'][1]:g}."
            if report.get("dynamics_lr")
            else "."
        ),
        "",
        "| part | figure | value |",
        "|---|---|---|",
    ]
    for part, values in report["figures"].items():
        for key, value in values.items():
            shown = f"{value:.3f}" if isinstance(value, float) else json.dumps(value)
            lines.append(f"| {part} | {key} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("flow", choices=sorted(FLOWS))
    parser.add_argument("--label", required=True, help="e.g. before / after: names the results file")
    parser.add_argument(
        "--repo-dpath", default=str(REPO_DPATH), help="the checkout whose run.py runs the flow"
    )
    parser.add_argument("--output-dpath", default=None)
    parser.add_argument(
        "--dynamics-lr-max",
        type=float,
        default=DYNAMICS_LR_MAX,
        help="coinrun: GenieRedux-G's peak learning rate",
    )
    parser.add_argument(
        "--dynamics-lr-min", type=float, default=DYNAMICS_LR_MIN, help="coinrun: ... and its rate at the end"
    )
    args = parser.parse_args(argv)
    lr_max, lr_min = args.dynamics_lr_max, args.dynamics_lr_min
    repo_dpath = Path(args.repo_dpath).resolve()
    if not (repo_dpath / "run.py").is_file():
        parser.error(f"--repo-dpath {repo_dpath} has no run.py; point it at a checkout of this project")
    out = Path(
        args.output_dpath or REPO_DPATH / "outputs" / "before_after" / f"{args.flow}_{args.label}"
    ).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runner = checkout_runner(repo_dpath, out / "commands.log")
    for command in FLOWS[args.flow](out, repo_dpath, (lr_max, lr_min)):
        runner.run(command, "flow")
    report = {
        "flow": args.flow,
        "label": args.label,
        **run_stamp(argv, start, repo_dpath),
        "repo_dpath": str(repo_dpath),
        "dynamics_lr": [lr_max, lr_min] if args.flow == "coinrun" else None,
        "commands": runner.commands,
        "figures": collect(args.flow, out),
    }
    report = json.loads(json.dumps(report, sort_keys=True))  # rendered as stored: the record regenerates
    write_results(f"{args.flow}_{args.label}", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
