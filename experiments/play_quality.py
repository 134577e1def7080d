"""Does long play stay a game screen, and do the keys move it? The player's sampling settings, measured.

    python experiments/play_quality.py                               # the bundled model, 6 settings (~15 min)
    python experiments/play_quality.py --model-dpath outputs/demo/genie_redux_guided \\
        --dataset-dpath outputs/demo/datasets/retro_act/pretrain
    python experiments/play_quality.py --steps 2 --temperatures 1 0 --drift-frames 20 --response-frames 4 \\
        --results-dpath outputs/quick                                  # a quick look

For every (MaskGIT steps, temperature) of the grid, the play checks of `genie_redux eval`
(training/evaluation/play_checks.py, sampled as the player samples) on the store's test windows, one model
and one sampling seed for all settings:
- drift: `--drift-frames` frames of uniformly random keys from `--drift-starts` start clips per game; per
  game, the PSNR of the generated frame to the nearest real frame of that game and the share of its codes no
  real frame uses, at frames 1 .. drift-frames (a game screen scores high and near 0; coloured noise low
  and high);
- action response: each action of the game held for `--response-frames` frames from the same start and
  seed; the mean squared pixel difference between actions (0: the keys do nothing), and its ratio to what
  a second sampling seed changes (temperature 0 has no sampling noise, so no ratio).
The player's defaults (`play/configs/default.yaml`: steps, temperature) are chosen by this table.
Results: experiments/results/play_quality.{json,md} (date, commit, machine, model, store, settings).
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

from common.results import RESULTS_DPATH, fmt, run_stamp, write_results  # noqa: E402

BUNDLED_DPATH = REPO_DPATH / "play" / "pretrained" / "demo_32px"
NUM_PRIME = 2  # start frames given to every rollout (the evaluation protocol's)


def measure_setting(
    world_model: Any, dataset: Any, steps: int, temperature: float, args: argparse.Namespace
) -> dict:
    """The play checks at one (steps, temperature) -> figures, with the wall seconds they took."""
    from training.evaluation.play_checks import PlaySettings
    from training.evaluation.run import run_play_checks

    settings = PlaySettings(
        response_frames=args.response_frames,
        response_starts=args.response_starts,
        drift_frames=args.drift_frames,
        drift_starts=args.drift_starts,
        steps=steps,
        temperature=temperature,
        seed=args.seed,
    )
    start = time.perf_counter()
    figures = run_play_checks(world_model, dataset, settings, NUM_PRIME)
    return {"steps": steps, "temperature": temperature, "seconds": time.perf_counter() - start, **figures}


def summary(row: dict[str, Any]) -> dict[str, float | None]:
    """Means over games: nearest-real-frame PSNR and unseen-code share at the first and last marked frames."""
    games = list(row["drift"].values())
    first = [g["nearest_real_psnr"][0] for g in games]
    last = [g["nearest_real_psnr"][-1] for g in games]
    unseen = [g["unseen_code_share"][-1] for g in games]
    return {
        "psnr_first": sum(first) / len(first),
        "psnr_last": sum(last) / len(last),
        "unseen_last": sum(unseen) / len(unseen),
        "action_mse": row["action_response"]["action_mse"],
        "ratio": row["action_response"]["ratio"],
    }


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    last = next(iter(rows[0]["drift"].values()))["frames"][-1]  # the last marked frame within drift_frames
    lines = [
        "# Play quality: the player's sampling settings",
        "",
        f"Written by `python experiments/play_quality.py {report['argv']}` on {report['date']}, commit "
        f"{report['commit']}, {report['machine']}, {report['minutes']:.1f} min. Model: {report['model_dpath']}; "
        f"store: {report['dataset_dpath']} ({report['settings']['split']} split). Drift: {report['settings']['drift_frames']} frames of random keys from "
        f"{report['settings']['drift_starts']} start clips per game; action response: each action held "
        f"{report['settings']['response_frames']} frames from {report['settings']['response_starts']} starts; "
        f"sampling seed {report['settings']['seed']}, {NUM_PRIME} prime frames.",
        "",
        f"| MaskGIT steps | temperature | PSNR to nearest real frame, frame 1 | frame {last} | unseen codes, frame {last} "
        "| keys: action MSE | keys vs another seed | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = summary(row)
        lines.append(
            f"| {row['steps']} | {row['temperature']:g} | {fmt(s['psnr_first'])} | {fmt(s['psnr_last'])} | "
            f"{s['unseen_last']:.1%} | {s['action_mse']:.5f} | "
            f"{fmt(s['ratio']) + 'x' if s['ratio'] is not None else '– (no sampling noise)'} | {row['seconds']:.0f} |"
        )
    lines += ["", "Per game, PSNR to the nearest real frame at frame 1 -> frame " + str(last) + ":", ""]
    for row in rows:
        per_game = "; ".join(
            f"{game.split('-')[0]} {fmt(g['nearest_real_psnr'][0])} -> {fmt(g['nearest_real_psnr'][-1])}"
            for game, g in row["drift"].items()
        )
        lines.append(f"- steps {row['steps']}, temperature {row['temperature']:g}: {per_game}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dpath", default=str(BUNDLED_DPATH / "world_model"))
    parser.add_argument("--dataset-dpath", default=str(BUNDLED_DPATH / "start_frames"))
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    parser.add_argument("--drift-frames", type=int, default=500)
    parser.add_argument("--drift-starts", type=int, default=4)
    parser.add_argument("--response-frames", type=int, default=8)
    parser.add_argument("--response-starts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", help="the store's split the start clips come from")
    parser.add_argument("--results-name", default="play_quality")
    parser.add_argument("--results-dpath", type=Path, default=RESULTS_DPATH)
    args = parser.parse_args(argv)
    if args.drift_frames < 1 or args.response_frames < 1:
        parser.error("--drift-frames and --response-frames must be >= 1")
    return args


def main(argv: list[str]) -> int:
    import torch
    from tqdm import tqdm

    from data.datasets import WindowDataset
    from training.evaluation.run import load_world_model
    from training.evaluation.settings import EvalSettings

    args = parse_args(argv)
    start = time.perf_counter()
    # the evaluation's windows, so the start clips are those `genie_redux eval` draws its play checks from
    dataset = WindowDataset(args.dataset_dpath, args.split, num_frames=EvalSettings().num_frames)
    world_model = load_world_model(args.model_dpath, torch.device("cpu"), dataset.image_size)
    grid = [(steps, temperature) for steps in args.steps for temperature in args.temperatures]
    rows = [
        measure_setting(world_model, dataset, steps, temperature, args)
        for steps, temperature in tqdm(grid, desc="settings", unit="setting")
    ]
    settings = {
        k: getattr(args, k)
        for k in ("drift_frames", "drift_starts", "response_frames", "response_starts", "seed", "split")
    }
    report = {**run_stamp(argv, start), "model_dpath": args.model_dpath, "dataset_dpath": args.dataset_dpath,
              "settings": settings, "rows": rows}  # fmt: skip
    path = write_results(args.results_name, report, markdown(report), None, args.results_dpath.resolve())
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
