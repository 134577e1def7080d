"""Which demo recipe makes its world model answer the keys: `python run.py demo` arms x seeds, cross-evaluated.

    python experiments/demo_recipe.py --arms default,held_keys --seeds 0,1      # ~40 min on 2 CPU cores
    python experiments/demo_recipe.py --quick --arms default,held_keys --seeds 0  # the machinery, ~2 min

Each arm is a set of `run.py demo` overrides (its data, its seed, its schedule); each (arm, seed) runs the
whole demo in its own folder, two at a time with one torch thread each, so every arm gets the same CPU.
An arm that changes the recorded play also changes the demo's test windows, so every model is evaluated
twice more, on its own test windows and on the first arm's (the reference data), each one_go (the papers'
protocol, what the demo prints) and autoregressive (frame by frame from clean context, how the player and
AutoExplore sample): a gain on the model's own windows that the reference windows do not show is easier
windows, not a better model. The demo's own play checks (keys vs seed noise, 500-frame drift) are read
from its evaluation. Results: experiments/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
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

from omegaconf import DictConfig  # noqa: E402

from common.config import compose_config  # noqa: E402
from common.results import fmt, markdown_table, mean, run_stamp, write_results  # noqa: E402
from pipelines.demo import CONFIG_DPATH, evaluation_args  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402
from training.run_log import last_validation  # noqa: E402

METHODS = ("one_go", "autoregressive")


@dataclass(frozen=True)
class Arm:
    demo: tuple[str, ...] = ()  # `run.py demo` overrides
    note: str = ""


ARMS = {
    "default": Arm(note="the demo as it ships"),
    "held_keys": Arm(
        demo=("generate.repeat_prob=0.75",),
        note="the random agent holds its key: repeats the previous action with probability 0.75 (4 steps = "
        "16 emulator frames on average, where a person holds an arrow; the default redraws every step)",
    ),
    "held_keys_0.9": Arm(
        demo=("generate.repeat_prob=0.9",),
        note="the random agent repeats the previous action with probability 0.9 (10 steps on average)",
    ),
    "tdce_skip": Arm(
        demo=("++dynamics.model.tdce=true", "++dynamics.model.token_input_skip=true"),
        note="TDCE and token input skip in the dynamics model (the CVPR paper's ablation; fidelity_batch8's "
        "win on CoinRun at equal minutes)",
    ),
    "no_tdce_skip": Arm(
        demo=("++dynamics.model.tdce=false", "++dynamics.model.token_input_skip=false"),
        note="the dynamics model without TDCE and token input skip, whatever the preset's default",
    ),
}

# seconds of training instead of the demo's minutes, a small store and few windows: the machinery only
QUICK = (
    "generate.n_sessions=8", "generate.n_steps_max=20", "tokenizer.num_train_steps=4",
    "dynamics.num_train_steps=4", "eval.num_sequences=2", "eval.inference_steps=2", "eval.response_frames=2",
    "eval.drift_frames=4",
)  # fmt: skip


def run_dname(arm: str, seed: int) -> str:
    return f"{arm}_seed{seed}"


def demo_command(out: Path, arm: str, seed: int, quick: bool) -> list[str]:
    return ["demo", f"output_dpath={out / run_dname(arm, seed)}", f"seed={seed}", *ARMS[arm].demo,
            *(QUICK if quick else ())]  # fmt: skip


def eval_dpath(run: Path, windows: str, method: str) -> Path:
    return run / "genie_redux_guided" / f"eval_{windows}_{method}"


def eval_command(demo_cfg: DictConfig, run: Path, data_run: Path, windows: str, method: str) -> list[str]:
    """The run's world model on `data_run`'s test windows, evaluated as the demo evaluates (without its play
    checks), by `method`."""
    return ["genie_redux", "eval", *evaluation_args(demo_cfg, run / "genie_redux_guided", data_run / "datasets"),
            f"eval.inference_method={method}", f"eval.output_dpath={eval_dpath(run, windows, method)}"]  # fmt: skip


def collect_run(run: Path) -> dict[str, Any]:
    demo_eval = run / "genie_redux_guided" / "eval" / "results.json"
    row: dict[str, Any] = {
        "tokenizer": last_validation(run / "tokenizer" / "metrics.jsonl"),
        "dynamics": last_validation(run / "genie_redux_guided" / "metrics.jsonl"),
        "evaluations": {
            f"{windows}_{method}": read_eval_figures(eval_dpath(run, windows, method) / "results.json")
            for windows in ("own", "reference")
            for method in METHODS
        },
    }
    play = json.loads(demo_eval.read_text()).get("play", {}) if demo_eval.is_file() else {}
    response = play.get("action_response") or {}
    row["keys_ratio"] = response.get("ratio")
    drift = play.get("drift", {})
    row["drift_end_psnr"] = {g: f["nearest_real_psnr"][-1] for g, f in drift.items()}
    row["drift_end_unseen"] = {g: f["unseen_code_share"][-1] for g, f in drift.items()}
    return row


def summary_rows(runs: dict[str, dict[str, Any]], arms: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    rows = []
    for arm in arms:
        per_seed = [runs[run_dname(arm, s)] for s in seeds]
        row: dict[str, Any] = {"arm": arm, "seeds": len(seeds)}
        row["tokenizer PSNR"] = fmt(mean([r["tokenizer"].get("val/recon_psnr") for r in per_seed]))
        row["token acc."] = fmt(
            mean([r["dynamics"].get("val/next_frame_token_accuracy") for r in per_seed]), 3
        )
        for key in (f"{w}_{m}" for w in ("own", "reference") for m in METHODS):
            figures = [r["evaluations"][key] for r in per_seed]
            row[f"{key} PSNR"] = fmt(mean([f.get("psnr") for f in figures]))
            row[f"{key} copy"] = fmt(mean([f.get("psnr_copy_last") for f in figures]))
            row[f"{key} ΔPSNR@4"] = " / ".join(fmt(f.get("delta_psnr_genie")) for f in figures)
        row["keys vs seed noise"] = " / ".join(fmt(r["keys_ratio"]) for r in per_seed)
        row["drift end PSNR"] = fmt(mean([mean(list(r["drift_end_psnr"].values())) for r in per_seed]))
        row["drift end unseen"] = fmt(mean([mean(list(r["drift_end_unseen"].values())) for r in per_seed]), 3)
        rows.append(row)
    return rows


def markdown(report: dict[str, Any]) -> str:
    stamp = report["stamp"]
    lines = [
        f"# {report['name']}: which demo recipe makes the world model answer the keys",
        "",
        f"`experiments/demo_recipe.py {stamp['argv']}` — {stamp['date']}, commit {stamp['commit']}, "
        f"{stamp['machine']}, {stamp['minutes']:.0f} min in all. Each (arm, seed) is a whole `python run.py demo` "
        "(its own data, tokenizer and GenieRedux-G), two side by side with one torch thread each. `own`: the "
        "model's own test windows; `reference`: the first arm's (seed "
        f"{report['seeds'][0]}). ΔPSNR@4 (Genie's definition) per seed; the rest are means over seeds. "
        "`keys vs seed noise`: the demo's play check (frames under different held keys vs another sampling "
        "seed, 2 MaskGIT steps, temperature 0.5); `drift end`: frame 500 of random-key play, PSNR to the "
        "nearest real frame and share of codes no real frame uses, mean over games.",
        "",
    ]
    columns = list(report["summary"][0])
    head = ["arm", "seeds", "tokenizer PSNR", "token acc."]
    for group in (("own", "one_go"), ("own", "autoregressive"), ("reference", "one_go"),
                  ("reference", "autoregressive")):  # fmt: skip
        key = "_".join(group)
        lines += [f"**{group[0]} windows, {group[1]}**", ""]
        lines.append(
            markdown_table(report["summary"], head + [c for c in columns if c.startswith(key + " ")])
        )
    lines += ["**play checks**", ""]
    lines.append(
        markdown_table(report["summary"], ["arm", "keys vs seed noise", "drift end PSNR", "drift end unseen"])
    )
    lines += ["Arms:", ""]
    lines += [f"- `{name}`: {arm['note']} ({' '.join(arm['demo']) or 'no overrides'})"
              for name, arm in report["arms"].items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_experiment(arms: list[str], seeds: list[int], out: Path, name: str, quick: bool = False,
                   results_dpath: Path | None = None, argv: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    start = time.perf_counter()
    runner = CommandRunner(out / "logs" / "demo_recipe.log", threads_per_job=1)
    reference = out / run_dname(arms[0], seeds[0])
    demo_cfg = compose_config(CONFIG_DPATH, "demo", list(QUICK) if quick else [])  # its evaluation settings
    chains = {}
    for arm in arms:
        for seed in seeds:
            run = out / run_dname(arm, seed)
            chains[run_dname(arm, seed)] = [demo_command(out, arm, seed, quick)] + [
                eval_command(demo_cfg, run, run, "own", method) for method in METHODS
            ]
    runner.run_chains(chains, jobs=2)
    # the reference windows exist once the first arm's first run has recorded them (the stage above)
    runner.run_chains(
        {
            f"{run_dname(a, s)}_reference": [
                eval_command(demo_cfg, out / run_dname(a, s), reference, "reference", m) for m in METHODS
            ]
            for a in arms
            for s in seeds
        },
        jobs=2,
    )
    runs = {run_dname(a, s): collect_run(out / run_dname(a, s)) for a in arms for s in seeds}
    report = {
        "name": name,
        "stamp": run_stamp(argv if argv is not None else sys.argv[1:], start),
        "seeds": seeds,
        "quick": quick,
        "arms": {a: asdict(ARMS[a]) for a in arms},
        "summary": summary_rows(runs, arms, seeds),
        "runs": runs,
        "commands": runner.commands,
    }
    write_results(
        name, report, markdown(report), **({"results_dpath": results_dpath} if results_dpath else {})
    )
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arms", default="default,held_keys", help=f"of {', '.join(ARMS)}; the first is the reference"
    )
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--quick", action="store_true", help="tiny stores and seconds of training")
    parser.add_argument(
        "--output-dpath", type=Path, default=REPO_DPATH / "outputs" / "experiments" / "demo_recipe"
    )
    parser.add_argument(
        "--name", default="demo_recipe", help="results file name (experiments/results/<name>)"
    )
    parser.add_argument("--results-dpath", type=Path, default=None, help="where the results go (tests)")
    args = parser.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
    run_experiment(arms, [int(s) for s in args.seeds.split(",")], args.output_dpath, args.name, args.quick,
                   args.results_dpath, argv)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
