"""Run a documented flow on a checkout of this project and keep its figures: before/after comparisons.

    python experiments/before_after.py demo --label after
    python experiments/before_after.py coinrun --label after
    python experiments/before_after.py demo --label before --repo-dpath /tmp/genie-redux-70d9fab   # an older checkout

Flows:
- `demo`: `python run.py demo` as the README runs it (bundled Atari platformers, tiny models, 32 px).
- `coinrun`: the longer CoinRun run recorded in docs/models.md: 120 random-agent sessions x <= 150 steps at
  32 px, tiny tokenizer 1000 steps, tiny GenieRedux-G 2500 steps x batch 8, evaluation on 48 test windows
  (autoregressive, 25 MaskGIT steps).
Every command runs with the checkout's own `run.py` (so an older checkout runs its own code); its
results.json files and the tokenizer's last validation are collected into
experiments/results/<flow>_<label>.json and .md of *this* checkout, with date, commit of the checkout
that ran and machine. Outputs go to `--output-dpath` (default outputs/before_after/<flow>_<label>).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
RESULTS_DPATH = REPO_DPATH / "experiments" / "results"
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))

from models.checkpoint import best_model_dpath  # noqa: E402  (older checkouts keep the same layout)


def demo_commands(out: Path, repo_dpath: Path) -> list[list[str]]:
    return [["demo", f"output_dpath={out}"]]


def coinrun_training_args(dataset_root: Path, dataset_name: str) -> list[str]:
    """The CoinRun runs' training settings (also experiments/agent_data.py's): tiny, 32 px, batch 8."""
    return [
        "model=tiny",
        "+model_overrides.image_size=32",
        f"train.dataset_root_dpath={dataset_root}",
        f"train.dataset_name={dataset_name}",
        "train.batch_size=8",
        "train.num_processes=1",  # the same single-process run on any checkout (newer configs encode GPU batches)
        "train.grad_accum=1",
        "train.grad_clip=1.0",
        "train.num_workers=1",
        "train.optimizer.lr_max=1e-3",
        "train.optimizer.lr_min=1e-4",
    ]


def path_key(repo_dpath: Path, name: str) -> str:
    """`name`_dpath, or `name`_fpath on checkouts from before the rename (issue 10; the old spelling)."""
    base = (repo_dpath / "configs" / "_base.yaml").read_text()
    return f"{name}_fpath" if "tokenizer_fpath" in base else f"{name}_dpath"


def coinrun_commands(out: Path, repo_dpath: Path) -> list[list[str]]:
    data = out / "datasets"
    common = coinrun_training_args(data, "coinrun")
    return [
        [
            "generate",
            "config=coinrun/random",
            "n_sessions=120",
            "n_steps_max=150",
            "image_size=32",
            f"output_dpath={data / 'coinrun'}",
        ],  # fmt: skip
        [
            "genie_redux",
            "train",
            "config=tokenizer",
            *common,
            "train.num_train_steps=1000",
            "train.schedule.warmup_steps=100",
            "train.checkpoint.every_steps=500",
            "train.validation.every_steps=500",
            f"run_dpath={out / 'tokenizer'}",
        ],  # fmt: skip
        [
            "genie_redux",
            "train",
            "config=genie_redux_guided",
            *common,
            f"{path_key(repo_dpath, 'tokenizer')}={best_model_dpath(out / 'tokenizer')}",
            "train.num_train_steps=2500",
            "train.schedule.warmup_steps=250",
            "train.checkpoint.every_steps=500",
            "train.validation.every_steps=500",
            f"run_dpath={out / 'genie_redux_guided'}",
        ],  # fmt: skip
        [
            "genie_redux",
            "eval",
            "config=genie_redux_guided",
            f"run_dpath={out / 'genie_redux_guided'}",
            f"train.dataset_root_dpath={data}",
            "train.dataset_name=coinrun",
            f"eval.{path_key(repo_dpath, 'model')}={best_model_dpath(out / 'genie_redux_guided')}",
            "eval.num_sequences=48",
            "eval.inference_method=autoregressive",
        ],  # fmt: skip
    ]


FLOWS = {"demo": demo_commands, "coinrun": coinrun_commands}


def run_commands(repo_dpath: Path, commands: list[list[str]], log_fpath: Path) -> float:
    python = repo_dpath / ".venv" / "bin" / "python"
    env = dict(os.environ)
    if not python.exists():
        # a checkout without its own environment runs in this one (same pyproject.toml assumed); its run.py
        # puts its own folder first on sys.path, so its own code runs
        python, env["GENIE_REDUX_NO_BOOTSTRAP"] = Path(sys.executable), "1"
    start = time.perf_counter()
    with open(log_fpath, "a") as log:
        for args in commands:
            print(f"$ python run.py {' '.join(args)}", flush=True)
            log.write(f"$ python run.py {' '.join(args)}\n")
            log.flush()
            code = subprocess.call(
                [str(python), str(repo_dpath / "run.py"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=repo_dpath,
                env=env,
            )
            if code != 0:
                raise SystemExit(f"`python run.py {' '.join(args)}` failed ({code}); see {log_fpath}")
    return time.perf_counter() - start


def last_validation(metrics_fpath: Path) -> dict[str, float]:
    """The last `val/...` record of a run's metrics.jsonl."""
    records = [json.loads(line) for line in metrics_fpath.read_text().splitlines() if line.strip()]
    for record in reversed(records):
        values = {k: v for k, v in record.items() if k.startswith("val/")}
        if values:
            return {"step": record["step"], **values}
    return {}


