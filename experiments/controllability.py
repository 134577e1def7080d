"""Does the world model follow its actions? Tiny models trained on the synthetic block game.

    python experiments/controllability.py                          # the full experiment (~35 min on 2 CPU cores)
    python experiments/controllability.py --variants clean --dynamics-steps 300   # a quicker look

The block game (envs/synthetic.py) moves nothing but an 8x8 block, and only when an
action says so: a model that ignores actions predicts it no better than "the block stays put". Every
stage runs through the launcher, as a user would (`python run.py generate|genie_redux train|eval`):
1. record the game with a random agent (`generate config=synthetic/block`);
2. train a tiny tokenizer, then tiny GenieRedux-G dynamics models that differ only in the training
   regime (`model_overrides.dynamics.clean_context_fraction`: 1 = clean context as at autoregressive
   inference, 0 = Genie's all-masked context), and a tiny GenieRedux (LAM + dynamics);
3. evaluate each with the evaluation protocol (ΔPSNR@4, Genie's definition and upstream's variant,
   one_go and autoregressive) and with a direct test of control: from real prime frames, roll out
   every action for a few frames and find the block in the generated frames; it "follows" when it is
   within 2 px of where the game would have put it;
4. for GenieRedux, the confusion table between the true actions and the LAM's latent codes and their
   mutual information.
Results go to experiments/results/controllability.{json,md} with the date, commit and machine; gifs
(one column per action) to the output folder. `tests/test_controllability.py` runs a reduced version.
"""

from __future__ import annotations

import argparse
import json
import shutil
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.results import RESULTS_DPATH, device_description, run_stamp, write_results  # noqa: E402
from data.actions import ACTION_VOCABULARY, action_id  # noqa: E402
from envs.synthetic import BLOCK_ACTIONS, BLOCK_SIZE, find_block, move_block  # noqa: E402
from models.checkpoint import final_model_dpath, load_model  # noqa: E402
from pipelines.overrides import TrainingPlan, training_overrides  # noqa: E402
from pipelines.runner import CommandRunner  # noqa: E402

DATASET_NAME = "synthetic/block"
FOLLOW_TOLERANCE_PX = 2.0  # a generated block within 2 px (half a move) of the true position follows


@dataclass(frozen=True)
class Budget:
    """How much data and training; the defaults are the full experiment."""

    n_sessions: int = 200
    tokenizer_steps: int = 300
    dynamics_steps: int = 800
    lam_steps: int = 1000
    batch_size: int = 8
    tokenizer_lr_max: float = (
        2e-3  # 150 steps: 30.6 dB at 2e-3, 23.8 dB at 1e-3, 18 dB at 3e-3 (one run each)
    )
    lr_max: float = 3e-3  # dynamics: faster than the demo's 1e-3 here (800 steps at 3e-3 ~ 1500 at 1e-3)
    lr_min: float = 1e-4
    eval_sequences: int = 48
    follow_sequences: int = 16
    follow_horizon: int = 6
    maskgit_steps: int = 8
    variants: tuple[str, ...] = ("mixed", "clean", "masked", "mixed_prepend")
    with_lam: bool = True
    extra_overrides: tuple[str, ...] = field(default_factory=tuple)


# GenieRedux-G variants: the dynamics overrides that make each (everything else is the tiny preset)
VARIANTS = {
    "mixed": [],  # the defaults: half of each batch with clean context, additive actions
    "clean": ["+model_overrides.dynamics.clean_context_fraction=1.0"],  # all clean: autoregressive's view
    "masked": ["+model_overrides.dynamics.clean_context_fraction=0.0"],  # Genie's regime only
    "mixed_prepend": ["+model_overrides.dynamics.action_conditioning=prepend"],
    # TDCE and token input skip set either way, whatever the preset's default
    "mixed_tdce_skip": [
        "++model_overrides.dynamics.tdce=true",
        "++model_overrides.dynamics.token_input_skip=true",
    ],
    "mixed_no_tdce_skip": [
        "++model_overrides.dynamics.tdce=false",
        "++model_overrides.dynamics.token_input_skip=false",
    ],
}


def training_plan(budget: Budget, out: Path, steps: int, run_dpath: Path, lr_max: float) -> list[str]:
    plan = TrainingPlan(out / "datasets", DATASET_NAME, run_dpath, steps, budget.batch_size, lr_max, budget.lr_min,
                        saves=1, eval_protocol=False, extra=budget.extra_overrides)  # fmt: skip
    return training_overrides(plan)  # evaluated below, once, with the full protocol


