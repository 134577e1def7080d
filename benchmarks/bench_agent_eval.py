"""Record a trained agent's evaluation: `python run.py bench agent_eval run_dpath=<agent run> [checkpoint=best_reward]
[num_episodes=500] [seed=0] [temperature=1.0]`.

Runs the one agent evaluation (agents/evaluate.py: held-out episodes, trained beside random) and records
its rows with the run's budget: a CoinRun task agent as block `agent_coinrun` (into docs/agents.md, with
the run's training curve as docs/agents_coinrun_curve.png), an AutoExplore run as `auto_explore_eval`
(docs/auto_explore.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.agent_curve import plot_training_curve
from benchmarks.results_md import DOCS_DPATH, mirror_into_doc, publish
from common.errors import UserError

PUBLISHED_PPO_EASY = "~8-9 of 10 on easy test levels after 25 M steps (Cobbe et al. 2020, procgen)"
PUBLISHED_ENV_STEPS = 25_000_000
OPTIONS = {"run_dpath", "checkpoint", "num_episodes", "seed", "temperature"}


def main(**options: str) -> int:
    from agents.evaluate import EvalCommonConfig, EvalConfig, run_evaluation
    from agents.trainer import reward_source_for

    unknown = set(options) - OPTIONS
    if unknown or "run_dpath" not in options:
        raise UserError(f"bench agent_eval needs run_dpath=<agent run folder>; options: {sorted(OPTIONS)}")
    run_dpath = Path(options["run_dpath"]).resolve()
    settings = EvalConfig(str(run_dpath), str(run_dpath.parent), options.get("checkpoint", "best_reward"),
                          int(options.get("num_episodes", "500")), None, float(options.get("temperature", "1.0")),
                          int(options.get("seed", "0")), 1, 0, True, EvalCommonConfig(None, None))  # fmt: skip
    result = run_evaluation(settings, lambda config: lambda names: reward_source_for(config, names, "cpu"))
    budget = result["budget"]
    is_coinrun_agent = budget["games"] == ["coinrun"] and budget["reward"] == "env"
    name, doc = (
        ("agent_coinrun", "agents.md") if is_coinrun_agent else ("auto_explore_eval", "auto_explore.md")
    )
    steps_per_s = budget["env_steps"] / max(budget["train_wall_s"], 1)
    notes = (
        f"{settings.num_episodes} held-out episodes per game (CoinRun: test levels "
        f"0..{settings.num_episodes - 1} of LEVEL_RANGES agent_test, training levels {budget['train_levels']}), "
        f"trained agent sampled at temperature {settings.temperature} beside the random agent on the same "
        f"episodes. Trained agent: {budget['algorithm']}, {budget['agent_size']} actor-critic "
        f"({budget['parameters']} params, {budget['image_size']} px), reward {budget['reward']}, "
        f"{budget['env_steps']} env steps in {budget['epochs']} epochs, {budget['train_wall_s']} s wall "
        f"({budget['num_envs']} envs), checkpoint {result['checkpoint']}. Run folder: {run_dpath.name}."
    )
    if is_coinrun_agent:
        notes += (f" Published PPO: {PUBLISHED_PPO_EASY}; that budget is "
                  f"{PUBLISHED_ENV_STEPS / budget['env_steps']:.0f}x this run's, "
                  f"{PUBLISHED_ENV_STEPS / steps_per_s / 3600:.0f} h at this run's {steps_per_s:.0f} env steps/s.")  # fmt: skip
        curve = plot_training_curve(run_dpath / "metrics.jsonl", run_dpath / "training_curve.png")
        shutil.copyfile(curve, DOCS_DPATH / "agents_coinrun_curve.png")
    mirror_into_doc(DOCS_DPATH / doc, name, publish(name, result["rows"], notes))
    return 0
