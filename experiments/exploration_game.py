"""Does AutoExplore explore where its world model is good? The mechanism on a game made for it.

    python experiments/exploration_game.py                     # the full flow (~40 CPU-minutes, 2 jobs)
    python experiments/exploration_game.py --epochs 4 --seeds 0 --sessions 40 --tokenizer-steps 40 \\
        --dynamics-steps 40 --coverage-steps 500 --output-dpath outputs/quick --results-dpath outputs/quick

The rooms game (envs/rooms.py): six rooms behind one-cell doors, each its own colours, lava that ends
episodes; a random agent leaves the first room in well under 1 % of its episodes. Every stage runs
through the launcher (pipelines/runner.py), as a user would:
1. random-agent episodes (`generate config=synthetic/rooms`) and a test set recorded by the scripted
   tour that visits every room (`generate config=synthetic/rooms_tour`);
2. a tiny tokenizer and a tiny GenieRedux-G trained on the random episodes;
3. agents of one budget, each over `--seeds`: AutoExplore with the paper's episodic returns; AutoExplore
   with the curiosity literature's remedies for a reward that is positive at every step (returns
   normalised by their running spread and non-episodic, as in RND; or a per-step baseline subtracted);
   entropy alone (`reward.type=none`); and Random Network Distillation (`reward.type=rnd`);
4. their coverage (`python -m agents.coverage`): distinct rooms and (room, cell) states per 10 k env
   steps, beside the random agent's;
5. whether the world model's reward tells unseen frames from seen ones (ROC AUC, agents/novelty.py);
6. episodes recorded by the AutoExplore variant that covered most rooms and by the random agent (as many
   frames or more), the same two-stage fine-tune of the world model on each (tokenizer, then dynamics),
   both evaluated on the tour's test set.
Results: experiments/results/exploration_game.{json,md} (date, commit, machine, budget, commands) and the
tables in docs/auto_explore.md between its `results:exploration_game` markers. Rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
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

from common.results import RESULTS_DPATH, fmt, run_stamp, write_results  # noqa: E402
from data.episode_store import store_totals  # noqa: E402
from experiments.explore_variants import AUTO_EXPLORE_VARIANTS, VARIANTS, claim_data_source  # noqa: E402
from models.checkpoint import best_model_dpath, final_model_dpath  # noqa: E402
from pipelines.overrides import TrainingPlan, training_overrides  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402
from training.evaluation.result import read_eval_figures  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "auto_explore.md"
GAME = "synthetic-rooms"
DATA, TOUR = "synthetic/rooms", "synthetic/rooms_tour"


@dataclass(frozen=True)
class Budget:
    sessions: int = 300  # random-agent training episodes (<= 200 steps; lava ends most far sooner)
    tour_sessions: int = 60  # test episodes of the tour
    tokenizer_steps: int = 400
    dynamics_steps: int = 800
    dynamics_lr: float = 1e-2  # GenieRedux-G's peak learning rate (models.md: 1e-2 led on CoinRun)
    clean_context: float = 1.0  # its clean_context_fraction: trained as the reward reads it, frame by frame
    epochs: int = 40  # agent epochs of num_envs x steps_per_epoch env steps
    num_envs: int = 8
    steps_per_epoch: int = 64
    seeds: tuple[int, ...] = (0, 1)
    coverage_steps: int = 10_000
    novelty_steps: int = 5000
    data_sessions: int = 60  # episodes each agent records first for the fine-tune, more until data_frames
    data_frames: int = 7500  # frames (at least) of each agent's fine-tune data
    finetune_steps: int = 300  # per stage: the tokenizer, then the dynamics
    num_sequences: int = 32  # evaluation windows
    jobs: int = 2


def world_model_commands(out: Path, budget: Budget) -> list[list[str]]:
    data = out / "datasets"
    tokenizer = TrainingPlan(
        data, DATA, out / "tokenizer", budget.tokenizer_steps, lr_max=2e-3, image_size=32
    )
    dynamics = TrainingPlan(data, DATA, out / "world_model", budget.dynamics_steps, lr_max=budget.dynamics_lr,
                            lr_min=budget.dynamics_lr / 10,
                            image_size=32, extra=(f"++model_overrides.dynamics.clean_context_fraction={budget.clean_context}",))  # fmt: skip
    commands = [
        ["genie_redux", "train", "config=tokenizer", *training_overrides(tokenizer)],
        ["genie_redux", "train", "config=genie_redux_guided", f"tokenizer_dpath={final_model_dpath(out / 'tokenizer')}",
         *training_overrides(dynamics)],
    ]  # fmt: skip
    return [
        c
        for c, run in zip(commands, ("tokenizer", "world_model"), strict=True)
        if not final_model_dpath(out / run).is_dir()
    ]


def agent_dpath(out: Path, variant: str, seed: int) -> Path:
    return out / "agents" / f"{variant}_s{seed}"


def agent_command(out: Path, budget: Budget, variant: str, seed: int) -> list[str]:
    return [
        "auto_explore", "train", f"world_model_dpath={out / 'world_model'}", f"collection.games=[{GAME}]",
        "collection.image_size=32", "collection.frame_skip=1", "collection.max_episode_steps=200",
        f"run_dpath={agent_dpath(out, variant, seed)}", f"common.seed={seed}", f"common.epochs={budget.epochs}",
        f"collection.train.config.num_envs={budget.num_envs}",
        f"collection.train.config.num_steps={budget.steps_per_epoch}",
        f"collection.train.config.epsilon_decay_epochs={max(1, budget.epochs // 2)}", "agent.size=small",
        # CPU-sized updates (the paper: 200 steps of 128 x 21 sequences on a GPU)
        "training.actor_critic.steps_per_epoch=8", "training.actor_critic.batch_size=32",
        "training.actor_critic.sequence_length=16", "training.actor_critic.replay_epochs=4",
        "evaluation.every=0", "checkpoint.best_window=16", *VARIANTS[variant],
    ]  # fmt: skip


def coverage_fpath(out: Path, variant: str, seed: int) -> Path:
    return out / "coverage" / f"{variant}_s{seed}.json"


def agent_chain(out: Path, budget: Budget, variant: str, seed: int) -> list[list[str]]:
    """Train (a finished run returns at once), then count coverage unless counted already."""
    commands = [agent_command(out, budget, variant, seed)]
    if not coverage_fpath(out, variant, seed).is_file():
        commands.append(["-m", "agents.coverage", str(agent_dpath(out, variant, seed)), str(budget.coverage_steps),
                         f"--output-fpath={coverage_fpath(out, variant, seed)}"])  # fmt: skip
    return commands


def coverage_summary(
    out: Path, budget: Budget, variants: tuple[str, ...] = tuple(VARIANTS)
) -> list[dict[str, Any]]:
    """One row per agent, each over its seeds (the random agent plays the same seeds in every count, so
    once): distinct rooms reached within the budget, (room, cell) states per 10 k env steps."""
    per_agent: dict[str, list[dict[str, Any]]] = {}
    for variant in variants:
        for seed in budget.seeds:
            random_row, trained_row = json.loads(coverage_fpath(out, variant, seed).read_text())["rows"]
            per_agent["random"] = [random_row]
            per_agent.setdefault(variant, []).append(trained_row)
    summary = []
    for agent, rows in per_agent.items():
        rooms = [round(row["distinct_region_per_10k"] * row["env_steps"] / 10_000) for row in rows]
        states = [round(row["distinct_region_position_per_10k"]) for row in rows]
        lengths = [row["env_steps"] / max(1, row["episodes"]) for row in rows]
        summary.append({"agent": agent, "runs": len(rows), "rooms": sum(rooms) / len(rooms), "rooms_per_run": rooms,
                        "states": sum(states) / len(states), "states_per_run": states,
                        "mean_episode_length": sum(lengths) / len(lengths)})  # fmt: skip
    return summary


def best_auto_explore(summary: list[dict[str, Any]], budget: Budget) -> tuple[str, int]:
    """The AutoExplore variant that covered most rooms (then states), and its seed that covered most."""
    rows = {row["agent"]: row for row in summary}
    variant = max(AUTO_EXPLORE_VARIANTS, key=lambda v: (rows[v]["rooms"], rows[v]["states"]))
    per_run = list(zip(rows[variant]["rooms_per_run"], rows[variant]["states_per_run"], strict=True))
    return variant, budget.seeds[max(range(len(per_run)), key=per_run.__getitem__)]


def record_until(
    runner: CommandRunner, command: list[str], dpath: Path, min_frames: int, sessions: int
) -> int:
    """Run the generate `command` (plus n_sessions) for more sessions until the store at `dpath` holds at
    least `min_frames` frames (a rerun of generate keeps the episodes recorded and adds the missing ones);
    returns the frames it holds."""
    while True:
        runner.run([*command, f"n_sessions={sessions}", f"output_dpath={dpath}"], "data")
        frames = store_totals(dpath)["frames"]
        if frames >= min_frames:
            return frames
        sessions = int(sessions * min_frames / max(1, frames)) + 1


def record_agent_data(runner: CommandRunner, out: Path, budget: Budget, variant: str, seed: int) -> None:
    """At least `data_frames` frames of episodes by the AutoExplore agent, then at least as many by the
    random agent (same seeds first): the two fine-tunes see as many frames, however long each agent's
    episodes are (an agent that often ends its episodes early plays more of them)."""
    data = out / "datasets" / "synthetic"
    claim_data_source(
        out / "explore_data_source.json", {"variant": variant, "seed": seed}, data / "explore_data"
    )
    explore = ["generate", "config=synthetic/rooms_explore", "seed=3", f"agent.checkpoint_dpath={agent_dpath(out, variant, seed)}"]  # fmt: skip
    frames = record_until(runner, explore, data / "explore_data", budget.data_frames, budget.data_sessions)
    record_until(
        runner, ["generate", f"config={DATA}", "seed=3"], data / "random_data", frames, budget.data_sessions
    )


def eval_command(out: Path, budget: Budget, model: Path, name: str) -> list[str]:
    return [
        "genie_redux", "eval", "config=genie_redux_guided", f"run_dpath={out / 'eval'}", f"eval.model_dpath={model}",
        f"train.dataset_root_dpath={out / 'datasets'}", f"train.dataset_name={TOUR}", "eval.split=all",
        f"eval.num_sequences={budget.num_sequences}", "eval.inference_method=autoregressive",
        f"eval.output_dpath={out / 'eval' / name}",
    ]  # fmt: skip


def finetune_chain(out: Path, budget: Budget, arm: str) -> list[list[str]]:
    """The two stages on one agent's data (the world model's tokenizer, then its dynamics on it), evaluated."""
    data, steps = out / "datasets", budget.finetune_steps
    tokenizer = TrainingPlan(data, f"synthetic/{arm}", out / f"finetune_{arm}_tokenizer", steps, lr_max=3e-4,
                             image_size=32)  # fmt: skip
    dynamics = TrainingPlan(
        data, f"synthetic/{arm}", out / f"finetune_{arm}", steps, lr_max=1e-3, image_size=32
    )
    commands = []
    if not final_model_dpath(tokenizer.run_dpath).is_dir():
        commands.append(["genie_redux", "train", "config=tokenizer", f"model_dpath={out / 'world_model'}",
                         *training_overrides(tokenizer)])  # fmt: skip
    if not final_model_dpath(dynamics.run_dpath).is_dir():
        commands.append(["genie_redux", "train", "config=genie_redux_guided", f"model_dpath={out / 'world_model'}",
                         f"tokenizer_dpath={best_model_dpath(tokenizer.run_dpath)}", *training_overrides(dynamics)])  # fmt: skip
    if not (out / "eval" / f"finetune_{arm}" / "results.json").is_file():
        commands.append(eval_command(out, budget, dynamics.run_dpath, f"finetune_{arm}"))
    return commands


def novelty(out: Path, budget: Budget) -> dict[str, Any]:
    """The world model's reward as a detector of unseen frames on the rooms game (random agent)."""
    from agents.novelty import measure_novelty
    from agents.rewards import WorldModelRewardSettings

    settings = WorldModelRewardSettings(str(out / "world_model"), n_preds=1, context_frames=5, device="cpu")
    return measure_novelty(GAME, settings, 32, 1, 200, budget.novelty_steps, seed=7)