# ---- measurements -----------------------------------------------------------------------------
def test_windows(out: Path, num_frames: int, count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """`count` test-split windows: frames uint8 [N, T, S, S, 3], actions int64 [N, T-1]."""
    from data.datasets import WindowDataset

    dataset = WindowDataset(out / "datasets" / DATASET_NAME, "test", num_frames=num_frames)
    picks = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in picks]
    return {
        "frames": torch.stack([torch.as_tensor(item["frames"]) for item in items]),
        "actions": torch.stack([torch.as_tensor(item["actions"]) for item in items]).long(),
    }


@torch.no_grad()
def token_stability(tokenizer: Any, windows: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Do tokens follow content? Static clips, consecutive frames, distinct codes, on real windows.

    - static: each window's first frame repeated T times; the share of tokens equal to frame 0's, per t
      (a tokenizer that stamps the frame index into its tokens scores well below 1 after t = 0);
    - consecutive: the share of tokens equal to the previous frame's, beside the share of patches
      whose pixels are identical to the previous frame's (what a content-only tokenizer would give).
    """
    from data.transforms import frames_to_model

    frames = frames_to_model(windows["frames"])  # [N, T, 3, S, S]
    n, t = frames.shape[:2]
    static = tokenizer.encode(frames[:, :1].expand(-1, t, -1, -1, -1).contiguous())  # [N, T, h, w]
    token_ids = tokenizer.encode(frames)
    patch = tokenizer.config.patch_size
    h, w = tokenizer.config.grid
    same_pixels = (windows["frames"][:, 1:] == windows["frames"][:, :-1]).all(-1)  # [N, T-1, S, S]
    same_patches = same_pixels.view(n, t - 1, h, patch, w, patch).all(-1).all(-2)  # [N, T-1, h, w]
    return {
        "static_clip_tokens_kept_per_t": [
            round(float((static[:, i] == static[:, 0]).float().mean()), 4) for i in range(t)
        ],
        "consecutive_token_agreement": float((token_ids[:, 1:] == token_ids[:, :-1]).float().mean()),
        "identical_patch_share": float(same_patches.float().mean()),
        "distinct_codes": int(token_ids.unique().numel()),
    }


def true_block_path(start_centre: np.ndarray, action_name: str, horizon: int) -> np.ndarray:
    """Centres [horizon, 2] (row, col) the game gives when `action_name` is held from `start_centre`."""
    corner = (int(round(start_centre[0] - BLOCK_SIZE / 2)), int(round(start_centre[1] - BLOCK_SIZE / 2)))
    path = []
    for _ in range(horizon):
        corner = move_block(corner, action_name)
        path.append((corner[0] + BLOCK_SIZE / 2, corner[1] + BLOCK_SIZE / 2))
    return np.asarray(path, dtype=np.float64)


@torch.no_grad()
def action_following(
    world_model: Any,
    windows: dict[str, torch.Tensor],
    num_prime: int,
    horizon: int,
    maskgit_steps: int,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Roll out each block action for `horizon` frames from real prime frames; where is the block?

    -> (per-action and overall figures, generated uint8 clips per action [N, num_prime + horizon, S, S, 3]).
    """
    from data.transforms import frames_to_model, frames_to_uint8

    frames = windows["frames"][:, :num_prime]  # uint8 [N, T0, S, S, 3]
    prime_actions = windows["actions"][:, : num_prime - 1]
    start = find_block(frames[:, -1].numpy())  # [N, 2]
    prime = frames_to_model(frames).to(world_model.device)
    results, clips = {}, {}
    for name in BLOCK_ACTIONS:
        actions = torch.full((frames.shape[0], horizon), action_id(name), dtype=torch.long)
        generated = world_model.rollout(
            prime,
            actions,
            method="autoregressive",
            steps=maskgit_steps,
            seed=seed,
            prime_actions=prime_actions,
        )
        generated_uint8 = frames_to_uint8(generated.cpu()).numpy()  # [N, horizon, S, S, 3]
        found = find_block(generated_uint8)  # [N, horizon, 2]
        truth = np.stack([true_block_path(s, name, horizon) for s in start])  # [N, horizon, 2]
        error = np.linalg.norm(found - truth, axis=-1)  # [N, horizon], NaN where the block was lost
        is_lost = np.isnan(error)
        follows = ~is_lost & (error <= FOLLOW_TOLERANCE_PX)
        moved = found[:, -1] - start  # [N, 2] over the whole horizon
        results[name] = {
            "follow_rate": float(follows.mean()),
            "lost_rate": float(is_lost.mean()),
            "mean_error_px": float(np.nanmean(error)) if not is_lost.all() else None,
            "mean_displacement_px": np.nanmean(moved, axis=0).round(2).tolist()
            if not is_lost.all()
            else None,
            "true_displacement_px": (truth[:, -1] - start).mean(0).round(2).tolist(),
        }
        clips[name] = np.concatenate([frames.numpy(), generated_uint8], axis=1)
    overall = float(np.mean([r["follow_rate"] for r in results.values()]))
    return {"follow_rate": overall, "per_action": results}, clips


def save_control_gif(clips: dict[str, np.ndarray], fpath: Path, num_prime: int, count: int = 4) -> None:
    """One gif per run (`count` sequences stacked vertically, one column per action) and a still PNG
    beside it: for two sequences, the last prime frame and then every other generated frame."""
    from PIL import Image

    from training.evaluation.gifs import save_gif, side_by_side

    rows = [side_by_side({name: clip[i] for name, clip in clips.items()}) for i in range(count)]
    frames = np.concatenate(rows, axis=1)  # [T, count * H', W', 3]
    save_gif(fpath, frames, fps=3.0)
    row_height = frames.shape[1] // count
    times = range(num_prime - 1, frames.shape[0], 2)  # last prime frame, generated frames 2, 4, ...
    sheet = np.concatenate(
        [np.concatenate([frames[t, i * row_height : (i + 1) * row_height] for t in times]) for i in range(2)],
        axis=1,
    )  # time runs down, two sequences side by side
    Image.fromarray(sheet).save(fpath.with_suffix(".png"))


def latent_action_table(world_model: Any, windows: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Confusion counts true action x LAM code and their mutual information (bits) on real windows."""
    from data.transforms import frames_to_model

    latent = world_model.infer_actions(frames_to_model(windows["frames"]).to(world_model.device)).cpu()
    true_names = [ACTION_VOCABULARY[int(a)] for a in windows["actions"].flatten()]
    rows = list(BLOCK_ACTIONS)
    table = np.zeros((len(rows), world_model.num_actions), dtype=np.int64)
    for name, code in zip(true_names, latent.flatten().tolist()):
        table[rows.index(name), code] += 1
    joint = table / table.sum()
    p_true, p_code = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / (p_true * p_code)), 0.0)
    entropy_true = float(-(p_true[p_true > 0] * np.log2(p_true[p_true > 0])).sum())
    mutual_information = float(terms.sum())
    return {
        "actions": rows,
        "confusion": table.tolist(),
        "mutual_information_bits": mutual_information,
        "true_action_entropy_bits": entropy_true,
        "share_of_action_information": mutual_information / entropy_true if entropy_true > 0 else None,
    }


def protocol_metrics(world_model: Any, out: Path, budget: Budget, method: str) -> dict[str, Any]:
    """The evaluation protocol (as `genie_redux eval` runs it) on the test split, one method."""
    from data.datasets import WindowDataset, balanced_sampler, make_dataloader
    from training.evaluation.protocol import EnvTable, evaluate
    from training.evaluation.settings import EvalSettings

    settings = EvalSettings(
        inference_method=method,
        inference_steps=budget.maskgit_steps,
        num_sequences=budget.eval_sequences,
        num_gifs=0,
    )
    dataset = WindowDataset(out / "datasets" / DATASET_NAME, "test", num_frames=settings.num_frames)
    loader = make_dataloader(dataset, 8, sampler=balanced_sampler(dataset, settings.num_sequences, seed=0))
    result = evaluate(world_model, loader, settings, EnvTable.of_dataset(dataset), show_progress=False)
    return {**result.metrics, "psnr_per_frame": [round(v, 3) for v in result.psnr_per_frame]}


def measure(checkpoint_dpath: Path, out: Path, budget: Budget, gif_fpath: Path) -> dict[str, Any]:
    from models.world_model import WorldModel

    torch.manual_seed(0)
    world_model = WorldModel.from_checkpoint(checkpoint_dpath)
    figures: dict[str, Any] = {
        method: protocol_metrics(world_model, out, budget, method) for method in ("one_go", "autoregressive")
    }
    windows = test_windows(out, 16, budget.follow_sequences)
    num_prime = 4
    if world_model.is_action_guided:
        following, clips = action_following(
            world_model, windows, num_prime, budget.follow_horizon, budget.maskgit_steps
        )
        figures["action_following"] = following
        save_control_gif(clips, gif_fpath, num_prime)
    else:
        figures["latent_actions"] = latent_action_table(world_model, windows)
    return figures


# ---- the experiment ---------------------------------------------------------------------------
def run_experiment(budget: Budget, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    runner = CommandRunner(out / "logs" / "commands.log")
    seconds: dict[str, float] = {}
    seconds["generate"] = runner.run(
        ["generate", "config=synthetic/block", f"n_sessions={budget.n_sessions}",
         f"output_dpath={out / 'datasets' / DATASET_NAME}"],
        "generate",
    )  # fmt: skip
    tokenizer_dpath = out / "tokenizer"
    seconds["tokenizer"] = runner.run(
        ["genie_redux", "train", "config=tokenizer",
         *training_plan(budget, out, budget.tokenizer_steps, tokenizer_dpath, budget.tokenizer_lr_max)],
        "tokenizer",
    )  # fmt: skip
    runs: dict[str, Any] = {}
    for variant in budget.variants:
        run_dpath = out / f"genie_redux_guided_{variant}"
        seconds[f"dynamics_{variant}"] = runner.run(
            ["genie_redux", "train", "config=genie_redux_guided", f"tokenizer_dpath={final_model_dpath(tokenizer_dpath)}",
             *VARIANTS[variant], *training_plan(budget, out, budget.dynamics_steps, run_dpath, budget.lr_max)],
            f"dynamics_{variant}",
        )  # fmt: skip
        runs[f"genie_redux_guided_{variant}"] = measure(
            final_model_dpath(run_dpath), out, budget, out / f"control_{variant}.gif"
        )
        print(json.dumps({variant: summary_line(runs[f"genie_redux_guided_{variant}"])}), flush=True)
    if budget.with_lam:
        run_dpath = out / "genie_redux"
        seconds["genie_redux"] = runner.run(
            ["genie_redux", "train", "config=genie_redux", f"tokenizer_dpath={final_model_dpath(tokenizer_dpath)}",
             *training_plan(budget, out, budget.lam_steps, run_dpath, budget.lr_max)],
            "genie_redux",
        )  # fmt: skip
        runs["genie_redux"] = measure(
            final_model_dpath(run_dpath), out, budget, out / "control_genie_redux.gif"
        )
    tokenizer_metrics = json.loads((tokenizer_dpath / "metrics.jsonl").read_text().splitlines()[-1])
    stability = token_stability(load_model(final_model_dpath(tokenizer_dpath)), test_windows(out, 16, 16))
    return {
        "budget": asdict(budget),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "tokenizer": {k: v for k, v in tokenizer_metrics.items() if k.startswith("val/")},
        "token_stability": stability,
        "runs": runs,
    }


def summary_line(figures: dict[str, Any]) -> dict[str, Any]:
    line = {
        f"{method}_delta_psnr_genie": round(figures[method]["delta_psnr_genie"], 2)
        for method in ("one_go", "autoregressive")
    }
    line["autoregressive_psnr"] = round(figures["autoregressive"]["psnr"], 2)
    if "action_following" in figures:
        line["follow_rate"] = round(figures["action_following"]["follow_rate"], 3)
    if "latent_actions" in figures:
        line["latent_mi_share"] = round(figures["latent_actions"]["share_of_action_information"] or 0.0, 3)
    return line


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Controllability on the synthetic block game",
        "",
        f"Written by `python experiments/controllability.py {report['argv']}` on {report['date']}, "
        f"commit {report['commit']}, {report['machine']}"
        + (f", {report['device']}." if "device" in report else "."),
        "",
        f"Budget: {json.dumps(report['budget'])}; wall seconds per stage: {json.dumps(report['seconds'])}.",
        f"Tokenizer: {json.dumps({k: round(v, 3) for k, v in report['tokenizer'].items()})}.",
        "",
        "Token stability (16 test windows): static clip tokens kept per frame "
        f"{report['token_stability']['static_clip_tokens_kept_per_t']}; consecutive frames: "
        f"{report['token_stability']['consecutive_token_agreement']:.3f} of tokens equal vs "
        f"{report['token_stability']['identical_patch_share']:.3f} of patches pixel-identical; "
        f"{report['token_stability']['distinct_codes']} distinct codes.",
        "",
        "| run | ΔPSNR@4 Genie (one_go / autoregressive) | ΔPSNR@4 upstream variant (one_go / ar) | PSNR (one_go / ar) | follows its action |",
        "|---|---|---|---|---|",
    ]
    for name, figures in report["runs"].items():
        one_go, ar = figures["one_go"], figures["autoregressive"]
        follow = figures.get("action_following", {}).get("follow_rate")
        lines.append(
            f"| {name} | {one_go['delta_psnr_genie']:+.2f} / {ar['delta_psnr_genie']:+.2f} dB "
            f"| {one_go['delta_psnr_upstream']:+.2f} / {ar['delta_psnr_upstream']:+.2f} dB "
            f"| {one_go['psnr']:.2f} / {ar['psnr']:.2f} dB | {'n/a' if follow is None else f'{follow:.0%}'} |"
        )
    for name, figures in report["runs"].items():
        if "action_following" in figures:
            lines += [
                "",
                f"**{name}**, per action (autoregressive, {report['budget']['follow_horizon']} frames):",
                "",
            ]
            lines += [
                "| action | follows | lost | mean error px | moved (row, col) px | game moved px |",
                "|---|---|---|---|---|---|",
            ]
            for action, row in figures["action_following"]["per_action"].items():
                error = "n/a" if row["mean_error_px"] is None else f"{row['mean_error_px']:.2f}"
                lines.append(
                    f"| {action} | {row['follow_rate']:.0%} | {row['lost_rate']:.0%} | {error} "
                    f"| {row['mean_displacement_px']} | {row['true_displacement_px']} |"
                )
        if "latent_actions" in figures:
            table = figures["latent_actions"]
            lines += [
                "",
                f"**{name}**: LAM codes vs true actions, mutual information {table['mutual_information_bits']:.3f} "
                f"of {table['true_action_entropy_bits']:.3f} bits ({(table['share_of_action_information'] or 0):.1%}):",
                "",
                "| true \\ code | " + " | ".join(str(i) for i in range(len(table["confusion"][0]))) + " |",
                "|---" * (len(table["confusion"][0]) + 1) + "|",
            ]
            for action, row in zip(table["actions"], table["confusion"]):
                lines.append(f"| {action} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> tuple[Budget, Path, str]:
    defaults = Budget()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dpath", default="outputs/controllability")
    parser.add_argument(
        "--results-name", default="controllability", help="experiments/results/<name>.json|md"
    )
    parser.add_argument("--variants", default=",".join(defaults.variants), help=",".join(VARIANTS))
    parser.add_argument("--no-lam", action="store_true", help="skip the GenieRedux (LAM) run")
    for key in (
        "n_sessions",
        "tokenizer_steps",
        "dynamics_steps",
        "lam_steps",
        "batch_size",
        "eval_sequences",
        "follow_sequences",
    ):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=getattr(defaults, key))
    parser.add_argument("--lr-max", type=float, default=defaults.lr_max, help="the dynamics' peak rate")
    parser.add_argument(
        "--override", action="append", default=[], help="extra training override (repeatable)"
    )
    args = parser.parse_args(argv)
    variants = tuple(v for v in args.variants.split(",") if v)  # --variants "" runs GenieRedux alone
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    budget = Budget(
        n_sessions=args.n_sessions,
        tokenizer_steps=args.tokenizer_steps,
        dynamics_steps=args.dynamics_steps,
        lam_steps=args.lam_steps,
        batch_size=args.batch_size,
        eval_sequences=args.eval_sequences,
        follow_sequences=args.follow_sequences,
        lr_max=args.lr_max,
        variants=variants,
        with_lam=not args.no_lam,
        extra_overrides=tuple(args.override),
    )
    return budget, Path(args.output_dpath).resolve(), args.results_name


def main(argv: list[str]) -> int:
    budget, out, name = parse_args(argv)
    start = time.perf_counter()
    figures = run_experiment(budget, out)
    report = {**run_stamp(argv, start), "device": device_description(), **figures}
    # rendered as its JSON file reads back (sorted keys), so the record regenerates from the file
    report = json.loads(json.dumps(report, sort_keys=True))
    path = write_results(name, report, markdown(report))
    for sheet in sorted(out.glob("control_*.png")):  # the stills the docs show, beside the numbers
        shutil.copyfile(sheet, RESULTS_DPATH / f"{name}_{sheet.name}")
    print(f"results: {path}; gifs and runs: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
