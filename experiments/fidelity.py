"""Fidelity per CPU-minute: how good a world model a fixed training time buys, recipe by recipe.

    python experiments/fidelity.py                                   # both datasets, every arm, 2 seeds
    python experiments/fidelity.py --datasets coinrun --arms baseline,prepend --seeds 0,1
    python experiments/fidelity.py --tokenizer-min 10 --dynamics-min 15     # the budgets per run
    python experiments/fidelity.py --quick                           # a look at the machinery (the CI size)

Fixed data, recorded once through the launcher: CoinRun random-agent episodes (training levels) with a
test set on disjoint levels, and the demo's four bundled Atari platformers with their test sessions; both
at 32 px. Per (dataset, seed) a tiny tokenizer trains for `--tokenizer-min` minutes of training steps
(`train.time_budget_min`: the step count is fixed from the speed of the first steps, the schedule ends
there); every arm's tokenizer overrides get their own. Each arm then trains a GenieRedux-G on its frozen
tokenizer for `--dynamics-min` minutes, and is evaluated on the test windows, one_go and autoregressive,
at the arm's sampling temperature: PSNR/SSIM, the per-frame PSNR curve, ΔPSNR@4 (Genie's definition and
upstream's variant), and the copy-the-last-prime-frame baseline. Learning curves (validation over the
run's training seconds: tokenizer recon PSNR, next-frame token accuracy and PSNR) come from each run's
metrics.jsonl. The tokenizers train first, then every arm's GenieRedux-G with its evaluations (and with
`--upstream-dpath` upstream's models, benchmarks/upstream_fidelity.py), `--jobs` runs side by side, one torch
thread each.

Results: experiments/results/<name>.{json,md} (date, commit, machine, budgets, every command) and the
summary table in docs/models.md between its `results:<name>` markers. Rerunning resumes: generation and
training continue where they stopped, finished evaluations are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))
from common.bootstrap import ensure_environment  # noqa: E402

if __name__ == "__main__":
    ensure_environment(__file__)

from common.results import fmt, mean, run_stamp, write_results  # noqa: E402
from models.checkpoint import final_model_dpath  # noqa: E402
from pipelines.overrides import TrainingPlan, training_overrides  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402
from training.run_log import read_metrics  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "models.md"
METHODS = ("one_go", "autoregressive")


@dataclass(frozen=True)
class Dataset:
    """A training store and its test windows, both recorded by `generate`."""

    name: str
    train_args: tuple[str, ...]  # generate overrides of the training store
    test_args: tuple[str, ...] | None  # generate overrides of a separate test store; None: its test split
    dataset_name: str  # the store's name under datasets/


DATASETS = {
    "coinrun": Dataset(
        "coinrun",
        ("config=coinrun/random", "n_sessions=400", "n_steps_max=300"),
        ("config=coinrun/random_test", "n_sessions=40", "n_steps_max=300"),
        "coinrun/random",
    ),
    # the demo's games (pipelines/configs/demo.yaml), twice its episodes so its test split has some of each
    "demo": Dataset(
        "demo", ("config=retro_act/pretrain", "n_sessions=16", "n_steps_max=300"), None, "retro_act/pretrain"
    ),
}


@dataclass(frozen=True)
class Arm:
    """One recipe: overrides of the tokenizer run, of the GenieRedux-G run, and the sampling temperature."""

    tokenizer: tuple[str, ...] = ()
    dynamics: tuple[str, ...] = ()
    temperature: float = 1.0
    inference_steps: int | None = None  # MaskGIT steps per generated frame in evaluation; None: the budget's
    anneal_temperature: bool = False  # the token temperature falls to 0 over the MaskGIT steps (upstream's)
    note: str = ""


LR_1E2 = ("train.optimizer.lr_max=0.01", "train.optimizer.lr_min=0.001")  # the CPU recipe's dynamics rate
ARMS = {
    "baseline": Arm(
        note="the tiny preset's recipe at the run's learning rate: batch 8, additive actions, half clean context"
    ),
    "greedy": Arm(temperature=0.0, note="baseline, sampled greedily (temperature 0)"),
    "prepend": Arm(
        dynamics=("++model_overrides.dynamics.action_conditioning=prepend",),
        note="one action token per frame instead of adding the action to every token",
    ),
    "masked_context": Arm(
        dynamics=("++model_overrides.dynamics.clean_context_fraction=0.0",),
        note="every sample trained with masked context only (Genie's and upstream's regime, what one_go sees)",
    ),
    "clean_context": Arm(
        dynamics=("++model_overrides.dynamics.clean_context_fraction=1.0",),
        note="every sample trained with clean context frames (what frame-by-frame generation sees)",
    ),
    "lr3e-3": Arm(
        dynamics=("train.optimizer.lr_max=0.003", "train.optimizer.lr_min=0.0003"),
        note="dynamics learning rate 3e-3 -> 3e-4 (the block-game record's)",
    ),
    "codebook256": Arm(
        tokenizer=("++model_overrides.codebook_size=256",),
        note="a tokenizer of 256 codes instead of 1024 (an easier, cheaper head for the dynamics)",
    ),
    "bf16": Arm(
        tokenizer=("train.mixed_precision=bf16",),
        dynamics=("train.mixed_precision=bf16",),
        note="both trained under bf16 autocast (this CPU has AVX512-BF16: 1.3-1.5x the steps per minute)",
    ),
    "frames12": Arm(
        dynamics=("train.num_frames=12", "++model_overrides.num_frames=12"),
        note="dynamics trained on 12-frame windows instead of 16 (the evaluation's 2 + 10)",
    ),
    "wide": Arm(dynamics=("++model_overrides.dynamics.dim=128",), note="dynamics width 128 instead of 64"),
    "deep": Arm(dynamics=("++model_overrides.dynamics.num_blocks=4",), note="4 dynamics blocks instead of 2"),
    "tdce_skip": Arm(
        dynamics=("++model_overrides.dynamics.tdce=true", "++model_overrides.dynamics.token_input_skip=true"),
        note="TDCE and token input skip (the CVPR paper's ablation)",
    ),
    "no_tdce_skip": Arm(
        dynamics=(
            "++model_overrides.dynamics.tdce=false",
            "++model_overrides.dynamics.token_input_skip=false",
        ),
        note="without TDCE and token input skip (the tiny preset's recipe before they joined it)",
    ),
    "context_noise": Arm(
        dynamics=("++model_overrides.dynamics.context_noise=0.3",),
        note="random codes in up to 30 % of the visible tokens in training",
    ),
    "batch16": Arm(
        dynamics=("train.batch_size=16",), note="batch 16 instead of 8, at the run's learning rate"
    ),
    "lr5e-3": Arm(
        dynamics=("train.optimizer.lr_max=0.005", "train.optimizer.lr_min=0.0005"),
        note="dynamics learning rate 5e-3 -> 5e-4",
    ),
    "lr1e-2": Arm(
        dynamics=LR_1E2,
        note="dynamics learning rate 1e-2 -> 1e-3",
    ),
    "lr1e-2_bf16": Arm(
        dynamics=(*LR_1E2, "train.mixed_precision=bf16"),
        note="lr1e-2 with GenieRedux-G trained under bf16 autocast (the tokenizer: the lr1e-2 arm's, fp32)",
    ),
    # sampling only (evaluated on the lr1e-2 arm's runs): what one_go's lead for upstream's sampler owes to
    # sampling; upstream's sampler ends on argmax tokens and spends its 25 steps on all 10 frames at once
    "lr1e-2_greedy": Arm(
        dynamics=LR_1E2,
        temperature=0.0,
        note="the lr1e-2 runs sampled greedily (temperature 0)",
    ),
    "lr1e-2_steps100": Arm(
        dynamics=LR_1E2,
        inference_steps=100,
        note="the lr1e-2 runs sampled with 100 MaskGIT steps (one_go: 10 per generated frame, not 2.5)",
    ),
    "lr1e-2_anneal": Arm(
        dynamics=LR_1E2,
        anneal_temperature=True,
        note="the lr1e-2 runs sampled with the token temperature annealed from 1 to 0 over the steps (upstream's)",
    ),
}


@dataclass(frozen=True)
class Budget:
    tokenizer_min: float = 10.0  # minutes of tokenizer training steps per (dataset, seed)
    dynamics_min: float = 10.0  # minutes of GenieRedux-G training steps per arm
    batch_size: int = 8
    lr_max: float = 1e-3  # GenieRedux-G's peak learning rate
    lr_min: float = 1e-4
    tokenizer_lr_max: float = 1e-3
    tokenizer_lr_min: float = 1e-4
    image_size: int = 32
    num_sequences: int = 48  # test windows per evaluation
    inference_steps: int = 25  # MaskGIT steps per generated frame
    jobs: int = 2  # (dataset, seed) chains side by side, one torch thread each
    quick: bool = False  # the machinery at a glance: tiny stores, seconds of training
    datasets: tuple[str, ...] = ("coinrun", "demo")
    arms: tuple[str, ...] = tuple(ARMS)
    seeds: tuple[int, ...] = (0, 1)
    extra_eval: tuple[str, ...] = field(default_factory=tuple)
    upstream_dpath: str | None = (
        None  # an upstream GenieRedux checkout: its models trained and scored beside ours
    )


QUICK_STORE = ("n_sessions=20", "n_steps_max=40")  # 20 sessions: the 90/5/5 split has a test session
# the machinery at a glance (the CI test's size): seconds of training at 16 px, 4 test windows, 2 MaskGIT steps
QUICK = {
    "tokenizer_min": 0.05,
    "dynamics_min": 0.05,
    "num_sequences": 4,
    "inference_steps": 2,
    "image_size": 16,
}


def store_dpath(out: Path, dataset: Dataset, test: bool = False) -> Path:
    return out / "datasets" / (dataset.dataset_name + ("_test" if test else ""))


def generate_commands(out: Path, dataset: Dataset, budget: Budget) -> list[list[str]]:
    commands = []
    for test, args in ((False, dataset.train_args), (True, dataset.test_args)):
        if args is None:
            continue
        sized = {a.split("=")[0]: a for a in (*args, *(QUICK_STORE if budget.quick else ()))}.values()
        commands.append(["generate", *sized, f"image_size={budget.image_size}", "n_workers=2",
                         f"output_dpath={store_dpath(out, dataset, test)}"])  # fmt: skip
    return commands


def run_dname(dataset: str, seed: int, part: str) -> str:
    return f"{dataset}/seed{seed}/{part}"


def tokenizer_key(arm: Arm) -> str:
    """Arms with the same tokenizer overrides share one tokenizer run."""
    return (
        "tokenizer"
        if not arm.tokenizer
        else "tokenizer_" + "_".join(item.split(".")[-1].replace("=", "") for item in arm.tokenizer)
    )


def plan(out: Path, dataset: Dataset, seed: int, budget: Budget, minutes: float, run: Path,
         extra: tuple[str, ...], lr: tuple[float, float]) -> list[str]:  # fmt: skip
    training = TrainingPlan(out / "datasets", dataset.dataset_name, run, num_train_steps=1_000_000,
                            batch_size=budget.batch_size, lr_max=lr[0], lr_min=lr[1],
                            image_size=budget.image_size)  # fmt: skip
    overrides = [o for o in training_overrides(training) if not o.startswith("train.schedule.warmup_steps")]
    fixed = [f"train.seed={seed}", f"train.time_budget_min={minutes}", "train.schedule.warmup_steps=50",
             "train.validation.num_batches=4", "train.validation.batch_size=4"]  # fmt: skip
    quick = ["train.budget.calibration_steps=2", "train.validation.num_batches=1"] if budget.quick else []
    return [*overrides, *fixed, *quick, *extra]  # the arm's overrides last: they win


def eval_dpath(run: Path, method: str, arm: Arm) -> Path:
    steps = f"_steps{arm.inference_steps}" if arm.inference_steps is not None else ""  # None: the budget's
    anneal = "_anneal" if arm.anneal_temperature else ""
    return run / f"eval_{method}_t{arm.temperature:g}{steps}{anneal}"


def minutes(budget: Budget) -> tuple[float, float]:
    """(tokenizer, dynamics) minutes of training steps per run."""
    return budget.tokenizer_min, budget.dynamics_min


def tokenizer_chains(out: Path, dataset: Dataset, seed: int, budget: Budget) -> dict[str, list[list[str]]]:
    """One chain per tokenizer the arms of (dataset, seed) need: arms with the same overrides share one."""
    chains = {}
    for name in budget.arms:
        arm = ARMS[name]
        key = tokenizer_key(arm)
        run = out / "runs" / run_dname(dataset.name, seed, key)
        chains.setdefault(f"{dataset.name}_seed{seed}_{key}", [["genie_redux", "train", "config=tokenizer",
                          *plan(out, dataset, seed, budget, minutes(budget)[0], run, arm.tokenizer,
                                (budget.tokenizer_lr_max, budget.tokenizer_lr_min))]])  # fmt: skip
    return chains


def dynamics_chains(out: Path, dataset: Dataset, seed: int, budget: Budget) -> dict[str, list[list[str]]]:
    """One chain per trained arm of (dataset, seed): GenieRedux-G on its frozen tokenizer, then its
    evaluations; an arm that differs from an earlier one only in its sampling is evaluated on that one's run."""
    test_store = store_dpath(out, dataset, test=dataset.test_args is not None)
    chains: dict[str, list[list[str]]] = {}
    trained: dict[tuple, tuple[str, Path]] = {}
    for name in budget.arms:
        arm = ARMS[name]
        key = (tokenizer_key(arm), arm.dynamics)
        if key not in trained:
            run = out / "runs" / run_dname(dataset.name, seed, f"dynamics_{name}")
            trained[key] = (f"{dataset.name}_seed{seed}_{name}", run)
            chains[trained[key][0]] = [["genie_redux", "train", "config=genie_redux_guided",
                                        f"tokenizer_dpath={out / 'runs' / run_dname(dataset.name, seed, key[0])}",
                                        *plan(out, dataset, seed, budget, minutes(budget)[1], run, arm.dynamics,
                                              (budget.lr_max, budget.lr_min)),
                                        f"train.validation.maskgit_steps={budget.inference_steps}"]]  # fmt: skip
        chain_name, run = trained[key]
        for method in METHODS:
            target = eval_dpath(run, method, arm)
            if (target / "results.json").is_file():
                continue  # evaluated by an earlier run of this script
            chains.setdefault(chain_name, []).append(["genie_redux", "eval", "config=genie_redux_guided", f"run_dpath={run}",
                                       f"eval.model_dpath={final_model_dpath(run)}",
                                       f"eval.dataset_root_dpath={test_store.parent.parent}",
                                       f"eval.dataset_name={test_store.parent.name}/{test_store.name}",
                                       f"eval.split={'all' if dataset.test_args is not None else 'test'}",
                                       f"eval.num_sequences={budget.num_sequences}",
                                       f"eval.inference_steps={arm.inference_steps or budget.inference_steps}",
                                       f"eval.inference_method={method}", f"eval.temperature={arm.temperature}",
                                       f"eval.anneal_temperature={str(arm.anneal_temperature).lower()}",
                                       "eval.num_workers=0", "eval.num_gifs=2",
                                       f"eval.output_dpath={target}",
                                       *budget.extra_eval])  # fmt: skip
    return chains