def eval_figures(results_fpath: Path) -> dict[str, Any]:
    if not results_fpath.is_file():
        return {}
    result = json.loads(results_fpath.read_text())
    return {**result["metrics"], "psnr_per_frame": [round(v, 3) for v in result.get("psnr_per_frame", [])]}


def collect(flow: str, out: Path) -> dict[str, Any]:
    dynamics = out / "genie_redux_guided"
    figures = {
        "tokenizer_validation": last_validation(out / "tokenizer" / "metrics.jsonl"),
        "dynamics_validation": last_validation(dynamics / "metrics.jsonl"),
        "replication": eval_figures(dynamics / "eval" / "results.json"),
    }
    if flow == "demo":
        figures["control"] = eval_figures(dynamics / "control" / "results.json")
    return figures


def git_commit(repo_dpath: Path) -> str:
    run = lambda *args: subprocess.run(["git", "-C", str(repo_dpath), *args], capture_output=True, text=True)  # noqa: E731
    commit = run("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    return commit + ("+dirty" if run("status", "--porcelain", "--untracked-files=no").stdout.strip() else "")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# `{report['flow']}` — {report['label']}",
        "",
        f"Written by `python experiments/before_after.py {report['argv']}` on {report['date']}; the flow ran on "
        f"commit {report['commit']} ({report['repo_dpath']}), {report['machine']}, {report['minutes']:.1f} min.",
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
    args = parser.parse_args(argv)
    repo_dpath = Path(args.repo_dpath).resolve()
    if not (repo_dpath / "run.py").is_file():
        parser.error(f"--repo-dpath {repo_dpath} has no run.py; point it at a checkout of this project")
    out = Path(
        args.output_dpath or REPO_DPATH / "outputs" / "before_after" / f"{args.flow}_{args.label}"
    ).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seconds = run_commands(repo_dpath, FLOWS[args.flow](out, repo_dpath), out / "commands.log")
    report = {
        "flow": args.flow,
        "label": args.label,
        "argv": " ".join(argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(repo_dpath),
        "repo_dpath": str(repo_dpath),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "minutes": seconds / 60,
        "commands": [" ".join(c) for c in FLOWS[args.flow](out, repo_dpath)],
        "figures": collect(args.flow, out),
    }
    RESULTS_DPATH.mkdir(parents=True, exist_ok=True)
    name = f"{args.flow}_{args.label}"
    (RESULTS_DPATH / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS_DPATH / f"{name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
