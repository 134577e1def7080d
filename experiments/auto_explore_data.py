"""Does AutoExplore explore, and does its data help the world model? The CVPR paper's claim, measured.

    python run.py demo output_dpath=outputs/demo           # a GenieRedux-G trained on 4 bundled games (~9 min)
    python experiments/auto_explore_data.py --world-model-dpath outputs/demo/genie_redux_guided   # ~60 min (3 agents x 2 seeds)
    python experiments/auto_explore_data.py --world-model-dpath ... --epochs 2 --coverage-steps 200 \\
        --sessions 2 --test-sessions 1 --steps-max 30 --tokenizer-finetune-steps 4 --finetune-steps 4 \\
        --num-sequences 2 --output-dpath outputs/quick --results-dpath outputs/quick   # a quick look (~3 min)

Every stage runs through the launcher, as a user would:
1. `auto_explore train` on the bundled games (default: three the demo's world model was trained on), one
   agent per `--variants` (experiments/explore_variants.py: the paper's AutoExplore, rewarded by that
   frozen GenieRedux-G's uncertainty; AutoExplore with a survival-neutral reward; Random Network
   Distillation), same budget;
2. `python -m agents.coverage`: distinct emulator states and screens per 10 k env steps, each agent
   vs the random agent, same budget and episode seeds (rows kept in the output folder and the results file);
3. three stores at the world model's frame size: random-agent and AutoExplore data (the AutoExplore variant
   that reached most distinct RAM states, `auto_explore eval`-ed first; same games, sessions and seeds:
   only the player differs; seeds unlike the demo's, so no episode was trained on) and a test
   set recorded by a third policy (a random agent that repeats its previous action with probability 0.75);
4. the world model's error on each agent's data (higher: the agent found what the model does not know);
5. the same fine-tune on each training store, the paper's two stages: the world model's tokenizer, then
   its dynamics on that fine-tuned tokenizer (`--tokenizer-finetune-steps 0` keeps the tokenizer frozen);
   both evaluated on the third policy's test set beside the model before fine-tuning (PSNR, SSIM, ΔPSNR@4).
Results: experiments/results/auto_explore_data.{json,md} (date, commit, machine, budget, commands) and the
tables in docs/auto_explore.md between its `results:auto_explore_data` markers. Rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_DPATH = Path(__file__).resolve().parents[1]
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))
from common.bootstrap import ensure_environment  # noqa: E402

if __name__ == "__main__":
    ensure_environment(__file__)

from common.results import RESULTS_DPATH, fmt, run_stamp, write_results  # noqa: E402
from data.episode_store import store_totals  # noqa: E402
from experiments.explore_variants import (  # noqa: E402
    AUTO_EXPLORE_VARIANTS,
    VARIANTS,
    claim_data_source,
    unknown_variants,
)
from models.checkpoint import best_model_dpath, final_model_dpath  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "auto_explore.md"
DEFAULT_GAMES = ("MontezumaRevenge-Atari2600", "Hero-Atari2600", "Kangaroo-Atari2600")
TRAIN_SETS = ("random", "auto_explore")
TEST_SET = "sticky_random_test"
DATA_SOURCE_FNAME = "explore_data_source.json"  # in the output folder: the agent that recorded auto_explore
METHODS = ("one_go", "autoregressive")


@dataclass(frozen=True)
class Budget:
    games: tuple[str, ...] = field(default=DEFAULT_GAMES)
    variants: tuple[str, ...] = ("auto_explore", "auto_explore_neutral", "rnd")  # explore_variants.VARIANTS
    seeds: tuple[int, ...] = (0, 1)  # one agent per variant and seed
    epochs: int = 30  # AutoExplore epochs of num_envs x steps_per_epoch env steps
    num_envs: int = 6  # env i plays game i % len(games)
    steps_per_epoch: int = 125  # per env: the paper's 8 x 125 = 1000 env steps per collection epoch
    eval_steps: int = 300  # AutoExplore's evaluation episode, per game
    agent_size: str = "small"
    coverage_steps: int = 10_000  # per agent and game
    sessions: int = 12  # episodes per game in each training store
    test_sessions: int = 6  # episodes per game in the test store
    steps_max: int = 150
    tokenizer_finetune_steps: int = 200  # 0: the world model's tokenizer stays frozen
    finetune_steps: int = 300  # the dynamics'
    num_sequences: int = 24  # evaluation windows per store
    jobs: int = 2  # fine-tune chains side by side


def world_model_run(world_model_dpath: Path) -> tuple[Path, int]:
    """(checkpoint dir, frame size) of a GenieRedux-G run folder or checkpoint dir."""
    from models.checkpoint import find_checkpoint, read_config

    try:
        checkpoint = find_checkpoint(world_model_dpath, kind="genie_redux_guided")
    except ValueError as error:
        raise SystemExit(f"error: --world-model-dpath: {error}") from None
    return checkpoint, int(read_config(checkpoint)["tokenizer"]["image_size"])


def agent_name(variant: str, seed: int) -> str:
    return f"{variant}_s{seed}"


def agent_dpath(out: Path, variant: str, seed: int) -> Path:
    return out / "agents" / agent_name(variant, seed)


def coverage_fpath(out: Path, variant: str, seed: int) -> Path:
    return out / "coverage" / f"{agent_name(variant, seed)}.json"


def explore_train_command(out: Path, budget: Budget, world_model: Path, variant: str, seed: int) -> list[str]:
    games = f"[{','.join(budget.games)}]"
    train = [
        "auto_explore", "train",
        f"world_model_dpath={world_model}",
        f"collection.games={games}",
        f"run_dpath={agent_dpath(out, variant, seed)}",
        f"common.seed={seed}",
        f"common.epochs={budget.epochs}",
        f"collection.train.config.num_envs={budget.num_envs}",
        f"collection.train.config.num_steps={budget.steps_per_epoch}",
        f"collection.train.config.epsilon_decay_epochs={max(1, budget.epochs // 2)}",
        f"agent.size={budget.agent_size}",
        # CPU-sized updates (the paper: 200 steps of 128 x 21 sequences on a GPU)
        "training.actor_critic.steps_per_epoch=8",
        "training.actor_critic.batch_size=32",
        "training.actor_critic.sequence_length=16",
        "training.actor_critic.replay_epochs=4",
        "evaluation.every=0",  # the data agent alone is evaluated, once it is chosen
        *VARIANTS[variant],
    ]  # fmt: skip
    return train


def agent_chain(out: Path, budget: Budget, world_model: Path, variant: str, seed: int) -> list[list[str]]:
    """Train (a finished run returns at once), then count coverage unless counted already."""
    commands = [explore_train_command(out, budget, world_model, variant, seed)]
    counted = coverage_fpath(out, variant, seed)
    if not counted.is_file():  # a rerun keeps this run's count
        commands.append(["-m", "agents.coverage", str(agent_dpath(out, variant, seed)), str(budget.coverage_steps),
                         *budget.games, f"--output-fpath={counted}"])  # fmt: skip
    return commands


def evaluate_command(out: Path, budget: Budget, variant: str, seed: int) -> list[str]:
    """`auto_explore eval` of the checkpoint the data will be recorded with."""
    agent = agent_dpath(out, variant, seed)
    # best_reward needs `checkpoint.best_window` finished episodes; the data and coverage use the same
    # fallback (agents.checkpoint.load_policy: best_reward, else last)
    checkpoint = "best_reward" if (agent / "checkpoints" / "best_reward").is_dir() else "last"
    return [
        "auto_explore",
        "eval",
        f"run_dpath={agent}",
        f"checkpoint={checkpoint}",
        f"max_episode_steps={budget.eval_steps}",
    ]


COUNTS = ("distinct_states_per_10k", "distinct_screens_per_10k", "episodes")


def coverage_table(out: Path, budget: Budget) -> list[dict[str, Any]]:
    """Rows per (game, agent): the random agent once (every count plays it on the same episode seeds),
    then each variant, named by its variant, its counts the mean over its seeds (`<count>_per_seed` beside)."""
    per_agent: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for variant in budget.variants:
        for seed in budget.seeds:
            for row in json.loads(coverage_fpath(out, variant, seed).read_text())["rows"]:
                if row["agent"] == "random":
                    per_agent[(row["game"], "random")] = [row]
                else:
                    per_agent.setdefault((row["game"], variant), []).append(row)
    table = []
    for (game, agent), rows in per_agent.items():
        summary = {"game": game, "agent": agent, "runs": len(rows)}
        for count in COUNTS:
            values = [row[count] for row in rows]
            summary |= {count: sum(values) / len(values), f"{count}_per_seed": values}
        table.append(summary)
    order = ("random", *budget.variants)
    return sorted(table, key=lambda r: (budget.games.index(r["game"]), order.index(r["agent"])))


def data_agent(coverage: list[dict[str, Any]], budget: Budget) -> tuple[str, int]:
    """The AutoExplore variant that reached most distinct RAM states over all games (then screens), mean
    over its seeds, and its seed that reached most."""
    candidates = [v for v in budget.variants if v in AUTO_EXPLORE_VARIANTS]
    if not candidates:
        raise SystemExit(f"error: --variants {' '.join(budget.variants)}: name at least one AutoExplore variant "
                         f"({', '.join(AUTO_EXPLORE_VARIANTS)}) to record its data")  # fmt: skip

    def reach(variant: str, run: int | None = None) -> tuple[float, float]:
        """(states, screens) summed over the games: the means over seeds, or one seed's (`run`)."""
        rows = [r for r in coverage if r["agent"] == variant]

        def total(count: str) -> float:
            return sum(r[count] if run is None else r[f"{count}_per_seed"][run] for r in rows)

        return total("distinct_states_per_10k"), total("distinct_screens_per_10k")

    variant = max(candidates, key=reach)
    return variant, budget.seeds[max(range(len(budget.seeds)), key=lambda run: reach(variant, run))]