def tokenizer_of(command: list[str]) -> Path:
    """The tokenizer run a GenieRedux-G training command freezes."""
    return Path(next(a.split("=", 1)[1] for a in command if a.startswith("tokenizer_dpath=")))


def is_trained(command: list[str]) -> bool:
    """A training command whose run finished (its final model is there)."""
    return final_model_dpath(
        Path(next(a.split("=", 1)[1] for a in command if a.startswith("run_dpath=")))
    ).is_dir()


def upstream_command(out: Path, dataset: Dataset, seed: int, budget: Budget) -> list[str]:
    """Upstream's tokenizer and GenieRedux-G for the same minutes, on the same windows, scored by our
    protocol (benchmarks/upstream_fidelity.py)."""
    test = dataset.test_args is not None
    minutes_tok, minutes_dyn = minutes(budget)
    return ["-m", "benchmarks.upstream_fidelity", "--upstream-dpath", str(budget.upstream_dpath),
            "--store", str(store_dpath(out, dataset)), "--test-store", str(store_dpath(out, dataset, test)),
            "--test-split", "all" if test else "test", "--seed", str(seed),
            "--run-dpath", str(out / "runs" / run_dname(dataset.name, seed, "upstream")),
            "--tokenizer-min", str(minutes_tok), "--dynamics-min", str(minutes_dyn),
            "--num-sequences", str(budget.num_sequences),
            "--inference-steps", str(budget.inference_steps), "--batch-size", str(budget.batch_size),
            "--lr-max", str(budget.lr_max), "--lr-min", str(budget.lr_min),
            "--tokenizer-lr-max", str(budget.tokenizer_lr_max), "--tokenizer-lr-min", str(budget.tokenizer_lr_min), "--image-size", str(budget.image_size)]  # fmt: skip


