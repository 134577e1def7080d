"""Is the world model's uncertainty a novelty signal? The premise of AutoExplore's reward, measured.

    python experiments/uncertainty_novelty.py --run-dpath outputs/auto_explore_data/agent   # ~3 min
    python experiments/uncertainty_novelty.py --run-dpath ... --steps 300 --games Pong-Atari2600 \\
        --results-dpath outputs/quick                                                     # a quick look

A random agent plays each game of an AutoExplore run (its world model, reward settings, frame size, frame
skip and episode cut) for `--steps` steps of consecutive episodes seeded as the generator seeds them. At
every scored step the AutoExplore reward (`WorldModelUncertaintyReward`, the one the agent is trained on) is
computed for the frame the action leads to, and that frame is marked novel when its screen (the 16x16,
3-bit thumbnail of agents/coverage.py) has not been seen before in this measurement. The reward is a
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

import numpy as np  # noqa: E402

from common.results import RESULTS_DPATH, fmt, run_stamp, write_results  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "auto_explore.md"
RESULTS_NAME = "uncertainty_novelty"


def roc_auc(scores: np.ndarray, is_positive: np.ndarray) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting half (Mann-Whitney U)."""
    positives, negatives = scores[is_positive], scores[~is_positive]
    if len(positives) == 0 or len(negatives) == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    tied_ranks = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank of each distinct value, ties averaged
    u = tied_ranks[inverse][is_positive].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def measure_game(
    game: str,
    settings: Any,
    image_size: int,
    frame_skip: int,
    max_episode_steps: int,
    num_steps: int,
    seed: int,
) -> dict[str, Any]:
    """One game, random agent: per scored step (reward, pixel change, is the next screen new) -> the
    summary row. `settings`: agents.rewards.WorldModelRewardSettings of the run."""
    from agents.coverage import screen_key
    from agents.episodes import play_episodes, seeds_like_generation
    from agents.random_policy import RandomPolicy
    from agents.rewards import WorldModelUncertaintyReward
    from envs import make_env
    from envs.vector import VecStep

    env = make_env(game, image_size, frame_skip)
    source = WorldModelUncertaintyReward(settings, list(env.action_ids), image_size)
    rewards, changes, novel, seen, episodes = [], [], [], set(), 0
    policy, seeds = RandomPolicy(len(env.action_names)), seeds_like_generation(seed, game)
    try:  # the reward source runs its world model under no_grad itself
        for transition in play_episodes(env, policy, seeds, max_episode_steps, num_steps):
            observation, following = transition.observation, transition.next_observation
            if transition.t == 0:
                source.reset(np.array(observation[None]))
                seen.add(screen_key(observation))
                episodes += 1
            step = VecStep(following[None].copy(), np.zeros(1, np.float32), np.zeros(1, bool))
            reward = float(source(np.asarray([transition.action]), step)[0])
            key = screen_key(following)
            if transition.t >= settings.context_frames - 1:  # scored: the context holds C real frames
                rewards.append(reward)
                changes.append(float(np.abs(following.astype(np.int16) - observation).mean()))
                novel.append(key not in seen)
            seen.add(key)
    finally:
        env.close()
    rewards_, changes_, novel_ = np.asarray(rewards), np.asarray(changes), np.asarray(novel, dtype=bool)
    return {
        "game": game,
        "scored_steps": len(rewards_),
        "novel_share": float(novel_.mean()) if len(novel_) else None,
        "reward_auc": roc_auc(rewards_, novel_),
        "pixel_change_auc": roc_auc(changes_, novel_),
        "reward_novel": float(rewards_[novel_].mean()) if novel_.any() else None,
        "reward_familiar": float(rewards_[~novel_].mean()) if (~novel_).any() else None,
        "episodes": episodes,
    }


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
        rows.append(measure_game(game, settings, collection.image_size, collection.frame_skip,
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