def generate_commands(out: Path, budget: Budget, image_size: int, agent: Path) -> list[list[str]]:
    data = out / "datasets" / "retro_act"
    games = f"game=[{','.join(budget.games)}]"
    common = [games, f"n_steps_max={budget.steps_max}", f"image_size={image_size}"]
    return [
        ["generate", "config=retro_act/pretrain", *common, f"n_sessions={budget.sessions}", "seed=3",
         f"output_dpath={data / 'random'}"],
        ["generate", "config=retro_act/auto_explore_montezuma", *common, f"n_sessions={budget.sessions}", "seed=3",
         f"agent.checkpoint_dpath={agent}", f"output_dpath={data / 'auto_explore'}"],
        ["generate", "config=retro_act/pretrain", *common, f"n_sessions={budget.test_sessions}", "seed=5",
         "agent.repeat_prob=0.75", f"output_dpath={data / TEST_SET}"],
    ]  # fmt: skip


def eval_command(out: Path, budget: Budget, model: Path, store: str, method: str, target: Path) -> list[str]:
    return [
        "genie_redux", "eval", "config=genie_redux_guided",
        f"run_dpath={target.parent}",
        f"eval.model_dpath={model}",
        f"train.dataset_root_dpath={out / 'datasets'}",
        f"train.dataset_name=retro_act/{store}",
        "eval.split=all",
        f"eval.num_sequences={budget.num_sequences}",
        f"eval.inference_method={method}",
        f"eval.output_dpath={target}",
    ]  # fmt: skip


