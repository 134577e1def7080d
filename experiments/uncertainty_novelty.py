"""Is the world model's uncertainty a novelty signal? The premise of AutoExplore's reward, measured.

    python experiments/uncertainty_novelty.py --run-dpath outputs/auto_explore_data/agents/auto_explore_neutral_s0   # ~3 min
    python experiments/uncertainty_novelty.py --run-dpath ... --steps 300 --games Pong-Atari2600 \\
        --results-dpath outputs/quick                                                     # a quick look

A random agent plays each game of an AutoExplore run (its world model, reward settings, frame size, frame
skip and episode cut) for `--steps` steps of consecutive episodes seeded as the generator seeds them. At
every scored step the AutoExplore reward (`WorldModelUncertaintyReward`, the one the agent is trained on) is
computed for the frame the action leads to, and that frame is marked novel when its screen (the 16x16,
3-bit thumbnail of agents/coverage.py) has not been seen before in this measurement (agents/novelty.py). The reward is a
novelty signal when it is higher on novel frames: reported as the ROC AUC of the reward as a detector of
novel frames (0.5: no signal; 1: every novel frame scores above every familiar one), beside the AUC of the
plain pixel change |f_{t+1} - f_t| (a signal that needs no world model) and the mean reward on each kind.
Results: experiments/results/uncertainty_novelty.{json,md} with date, commit, machine; the table also goes
between the `results:uncertainty_novelty` markers of docs/auto_explore.md.
"""

from __future__ import annotations

import argparse
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

from agents.novelty import measure_novelty  # noqa: E402
from common.results import RESULTS_DPATH, fmt, run_stamp, write_results  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "auto_explore.md"
RESULTS_NAME = "uncertainty_novelty"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Is the world model's uncertainty a novelty signal?",
        "",
        f"Written by `python experiments/uncertainty_novelty.py {report['argv']}` on {report['date']}, commit "
        f"{report['commit']}, {report['machine']}, {report['minutes']:.1f} min. World model: "
        f"{report['world_model']}; AutoExplore run {report['run_dpath']} (its reward settings). A random agent, "
        f"{report['steps']} env steps per game; a frame is novel when its 16x16 3-bit screen was not seen before "
        "in this measurement. AUC 0.5: the signal does not tell novel frames from familiar ones.",
        "",
        "| game | scored steps | novel frames | AUC of the reward | AUC of the pixel change | reward on novel / familiar |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['game']} | {row['scored_steps']} | {fmt(100 * (row['novel_share'] or 0), 1)} % | "
            f"{fmt(row['reward_auc'], 3)} | {fmt(row['pixel_change_auc'], 3)} | "
            f"{fmt(row['reward_novel'], 3)} / {fmt(row['reward_familiar'], 3)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    from agents.checkpoint import load_policy
    from agents.config import parse_config
    from agents.rewards import WorldModelRewardSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dpath", required=True, type=Path, help="an auto_explore run folder")
    parser.add_argument("--steps", type=int, default=5000, help="env steps per game")
    parser.add_argument("--games", nargs="*", help="default: the run's collection.games")
    parser.add_argument("--seed", type=int, default=7, help="episode seeds (not the data or coverage ones)")
    parser.add_argument("--results-dpath", type=Path, default=RESULTS_DPATH)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = parse_config(load_policy(args.run_dpath)[1])
    collection, steps = config.collection, config.steps
    settings = WorldModelRewardSettings(config.world_model_dpath, steps.n_preds, steps.context_frames, "cpu")
    rows = []
    for game in args.games or collection.games:
        rows.append(measure_novelty(game, settings, collection.image_size, collection.frame_skip,
                                 collection.max_episode_steps or 1000, args.steps, args.seed))  # fmt: skip
        print(rows[-1], flush=True)
    report = {
        **run_stamp(argv, start),
        "run_dpath": str(args.run_dpath),
        "world_model": config.world_model_dpath,
        "steps": args.steps,
        "rows": rows,
    }
    is_recorded = args.results_dpath.resolve() == RESULTS_DPATH
    write_results(
        RESULTS_NAME, report, markdown(report), DOC_FPATH if is_recorded else None, args.results_dpath
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
