"""Random-agent vs trained-agent data: the NeurIPS case study's comparison (its Tables 1-3 in shape).

    python experiments/agent_data.py --agent-dpath outputs/agents/coinrun/run_001   # ~50 min on 2 CPU cores (54 measured, agent included)
    python experiments/agent_data.py                       # trains the CoinRun task agent first (+~6 min)
    python experiments/agent_data.py --agent-dpath ... --genie-redux                # also GenieRedux (LAM + dynamics)
    python experiments/agent_data.py --agent-dpath ... --arms trained_agent         # one arm now (the report waits)
    python experiments/agent_data.py --agent-dpath ... --sessions 12 --test-sessions 6 \\
        --tokenizer-steps 20 --dynamics-steps 20 --num-sequences 4                  # a quick look (the CI test's size)

The paper's thesis: a world model trained on the play of an agent that plays well (and so sees more of
the game) beats one trained on random play. Every stage runs through the launcher, as a user would:
1. the CoinRun task agent (`python run.py agent train config=coinrun`), unless `--agent-dpath` names one;
2. four CoinRun stores at 32 px (`generate config=coinrun/...`): random and trained-agent training data
   (same sessions, seeds and levels: only the player differs) and the two test sets on disjoint levels,
   the paper's "basic" (random agent) and "diverse" (trained agent);
3. per training set, a tiny tokenizer and a tiny GenieRedux-G (and with `--genie-redux` a GenieRedux) at
   the budget of the CoinRun before/after run (experiments/before_after.py coinrun: 1000 + 2500 steps,
   batch 8, GenieRedux-G at the CPU recipe's learning rate unless --dynamics-lr-max/-min say otherwise);
   the training sets' chains run side by side, one torch thread each on 2 cores (`--arms` picks which
   chains run in this call: an arm can train while its partner's data or run is still being made);
4. every model evaluated on both test sets, one_go and autoregressive (PSNR, SSIM, ΔPSNR@4, and the
   copy-last-prime-frame baseline; FID where `--fid-weights` points at InceptionV3 weights).
Results: experiments/results/agent_data.{json,md} (date, commit, machine, budget, commands) and the table
in docs/agents.md between its `results:agent_data` markers. Rerunning the same command resumes: generation
and training continue where they stopped, finished evaluations are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))
from common.bootstrap import ensure_environment  # noqa: E402

if __name__ == "__main__":
    ensure_environment(__file__)

from common.results import fmt, run_stamp, write_results  # noqa: E402
from data.episode_store import store_totals  # noqa: E402
from models.checkpoint import best_model_dpath, final_model_dpath  # noqa: E402
from pipelines.overrides import DYNAMICS_LR_MAX, DYNAMICS_LR_MIN, TrainingPlan, training_overrides  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402
from training.run_log import last_validation  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "agents.md"
TRAIN_SETS = ("random", "trained_agent")  # the generate configs coinrun/<name> that write them
TEST_SETS = {"random_test": "basic (random agent)", "trained_agent_test": "diverse (trained agent)"}
METHODS = ("one_go", "autoregressive")


@dataclass(frozen=True)
class Budget:
    sessions: int = 120  # training episodes per training set (the CoinRun before/after run's)
    test_sessions: int = 40  # episodes per test set
    steps_max: int = 150  # steps per episode at most
    image_size: int = 32
    agent_epochs: int = 200  # only when the agent is trained here (2048 env steps each)
    tokenizer_steps: int = 1000
    dynamics_steps: int = 2500
    dynamics_lr_max: float = DYNAMICS_LR_MAX  # the records before the CPU recipe trained at 1e-3 -> 1e-4
    dynamics_lr_min: float = DYNAMICS_LR_MIN
    lam_steps: int = 1000  # GenieRedux's LAM + dynamics, with --genie-redux
    num_sequences: int = 48  # evaluation windows per test set
    genie_redux: bool = False
    jobs: int = 2  # training-set chains run side by side


def generate_commands(out: Path, budget: Budget, agent_dpath: Path) -> list[list[str]]:
    data = out / "datasets" / "coinrun"
    commands = []
    for name in (*TRAIN_SETS, *TEST_SETS):
        sessions = budget.test_sessions if name in TEST_SETS else budget.sessions
        agent = [f"agent.checkpoint_dpath={agent_dpath}"] if name.startswith("trained_agent") else []
        commands.append(
            [
                "generate",
                f"config=coinrun/{name}",
                f"n_sessions={sessions}",
                f"n_steps_max={budget.steps_max}",
                f"image_size={budget.image_size}",
                *agent,
                f"output_dpath={data / name}",
            ]
        )
    return commands


def model_runs(budget: Budget) -> list[str]:
    return ["genie_redux_guided", "genie_redux"] if budget.genie_redux else ["genie_redux_guided"]


def train_commands(out: Path, budget: Budget, train_set: str) -> list[list[str]]:
    """Tokenizer, then the world models on it: the CoinRun before/after run's settings (tiny, 32 px,
    batch 8, tokenizer lr 1e-3, the world models at the budget's), so a finished `before_after.py coinrun`
    run at the same rate can be the random arm."""
    arm = out / train_set

    def plan(
        run: str, steps: int, saves: int, **lr: float
    ) -> TrainingPlan:  # lr: TrainingPlan's unless given
        return TrainingPlan(out / "datasets", f"coinrun/{train_set}", arm / run, steps, image_size=budget.image_size,
                            saves=saves, **lr)  # fmt: skip

    commands = [
        [
            "genie_redux",
            "train",
            "config=tokenizer",
            *training_overrides(plan("tokenizer", budget.tokenizer_steps, 2)),
        ]
    ]
    steps = {"genie_redux_guided": budget.dynamics_steps, "genie_redux": budget.lam_steps}
    # the CPU recipe's rate was measured for GenieRedux-G; GenieRedux's LAM keeps the records' 1e-3
    lr = {
        "genie_redux_guided": {"lr_max": budget.dynamics_lr_max, "lr_min": budget.dynamics_lr_min},
        "genie_redux": {},
    }
    for kind in model_runs(budget):
        commands.append(["genie_redux", "train", f"config={kind}", f"tokenizer_dpath={arm / 'tokenizer'}",
                         *training_overrides(plan(kind, steps[kind], 5, **lr[kind]))])  # fmt: skip
    # a finished run (its final checkpoint written) is kept, so a rerun of the experiment goes on from there
    run_dpaths = [arm / "tokenizer", *(arm / kind for kind in model_runs(budget))]
    return [c for c, run in zip(commands, run_dpaths, strict=True) if not final_model_dpath(run).is_dir()]


def reuse_random_arm(out: Path, before_after_dpath: Path) -> None:
    """Link a finished `before_after.py coinrun` run in as the random arm: the same store (coinrun/random,
    same sessions, steps and seeds) and the same training commands, so nothing is trained twice."""
    links = {
        out / "datasets" / "coinrun" / "random": before_after_dpath / "datasets" / "coinrun",
        out / "random" / "tokenizer": before_after_dpath / "tokenizer",
        out / "random" / "genie_redux_guided": before_after_dpath / "genie_redux_guided",
    }
    for link, target in links.items():
        finished = target / "shards" if "datasets" in str(link) else final_model_dpath(target)
        if not finished.is_dir():
            raise SystemExit(
                f"--reuse-random-arm {before_after_dpath}: {target} is not a finished run's output"
            )
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target.resolve(), target_is_directory=True)


def eval_dpath(out: Path, train_set: str, kind: str, test_set: str, method: str) -> Path:
    return out / train_set / kind / f"eval_{test_set}_{method}"


def eval_commands(out: Path, budget: Budget, train_set: str, fid_weights: str | None) -> list[list[str]]:
    commands = []
    for kind in model_runs(budget):
        run = out / train_set / kind
        for test_set in TEST_SETS:
            for method in METHODS:
                target = eval_dpath(out, train_set, kind, test_set, method)
                if (target / "results.json").is_file():
                    continue  # finished in an earlier run of this command
                commands.append(
                    [
                        "genie_redux", "eval", f"config={kind}",
                        f"run_dpath={run}",
                        f"eval.model_dpath={best_model_dpath(run)}",
                        f"train.dataset_root_dpath={out / 'datasets'}",
                        f"train.dataset_name=coinrun/{test_set}",  # eval.dataset_* follow these
                        "eval.split=all",  # the test stores are test sets as a whole
                        f"eval.num_sequences={budget.num_sequences}",
                        f"eval.inference_method={method}",
                        *([f"eval.fid_weights_fpath={fid_weights}"] if fid_weights else []),
                        f"eval.output_dpath={target}",
                    ]
                )  # fmt: skip
    return commands


def collect(out: Path, budget: Budget) -> dict[str, Any]:
    stores = {name: store_totals(out / "datasets" / "coinrun" / name) for name in (*TRAIN_SETS, *TEST_SETS)}
    rows = []
    for train_set in TRAIN_SETS:
        for kind in model_runs(budget):
            for test_set in TEST_SETS:
                for method in METHODS:
                    figures = read_eval_figures(
                        eval_dpath(out, train_set, kind, test_set, method) / "results.json"
                    )
                    rows.append(
                        {
                            "model": kind,
                            "train_data": train_set,
                            "test_data": test_set,
                            "method": method,
                            **figures,
                        }
                    )
    validation = {
        f"{train_set}/{kind}": last_validation(out / train_set / kind / "metrics.jsonl")
        for train_set in TRAIN_SETS
        for kind in ("tokenizer", *model_runs(budget))
    }
    return {"stores": stores, "rows": rows, "validation": validation}


def results_table(rows: list[dict[str, Any]]) -> str:
    """One line per model x training data x test data: one_go and autoregressive side by side."""
    lines = [
        "| model | trained on | tested on | PSNR one_go | SSIM one_go | ΔPSNR@4 one_go | PSNR autoreg. | SSIM autoreg. | ΔPSNR@4 autoreg. | copy-last PSNR | FID autoreg. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keyed = {(r["model"], r["train_data"], r["test_data"], r["method"]): r for r in rows}
    for model, train_set, test_set in dict.fromkeys(
        (r["model"], r["train_data"], r["test_data"]) for r in rows
    ):
        one, auto = (
            keyed[(model, train_set, test_set, "one_go")],
            keyed[(model, train_set, test_set, "autoregressive")],
        )
        lines.append(
            f"| {model} | {train_set} | {TEST_SETS[test_set]} | {fmt(one.get('psnr'))} | {fmt(one.get('ssim'), 3)} | "
            f"{fmt(one.get('delta_psnr_genie'))} | {fmt(auto.get('psnr'))} | {fmt(auto.get('ssim'), 3)} | "
            f"{fmt(auto.get('delta_psnr_genie'))} | {fmt(auto.get('psnr_copy_last'))} | {fmt(auto.get('fid'))} |"
        )
    return "\n".join(lines) + "\n"


def differences(rows: list[dict[str, Any]]) -> str:
    """Trained-agent data minus random data, per model, test set and method (PSNR dB)."""
    keyed = {(r["model"], r["train_data"], r["test_data"], r["method"]): r for r in rows}
    parts = []
    for model, test_set, method in dict.fromkeys((r["model"], r["test_data"], r["method"]) for r in rows):
        trained, random = (
            keyed[(model, "trained_agent", test_set, method)],
            keyed[(model, "random", test_set, method)],
        )
        if trained.get("psnr") is not None and random.get("psnr") is not None:
            parts.append(f"{model} on {test_set} {method}: {trained['psnr'] - random['psnr']:+.2f} dB")
    return "; ".join(parts)


def markdown(report: dict[str, Any]) -> str:
    budget, stores = report["budget"], report["figures"]["stores"]
    store_lines = "\n".join(
        f"| {name} | {s['episodes']} | {s['frames']} | {s['mean_episode_frames']} |"
        for name, s in ((name, stores[name]) for name in (*TRAIN_SETS, *TEST_SETS))  # JSON keeps keys sorted
    )
    return (
        "# Random-agent vs trained-agent data (NeurIPS case study, CoinRun)\n\n"
        f"Written by `python experiments/agent_data.py {report['argv']}` on {report['date']}, commit "
        f"{report['commit']}, {report['machine']}, {report['minutes']:.1f} min (agent: {report['agent_dpath']})"
        + (
            f"; the random arm's store and models are those of the CoinRun before/after run at "
            f"{report['random_arm_reused_from']} (the same commands)"
            if report.get("random_arm_reused_from")
            else ""
        )
        + ".\n\n"
        f"Budget: {budget['sessions']} training episodes per training set and {budget['test_sessions']} per test "
        f"set, <= {budget['steps_max']} steps, {budget['image_size']} px; tiny tokenizer {budget['tokenizer_steps']} "
        f"steps, tiny GenieRedux-G {budget['dynamics_steps']} steps"
        + (f", tiny GenieRedux {budget['lam_steps']} steps" if budget["genie_redux"] else "")
        + (
            f", GenieRedux-G learning rate {budget['dynamics_lr_max']:g} -> {budget['dynamics_lr_min']:g}"
            if "dynamics_lr_max" in budget  # records from before the CPU recipe trained at 1e-3 -> 1e-4
            else ""
        )
        + f" (batch 8, 1 process); evaluation on {budget['num_sequences']} windows per test set, 2 prime + 10 "
        "generated frames, 25 MaskGIT steps, ΔPSNR@4 by Genie's definition.\n\n"
        + results_table(report["figures"]["rows"])
        + f"\nTrained-agent data minus random data, PSNR: {differences(report['figures']['rows'])}.\n\n"
        "| store | episodes | frames | mean frames per episode |\n|---|---|---|---|\n" + store_lines + "\n"
    )


def ensure_agent(out: Path, budget: Budget, agent_dpath: str | None, runner: CommandRunner) -> Path:
    if agent_dpath:
        path = Path(agent_dpath).resolve()
        if not (path / "checkpoints").is_dir():
            raise SystemExit(
                f"--agent-dpath {path} is not an agent run folder (no checkpoints/); "
                "train one with `python run.py agent train config=coinrun`"
            )
        return path
    path = out / "agent"
    runner.run(
        ["agent", "train", "config=coinrun", f"run_dpath={path}", f"common.epochs={budget.agent_epochs}"],
        "agent",
    )
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Budget()
    parser.add_argument(
        "--agent-dpath", default=None, help="the CoinRun task agent's run folder (else trained here)"
    )
    parser.add_argument("--output-dpath", default=str(REPO_DPATH / "outputs" / "agent_data"))
    parser.add_argument(
        "--fid-weights", default=None, help="InceptionV3 weights file for FID (none: FID skipped)"
    )
    parser.add_argument("--genie-redux", action="store_true", help="also train and evaluate GenieRedux (LAM)")
    parser.add_argument(
        "--reuse-random-arm",
        default=None,
        help="a finished `experiments/before_after.py coinrun` output folder (same budget): its store, "
        "tokenizer and GenieRedux-G serve as the random arm instead of training them again",
    )
    parser.add_argument("--results-name", default="agent_data", help="experiments/results/<name>.{json,md}")
    parser.add_argument(
        "--arms",
        default=",".join(TRAIN_SETS),
        help="the training sets to train and evaluate in this call; the results are written once every "
        "arm is evaluated (rerun with all arms, or --reuse-random-arm, to finish)",
    )
    for name in ("dynamics_lr_max", "dynamics_lr_min"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    for name in ("sessions", "test_sessions", "steps_max", "image_size", "agent_epochs", "tokenizer_steps",
                 "dynamics_steps", "lam_steps", "num_sequences", "jobs"):  # fmt: skip
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    fields = set(Budget.__dataclass_fields__)
    budget = Budget(**{k: v for k, v in vars(args).items() if k in fields})
    out = Path(args.output_dpath).resolve()
    out.mkdir(parents=True, exist_ok=True)
    arms = [a for a in args.arms.split(",") if a]
    if not arms or set(arms) - set(TRAIN_SETS):
        raise SystemExit(
            f"--arms {args.arms!r}: name training sets of {', '.join(TRAIN_SETS)}, comma-separated"
        )
    jobs = min(budget.jobs, len(arms))
    # threads per chain by --jobs, not by the arms of this call: one arm's call shares the cores with its partner
    runner = CommandRunner(out / "commands.log", threads_per_job=max(1, (os.cpu_count() or 1) // budget.jobs))
    start = time.perf_counter()
    agent_dpath = ensure_agent(out, budget, args.agent_dpath, runner)
    if args.reuse_random_arm:
        reuse_random_arm(out, Path(args.reuse_random_arm).resolve())
    for name, command in zip(
        (*TRAIN_SETS, *TEST_SETS), generate_commands(out, budget, agent_dpath), strict=True
    ):
        if name in arms or name in TEST_SETS:
            runner.run(command, "data")
    chains = {
        train_set: train_commands(out, budget, train_set)
        + eval_commands(out, budget, train_set, args.fid_weights)
        for train_set in arms
    }
    runner.run_chains(chains, jobs)
    waiting = [
        train_set for train_set in TRAIN_SETS if eval_commands(out, budget, train_set, args.fid_weights)
    ]
    if waiting:
        print(f"outputs: {out}; not written yet: {', '.join(waiting)} not evaluated (rerun with --arms "
              f"{','.join(waiting)}, or --reuse-random-arm for the random arm)")  # fmt: skip
        return 0
    report = {
        **run_stamp(argv, start),
        "agent_dpath": str(agent_dpath),
        "random_arm_reused_from": args.reuse_random_arm,
        "budget": asdict(budget),
        "output_dpath": str(out),
        "commands": runner.commands,
        "figures": collect(out, budget),
    }
    # copied into docs/agents.md where it has this name's markers (agent_data, agent_data_recipe); a quick
    # look under another name leaves the doc alone
    results_fpath = write_results(args.results_name, report, markdown(report), DOC_FPATH)
    print(f"outputs: {out}; results: {results_fpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