def pending_evals(out: Path, budget: Budget, model: Path, store: str, name: str) -> list[list[str]]:
    commands = []
    for method in METHODS:
        target = out / "eval" / f"{name}_on_{store}_{method}"
        if not (target / "results.json").is_file():  # finished evaluations are kept
            commands.append(eval_command(out, budget, model, store, method, target))
    return commands


def tokenizer_finetune_dpath(out: Path, train_set: str) -> Path:
    return out / f"finetune_{train_set}_tokenizer"


def finetune_arguments(out: Path, world_model: Path, train_set: str, steps: int) -> list[str]:
    """What both stages override in their configs (tokenizer_explore_ft, genie_redux_guided_explore_ft:
    batch, rate, one CPU process): the world model, the data, and the schedule scaled to `steps`."""
    return [
        f"model_dpath={world_model}",
        f"train.dataset_root_dpath={out / 'datasets'}",
        f"train.dataset_name=retro_act/{train_set}",
        f"train.num_train_steps={steps}",
        f"train.schedule.warmup_steps={max(1, steps // 10)}",
        f"train.checkpoint.every_steps={max(1, steps // 3)}",
        f"train.validation.every_steps={max(1, steps)}",
    ]


def tokenizer_finetune_command(out: Path, budget: Budget, world_model: Path, train_set: str) -> list[str]:
    """Stage 1: the world model's own tokenizer (a GenieRedux-G checkpoint serves as model_dpath)."""
    return [
        "genie_redux", "train", "config=tokenizer_explore_ft",
        *finetune_arguments(out, world_model, train_set, budget.tokenizer_finetune_steps),
        f"run_dpath={tokenizer_finetune_dpath(out, train_set)}",
    ]  # fmt: skip