def training_curve(run: Path) -> list[dict[str, float]]:
    """Validation points of a run over its training seconds (the time budget's clock)."""
    records = read_metrics(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    seconds, curve = 0.0, []
    for record in records:
        seconds = record.get("perf/train_seconds", seconds)
        values = {k.removeprefix("val/"): v for k, v in record.items() if k.startswith("val/")}
        if values:
            curve.append({"step": record["step"], "train_min": round(seconds / 60, 2), **values})
    return curve


def collect(out: Path, budget: Budget) -> dict[str, Any]:
    """Every (dataset, seed, arm): the tokenizer's and the dynamics' curves and the evaluations."""
    rows = {}
    for dataset in budget.datasets:
        for seed in budget.seeds:
            for name in budget.arms:
                arm = ARMS[name]
                tok = out / "runs" / run_dname(dataset, seed, tokenizer_key(arm))
                run = out / "runs" / run_dname(dataset, seed, f"dynamics_{name}")
                source = run if (run / "metrics.jsonl").is_file() else next(
                    (out / "runs" / run_dname(dataset, seed, f"dynamics_{other}") for other in budget.arms
                     if ARMS[other].dynamics == arm.dynamics and ARMS[other].tokenizer == arm.tokenizer
                     and (out / "runs" / run_dname(dataset, seed, f"dynamics_{other}") / "metrics.jsonl").is_file()),
                    run,
                )  # fmt: skip
                rows[f"{dataset}/{name}/seed{seed}"] = {
                    "dataset": dataset, "arm": name, "seed": seed,
                    "tokenizer_curve": training_curve(tok), "dynamics_curve": training_curve(source),
                    **{method: read_eval_figures(eval_dpath(source, method, arm) / "results.json")
                       for method in METHODS},
                }  # fmt: skip
            if budget.upstream_dpath:
                rows[f"{dataset}/upstream/seed{seed}"] = upstream_row(out, dataset, seed)
    return rows


def upstream_row(out: Path, dataset: str, seed: int) -> dict[str, Any]:
    """The upstream arm of one (dataset, seed): its training figures and its one-go evaluation."""
    run = out / "runs" / run_dname(dataset, seed, "upstream")
    training_fpath = run / "upstream_training.json"
    training = json.loads(training_fpath.read_text()) if training_fpath.is_file() else {}
    dynamics = training.get("genie_redux_guided", {})
    return {
        "dataset": dataset, "arm": "upstream", "seed": seed, "tokenizer_curve": [],
        "dynamics_curve": [{"step": dynamics["steps"]}] if dynamics else [],
        "upstream_training": {k: {kk: vv for kk, vv in v.items() if kk != "losses"} if isinstance(v, dict) else v
                              for k, v in training.items()},
        "one_go": read_eval_figures(eval_dpath(run, "one_go", Arm()) / "results.json"), "autoregressive": {},
    }  # fmt: skip


SUMMARY_COLUMNS = [
    "dataset", "arm", "seeds", "tokenizer PSNR", "token acc.", "dyn. steps", "autoreg. PSNR", "spread", "one_go PSNR",
    "copy PSNR", "autoreg. SSIM", "ΔPSNR@4 autoreg.", "ΔPSNR@4 one_go", "ΔPSNR@4 upstream var.",
]  # fmt: skip


def summary_rows(rows: dict[str, Any], budget: Budget) -> list[dict[str, Any]]:
    """One row per (dataset, arm): means over seeds, with the spread (max - min) of autoregressive PSNR."""
    table = []
    arms = [*budget.arms, *(["upstream"] if budget.upstream_dpath else [])]
    for dataset in budget.datasets:
        for name in arms:
            runs = [r for r in rows.values() if r["dataset"] == dataset and r["arm"] == name]
            last = lambda curve, key: curve[-1].get(key) if curve else None  # noqa: E731
            ar = [r["autoregressive"].get("psnr") for r in runs]
            known = [v for v in ar if v is not None]
            table.append({
                "dataset": dataset, "arm": name, "seeds": len(runs),
                "tokenizer PSNR": mean([last(r["tokenizer_curve"], "recon_psnr") for r in runs]),
                "token acc.": mean([last(r["dynamics_curve"], "next_frame_token_accuracy") for r in runs]),
                "dyn. steps": mean([last(r["dynamics_curve"], "step") for r in runs]),
                "autoreg. PSNR": mean(ar),
                "spread": (max(known) - min(known)) if len(known) > 1 else None,
                "one_go PSNR": mean([r["one_go"].get("psnr") for r in runs]),
                "copy PSNR": mean([(r["autoregressive"] or r["one_go"]).get("psnr_copy_last") for r in runs]),
                "autoreg. SSIM": mean([r["autoregressive"].get("ssim") for r in runs]),
                "ΔPSNR@4 autoreg.": mean([r["autoregressive"].get("delta_psnr_genie") for r in runs]),
                "ΔPSNR@4 one_go": mean([r["one_go"].get("delta_psnr_genie") for r in runs]),
                "ΔPSNR@4 upstream var.": mean([r["autoregressive"].get("delta_psnr_upstream") for r in runs]),
            })  # fmt: skip
    return table


def markdown(report: dict[str, Any]) -> str:
    stamp, budget = report["stamp"], report["budget"]
    lines = [
        f"# Fidelity per CPU-minute ({report['name']})",
        "",
        f"`{stamp['argv']}` — {stamp['date']}, commit {stamp['commit']}, {stamp['machine']}, "
        f"{stamp['minutes']:.0f} min in all. "
        + ("Quick mode: seconds of training, tiny stores. " if budget["quick"] else "")
        + f"Tokenizer {budget['tokenizer_min']:g} min + GenieRedux-G "
        f"{budget['dynamics_min']:g} min of training steps per run "
        "(one torch thread, two runs side by side), "
        f"tiny preset at {budget['image_size']} px, batch {budget['batch_size']}; evaluation on "
        f"{budget['num_sequences']} test windows, 2 prime + 10 generated frames, {budget['inference_steps']} "
        "MaskGIT steps. Means over seeds; spread = max - min of the autoregressive PSNR.",
        "",
    ]
    columns = SUMMARY_COLUMNS  # the JSON sorts keys: the order is this list's
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in report["summary"]:
        cells = [fmt(row.get(k), 3 if k == "token acc." else 0 if k in ("dyn. steps", "seeds") else 2)
                 if isinstance(row.get(k), (int, float)) or row.get(k) is None else str(row[k]) for k in columns]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Arms:", ""]
    lines += [f"- `{name}`: {report['arms'][name]['note']}" for name in budget["arms"]]  # the run's order
    if not budget.get("upstream_dpath"):
        lines.append("- `upstream`: upstream not measured (no --upstream-dpath checkout given)")
    else:
        lines.append(
            "- `upstream`: upstream GenieRedux's tokenizer and GenieRedux-G (its constructors at the tiny sizes, its "
            "losses, its AdamW grouping; our learning-rate schedule), trained for the same minutes on the windows our "
            "trainer draws, sampled by its own one-go sampler, scored by our protocol (benchmarks/upstream_fidelity.py)"
        )
    return "\n".join(lines) + "\n"


def run_experiment(budget: Budget, out: Path, name: str = "fidelity", results_dpath: Path | None = None,
                   argv: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    start = time.perf_counter()
    budget = replace(budget, **QUICK) if budget.quick else budget
    runner = CommandRunner(out / "logs" / "fidelity.log", threads_per_job=1)
    if budget.upstream_dpath:
        # a checkout that cannot run here (a module missing, not upstream) fails now, not after our arms' training
        runner.run(
            ["-m", "benchmarks.upstream_fidelity", "--check", str(budget.upstream_dpath)], tag="upstream"
        )
    datasets = [DATASETS[d] for d in budget.datasets]
    for dataset in datasets:
        for command in generate_commands(out, dataset, budget):
            runner.run(command, tag="data")
    # stages, each as parallel chains (`jobs` at a time, one torch thread each): the tokenizers, then every
    # arm's GenieRedux-G with its evaluations (and upstream's two models, when asked)
    pairs = [(d, s) for d in datasets for s in budget.seeds]
    tokenizers = {k: v for d, s in pairs for k, v in tokenizer_chains(out, d, s, budget).items()}
    stage = {k: v for d, s in pairs for k, v in dynamics_chains(out, d, s, budget).items()}
    # a finished training is not resumed again: its chain keeps only the evaluations still missing
    stage = {
        k: kept for k, v in stage.items() if (kept := [c for c in v if c[1] != "train" or not is_trained(c)])
    }
    # arms whose tokenizer an earlier run of this script finished join the tokenizer stage (no idle core)
    ready = {
        k: v for k, v in stage.items() if v[0][1] != "train" or final_model_dpath(tokenizer_of(v[0])).is_dir()
    }
    runner.run_chains({**{k: v for k, v in tokenizers.items() if not is_trained(v[0])}, **ready}, budget.jobs)
    stage = {k: v for k, v in stage.items() if k not in ready}
    if budget.upstream_dpath:
        stage |= {f"{d.name}_seed{s}_upstream": [upstream_command(out, d, s, budget)] for d, s in pairs}
    runner.run_chains(stage, budget.jobs)
    rows = collect(out, budget)
    report = {
        "name": name,
        "stamp": run_stamp(argv or sys.argv, start),
        "budget": asdict(budget),
        "arms": {n: asdict(ARMS[n]) for n in budget.arms},
        "summary": summary_rows(rows, budget),
        "runs": rows,
        "commands": runner.commands,
    }
    is_record = results_dpath is None and name == "fidelity" and not budget.quick
    write_results(name, report, markdown(report), DOC_FPATH if is_record else None,
                  **({"results_dpath": results_dpath} if results_dpath else {}))  # fmt: skip
    return report


def parse_args(argv: list[str]) -> tuple[Budget, Path, str, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="coinrun,demo", help=f"of {', '.join(DATASETS)}")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"of {', '.join(ARMS)}")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--tokenizer-min", type=float, default=Budget.tokenizer_min)
    parser.add_argument("--dynamics-min", type=float, default=Budget.dynamics_min)
    parser.add_argument("--num-sequences", type=int, default=Budget.num_sequences)
    parser.add_argument(
        "--lr-max", type=float, default=Budget.lr_max, help="GenieRedux-G's peak learning rate"
    )
    parser.add_argument("--lr-min", type=float, default=Budget.lr_min)
    parser.add_argument("--jobs", type=int, default=Budget.jobs)
    parser.add_argument("--quick", action="store_true", help="tiny stores and seconds of training")
    parser.add_argument(
        "--output-dpath", type=Path, default=REPO_DPATH / "outputs" / "experiments" / "fidelity"
    )
    parser.add_argument("--name", default="fidelity", help="results file name (experiments/results/<name>)")
    parser.add_argument("--results-dpath", type=Path, default=None, help="where the results go (tests)")
    parser.add_argument(
        "--upstream-dpath", default=None, help="an upstream GenieRedux checkout to train beside ours"
    )
    args = parser.parse_args(argv)
    for kind, names, known in (("dataset", args.datasets, DATASETS), ("arm", args.arms, ARMS)):
        unknown = [n for n in names.split(",") if n not in known]
        if unknown:
            parser.error(f"unknown {kind}(s) {unknown}; choose from {', '.join(known)}")
    budget = Budget(tokenizer_min=args.tokenizer_min, dynamics_min=args.dynamics_min,
                    num_sequences=args.num_sequences, jobs=args.jobs, quick=args.quick, lr_max=args.lr_max,
                    lr_min=args.lr_min,
                    datasets=tuple(args.datasets.split(",")), arms=tuple(args.arms.split(",")),
                    seeds=tuple(int(s) for s in args.seeds.split(",")), upstream_dpath=args.upstream_dpath)  # fmt: skip
    return budget, args.output_dpath, args.name, args.results_dpath


if __name__ == "__main__":
    budget, out, name, results_dpath = parse_args(sys.argv[1:])
    run_experiment(budget, out, name, results_dpath)