def markdown(report: dict[str, Any]) -> str:
    budget, figures = report["budget"], report["figures"]
    coverage = {row["agent"]: row for row in figures["coverage"]}
    random = coverage["random"]
    recipe = (  # records before these were options trained at 3e-3 with half clean context
        f" at peak learning rate {budget['dynamics_lr']:g}, clean-context share {budget['clean_context']:g}"
        if "dynamics_lr" in budget
        else ""
    )
    lines = [
        "# Does AutoExplore explore? The rooms game",
        "",
        f"Written by `python experiments/exploration_game.py {report['argv']}` on {report['date']}, commit "
        f"{report['commit']}, {report['machine']}, {report['minutes']:.1f} min.",
        "",
        f"Budget: world model on {budget['sessions']} random-agent episodes (tiny tokenizer {budget['tokenizer_steps']} "
        f"+ GenieRedux-G {budget['dynamics_steps']} steps{recipe}, 32 px); each agent {budget['epochs']} epochs x "
        f"{budget['num_envs']} envs x {budget['steps_per_epoch']} steps, seeds {', '.join(str(s) for s in budget['seeds'])}; coverage "
        f"{budget['coverage_steps']} env steps per agent (the data settings: gamma 0.15, temperature 1).",
        "",
        f"## Coverage in {budget['coverage_steps']} env steps (of 6 rooms)",
        "",
        "| agent | rooms reached (mean) | per seed | (room, cell) states per 10 k | per seed | mean episode length | rooms vs random |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {row['agent']} | {row['rooms']:.1f} | {row['rooms_per_run']} | {row['states']:.0f} | "
            f"{row['states_per_run']} | {row['mean_episode_length']:.0f} | "
            f"{row['rooms'] / max(random['rooms'], 1e-9):.2f}x |"
            for row in figures["coverage"]
        ),
        "",
        f"The world model's reward as a detector of frames not seen before (random agent, {budget['novelty_steps']} "
        f"steps): ROC AUC {fmt(figures['novelty']['reward_auc'])} (the plain pixel change: "
        f"{fmt(figures['novelty']['pixel_change_auc'])}); {figures['novelty']['novel_share']:.1%} of the scored "
        "frames were novel.",
        "",
        f"## The fine-tune on each agent's data (AutoExplore: {figures['data_agent']}), on the tour's test set",
        "",
        "| model | PSNR autoreg. | SSIM | ΔPSNR@4 | copy-last PSNR | training episodes | frames |",
        "|---|---|---|---|---|---|---|",
    ]
    stores = figures["stores"]
    for name, key in (("world model (random data, before fine-tuning)", "world_model"),
                      ("fine-tuned on random-agent data", "finetune_random_data"),
                      ("fine-tuned on AutoExplore data", "finetune_explore_data")):  # fmt: skip
        row, store = figures["evaluations"].get(key, {}), stores.get(key.removeprefix("finetune_"), {})
        lines.append(f"| {name} | {fmt(row.get('psnr'))} | {fmt(row.get('ssim'), 3)} | {fmt(row.get('delta_psnr_genie'))} | "
                     f"{fmt(row.get('psnr_copy_last'))} | {store.get('episodes', '–')} | {store.get('frames', '–')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Budget()
    parser.add_argument("--output-dpath", default=str(REPO_DPATH / "outputs" / "exploration_game"))
    parser.add_argument("--results-name", default="exploration_game")
    parser.add_argument("--results-dpath", type=Path, default=RESULTS_DPATH,
                        help="only the default name in the default folder updates docs/")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    for name in ("sessions", "tour_sessions", "tokenizer_steps", "dynamics_steps", "epochs", "num_envs", "steps_per_epoch",
                 "coverage_steps", "novelty_steps", "data_sessions", "data_frames", "finetune_steps", "num_sequences", "jobs"):  # fmt: skip
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("dynamics_lr", "clean_context"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    fields = set(Budget.__dataclass_fields__)
    budget = Budget(**{k: (tuple(v) if k == "seeds" else v) for k, v in vars(args).items() if k in fields})
    out = Path(args.output_dpath).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runner = CommandRunner(out / "commands.log", threads_per_job=max(1, (os.cpu_count() or 1) // budget.jobs))
    start = time.perf_counter()
    data = out / "datasets"
    runner.run(
        ["generate", f"config={DATA}", f"n_sessions={budget.sessions}", f"output_dpath={data / DATA}"], "data"
    )
    runner.run(
        ["generate", f"config={TOUR}", f"n_sessions={budget.tour_sessions}", f"output_dpath={data / TOUR}"],
        "data",
    )
    for command in world_model_commands(out, budget):
        runner.run(command, "world_model")
    if not (out / "eval" / "world_model" / "results.json").is_file():
        runner.run(eval_command(out, budget, out / "world_model", "world_model"), "world_model")
    runner.run_chains(
        {f"{v}_s{s}": agent_chain(out, budget, v, s) for v in VARIANTS for s in budget.seeds}, budget.jobs
    )
    coverage = coverage_summary(out, budget)
    variant, seed = best_auto_explore(coverage, budget)
    record_agent_data(runner, out, budget, variant, seed)
    runner.run_chains(
        {arm: finetune_chain(out, budget, arm) for arm in ("random_data", "explore_data")}, budget.jobs
    )
    figures = {
        "coverage": coverage,
        "novelty": novelty(out, budget),
        "data_agent": f"{variant}, seed {seed}",
        "stores": {name: store_totals(data / "synthetic" / name) for name in ("random_data", "explore_data")},
        "evaluations": {
            name: read_eval_figures(out / "eval" / name / "results.json")
            for name in ("world_model", "finetune_random_data", "finetune_explore_data")
        },  # fmt: skip
    }
    report = {**run_stamp(argv, start), "budget": asdict(budget), "output_dpath": str(out),
              "commands": runner.commands, "figures": figures}  # fmt: skip
    is_recorded = args.results_name == "exploration_game" and args.results_dpath.resolve() == RESULTS_DPATH
    path = write_results(args.results_name, report, markdown(report), DOC_FPATH if is_recorded else None,
                         args.results_dpath.resolve())  # fmt: skip
    print(f"outputs: {out}; results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