def finetune_command(out: Path, budget: Budget, world_model: Path, train_set: str) -> list[str]:
    """Stage 2: the dynamics, on the stage-1 tokenizer (frozen), or on its own when that stage is off."""
    tokenizer = (
        best_model_dpath(tokenizer_finetune_dpath(out, train_set))
        if budget.tokenizer_finetune_steps
        else "null"
    )  # null: the world model's own tokenizer comes with it, frozen
    return [
        "genie_redux", "train", "config=genie_redux_guided_explore_ft",
        f"tokenizer_dpath={tokenizer}",
        *finetune_arguments(out, world_model, train_set, budget.finetune_steps),
        f"run_dpath={out / f'finetune_{train_set}'}",
    ]  # fmt: skip


def pending_finetune(out: Path, budget: Budget, world_model: Path, train_set: str) -> list[list[str]]:
    """The fine-tune stages still to run; a rerun keeps a finished stage."""
    commands = []
    tokenizer_done = final_model_dpath(tokenizer_finetune_dpath(out, train_set)).is_dir()
    if budget.tokenizer_finetune_steps and not tokenizer_done:
        commands.append(tokenizer_finetune_command(out, budget, world_model, train_set))
    if not final_model_dpath(out / f"finetune_{train_set}").is_dir():
        commands.append(finetune_command(out, budget, world_model, train_set))
    return commands


def collect(out: Path, budget: Budget, variant: str, seed: int) -> dict[str, Any]:
    stores = {name: store_totals(out / "datasets" / "retro_act" / name) for name in (*TRAIN_SETS, TEST_SET)}
    rows = []
    for name in ("world_model", *(f"finetune_{s}" for s in TRAIN_SETS)):
        for store in (*TRAIN_SETS, TEST_SET) if name == "world_model" else (TEST_SET,):
            for method in METHODS:
                figures = read_eval_figures(out / "eval" / f"{name}_on_{store}_{method}" / "results.json")
                rows.append({"model": name, "data": store, "method": method, **figures})
    explore_eval = next(agent_dpath(out, variant, seed).glob("eval_*.json"), None)
    return {
        "stores": stores,
        "rows": rows,
        "coverage": coverage_table(out, budget),
        "data_agent": f"{variant}, seed {seed}",
        "agent_eval": json.loads(explore_eval.read_text()) if explore_eval else None,
    }


def finished_outputs(out: Path) -> list[str]:
    """The output folder's finished parts (kept by a rerun), e.g. agent, coverage.json, eval/world_model_on_random_one_go."""
    evaluations = [f"eval/{p.parent.name}" for p in sorted((out / "eval").glob("*/results.json"))]
    folders = sorted(p.name for p in out.iterdir() if p.name != "eval" and not p.name.endswith(".log"))
    return folders + evaluations


def tokenizer_stage(budget: dict[str, Any]) -> str:
    steps = budget.get("tokenizer_finetune_steps", 0)  # absent: a record from before the tokenizer stage
    return f"the tokenizer {steps} steps" if steps else "tokenizer frozen"


def resumed(report: dict[str, Any]) -> str:
    kept = report.get("kept_from_earlier_invocation")
    return f" (a rerun: it kept {', '.join(kept)} from an earlier invocation)" if kept else ""


def count_cell(row: dict[str, Any], count: str) -> str:
    """The mean, and each seed's count where there are several (records before seeds had one run)."""
    per_seed = row.get(f"{count}_per_seed", [])
    mean = f"{row[count]:.0f}"
    return f"{mean} ({' / '.join(f'{v:.0f}' for v in per_seed)})" if len(per_seed) > 1 else mean


def coverage_lines(coverage: list[dict[str, Any]]) -> list[str]:
    random = {r["game"]: r for r in coverage if r["agent"] == "random"}
    lines = []
    for r in coverage:
        base = random[r["game"]]
        states, screens = r["distinct_states_per_10k"], r["distinct_screens_per_10k"]
        lines.append(
            f"| {r['game']} | {r['agent']} | {count_cell(r, 'distinct_states_per_10k')} | "
            f"{states / base['distinct_states_per_10k']:.2f}x | {count_cell(r, 'distinct_screens_per_10k')} | "
            f"{screens / base['distinct_screens_per_10k']:.2f}x | {count_cell(r, 'episodes')} |"
        )
    return lines


def seeds_note(budget: dict[str, Any]) -> str:
    seeds = budget.get("seeds", ())  # absent: a record from before agents had seeds
    return f", seeds {', '.join(str(s) for s in seeds)}" if seeds else ""


def agents_paragraph(report: dict[str, Any]) -> list[str]:
    """What the agents are (records before the variants compared the paper's agent alone)."""
    if "variants" not in report["budget"]:
        return []
    return [
        "Agents (experiments/explore_variants.py): `auto_explore` the paper's episodic returns of the world "
        "model's uncertainty; `auto_explore_neutral` the same reward centred, non-episodic, its unscored first "
        "steps at the mean (an episode neither costs nor pays); `rnd` Random Network Distillation. All play "
        "with the data settings (gamma 0.15, temperature 1). The AutoExplore data below was recorded by "
        f"`{report['figures']['data_agent']}`, the AutoExplore variant that reached most distinct RAM states "
        f"(mean over seeds {', '.join(str(s) for s in report['budget']['seeds'])}; counts: the mean, then each seed's).",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    budget, figures = report["budget"], report["figures"]
    keyed = {(r["model"], r["data"], r["method"]): r for r in figures["rows"]}
    lines = [
        "# AutoExplore: does it explore, and does its data help? (bundled games)",
        "",
        f"Written by `python experiments/auto_explore_data.py {report['argv']}` on {report['date']}, commit "
        f"{report['commit']}, {report['machine']}, {report['minutes']:.1f} min{resumed(report)}. World model: "
        f"{report['world_model']} ({report['image_size']} px). Games: {', '.join(budget['games'])}.",
        "",
        f"Budget: each agent {budget['epochs']} epochs x {budget['num_envs']} envs x "
        f"{budget.get('steps_per_epoch', 125)} steps "
        f"({budget['agent_size']} actor-critic){seeds_note(budget)}; coverage {budget['coverage_steps']} env steps per agent and game; "
        f"{budget['sessions']} training and {budget['test_sessions']} test episodes per game, <= {budget['steps_max']} "
        f"steps; fine-tune: {tokenizer_stage(budget)}, then the dynamics {budget['finetune_steps']} steps "
        f"(batch 8); evaluation on "
        f"{budget['num_sequences']} windows, 2 prime + 10 generated frames, 25 MaskGIT steps.",
        "",
        "## Distinct states per 10 k env steps",
        "",
        *agents_paragraph(report),
        "| game | agent | distinct RAM states | vs random | distinct screens | vs random | episodes |",
        "|---|---|---|---|---|---|---|",
        *coverage_lines(figures["coverage"]),
        "",
        "## The world model on each agent's data, and fine-tuned on it",
        "",
        "| model | evaluated on | PSNR one_go | PSNR autoreg. | SSIM autoreg. | ΔPSNR@4 autoreg. | copy-last PSNR |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, store in dict.fromkeys((r["model"], r["data"]) for r in figures["rows"]):
        one, auto = keyed[(model, store, "one_go")], keyed[(model, store, "autoregressive")]
        lines.append(
            f"| {model} | {store} | {fmt(one.get('psnr'))} | {fmt(auto.get('psnr'))} | {fmt(auto.get('ssim'), 3)} | "
            f"{fmt(auto.get('delta_psnr_genie'))} | {fmt(auto.get('psnr_copy_last'))} |"
        )
    lines += ["", "| store | episodes | frames | mean frames per episode |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {s['episodes']} | {s['frames']} | {s['mean_episode_frames']} |"
        for name, s in (
            (name, figures["stores"][name]) for name in (*TRAIN_SETS, TEST_SET)
        )  # JSON keeps keys sorted
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Budget()
    parser.add_argument(
        "--world-model-dpath", required=True, help="a GenieRedux-G run folder or checkpoint dir"
    )
    parser.add_argument("--output-dpath", default=str(REPO_DPATH / "outputs" / "auto_explore_data"))
    parser.add_argument(
        "--results-name", default="auto_explore_data", help="<results-dpath>/<name>.{json,md}"
    )
    parser.add_argument(
        "--results-dpath",
        type=Path,
        default=RESULTS_DPATH,
        help="where the results go; only the default name in the default folder updates docs/ and benchmarks/",
    )
    parser.add_argument("--games", nargs="+", default=list(defaults.games))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    parser.add_argument("--variants", nargs="+", default=list(defaults.variants),
                        help=f"agents to compare, of: {', '.join(VARIANTS)}")  # fmt: skip
    for name in ("epochs", "num_envs", "steps_per_epoch", "eval_steps", "coverage_steps", "sessions", "test_sessions", "steps_max",
                 "tokenizer_finetune_steps", "finetune_steps", "num_sequences", "jobs"):  # fmt: skip
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--agent-size", default=defaults.agent_size, choices=("tiny", "small", "paper"))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if unknown := unknown_variants(args.variants):
        raise SystemExit(
            f"error: --variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}"
        )
    fields = set(Budget.__dataclass_fields__)
    budget = Budget(
        **{
            k: (tuple(v) if k in ("games", "variants", "seeds") else v)
            for k, v in vars(args).items()
            if k in fields
        }
    )
    out = Path(args.output_dpath).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the project's record (docs/, benchmarks/) is written only by a run under the default name and folder
    is_recorded = args.results_name == "auto_explore_data" and args.results_dpath.resolve() == RESULTS_DPATH
    world_model, image_size = world_model_run(Path(args.world_model_dpath).resolve())
    jobs = min(budget.jobs, len(TRAIN_SETS))
    runner = CommandRunner(out / "commands.log", threads_per_job=max(1, (os.cpu_count() or 1) // jobs))
    start = time.perf_counter()
    kept = finished_outputs(out)  # a rerun resumes: what this invocation found already done
    runner.run_chains(
        {
            agent_name(v, s): agent_chain(out, budget, world_model, v, s)
            for v in budget.variants
            for s in budget.seeds
        },
        jobs,
    )
    variant, seed = data_agent(coverage_table(out, budget), budget)
    store = out / "datasets" / "retro_act" / "auto_explore"
    claim_data_source(out / DATA_SOURCE_FNAME, {"variant": variant, "seed": seed}, store)
    runner.run(evaluate_command(out, budget, variant, seed), "explore")
    for command in generate_commands(out, budget, image_size, agent_dpath(out, variant, seed)):
        runner.run(command, "data")
    chains = {
        f"finetune_{train_set}": [
            *pending_evals(out, budget, world_model, train_set, "world_model"),
            *pending_finetune(out, budget, world_model, train_set),
            *pending_evals(
                out,
                budget,
                best_model_dpath(out / f"finetune_{train_set}"),
                TEST_SET,
                f"finetune_{train_set}",
            ),
        ]
        for train_set in TRAIN_SETS
    }
    chains["finetune_random"][:0] = pending_evals(out, budget, world_model, TEST_SET, "world_model")
    runner.run_chains(chains, jobs)
    report = {
        **run_stamp(argv, start),
        "kept_from_earlier_invocation": kept,
        "world_model": str(world_model),
        "image_size": image_size,
        "budget": asdict(budget),
        "output_dpath": str(out),
        "commands": runner.commands,
        "figures": collect(out, budget, variant, seed),
    }
    doc = DOC_FPATH if is_recorded else None  # a quick look leaves the doc alone
    results_fpath = write_results(
        args.results_name, report, markdown(report), doc, args.results_dpath.resolve()
    )
    print(f"outputs: {out}; results: {results_fpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
