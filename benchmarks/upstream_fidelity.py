"""Upstream GenieRedux trained and evaluated beside ours at equal minutes: the upstream arm of
experiments/fidelity.py (`--upstream-dpath`), also runnable on its own.

    python -m benchmarks.upstream_fidelity --upstream-dpath ~/GenieRedux --store datasets/coinrun/random \\
        --test-store datasets/coinrun/random_test --test-split all --run-dpath outputs/upstream_coinrun

Upstream's tokenizer and GenieRedux-G, built by its own constructors at our tiny preset's sizes
(benchmarks/upstream.py maps them), are trained in a child process (benchmarks/upstream_worker.py) by their
own losses, with upstream's AdamW grouping, for the same minutes of training steps as ours
(`train.time_budget_min`: planned from the speed of the first steps, planned again at each quarter), on the
windows our trainer would draw, in its order (the balanced sampler of the same seed). The learning-rate
peak, floor and warm-up are ours: upstream's 1e-4 is set for its batch of 84 on GPUs. Then upstream's
own one-go sampler generates the test windows our evaluation draws, and our protocol scores them
(training/evaluation/protocol.py: PSNR, SSIM, ΔPSNR both ways, the copy baseline), so both sides are
measured by one function. Output: <run>/upstream_training.json and <run>/eval_one_go_t<T>/ as
`genie_redux eval` writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.upstream import (
    UpstreamWorker,
    check_upstream_dpath,
    constructor_kwargs,
    upstream_layout,
    upstream_revision,
)
from common.atomic import atomic_write_json
from data.datasets import WindowDataset, balanced_sampler
from training.data_stream import ResumableShardSampler, sampler_order
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.report import write_reports
from training.evaluation.settings import EvalSettings

NUM_WINDOWS = 60_000  # window starts written for training; more steps than this many samples wrap around


@dataclass(frozen=True)
class UpstreamRun:
    upstream_dpath: Path
    store_dpath: Path  # training episodes (their train split)
    test_store_dpath: Path
    test_split: str  # "all" for a store recorded as a test set, "test" for a store's own test split
    run_dpath: Path
    seed: int = 0
    tokenizer_min: float = 10.0
    dynamics_min: float = 10.0
    image_size: int = 32
    batch_size: int = 8
    num_frames: int = 16
    lr_max: float = 1e-3  # GenieRedux-G
    lr_min: float = 1e-4
    tokenizer_lr_max: float = 1e-3
    tokenizer_lr_min: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 1.0
    weight_decay: float = 1e-4
    num_sequences: int = 48
    inference_steps: int = 25
    temperature: float = 1.0
    threads: int = 1


def write_training_windows(run: UpstreamRun, data_dpath: Path) -> None:
    """frames.npy (every train episode, concatenated), actions.npy (the action after each frame; 0 after an
    episode's last) and starts.npy (window starts in the order our trainer draws them)."""
    dataset = WindowDataset(run.store_dpath, "train", num_frames=run.num_frames)
    episodes = [dataset.read_episode(i) for i in range(len(dataset.episodes))]
    offsets = np.cumsum([0] + [len(frames) for frames, _ in episodes])[:-1]
    np.save(data_dpath / "frames.npy", np.concatenate([frames for frames, _ in episodes]))
    np.save(data_dpath / "actions.npy", np.concatenate([np.append(actions, 0) for _, actions in episodes]))
    order = sampler_order(lambda epoch: balanced_sampler(dataset, len(dataset), run.seed, epoch=epoch))
    stream = iter(ResumableShardSampler(order, 0, 0, 1))
    starts = []
    for _ in range(NUM_WINDOWS):
        episode, first = dataset.window(next(stream))
        starts.append(offsets[episode] + first)
    np.save(data_dpath / "starts.npy", np.asarray(starts, dtype=np.int64))


class UpstreamWorldModel:
    """What the evaluation protocol asks of a world model, answered by upstream's sampler in the worker."""

    is_action_guided = True

    def __init__(
        self, worker: UpstreamWorker, num_actions: int, scratch_dpath: Path, max_frames: int
    ) -> None:
        self.worker, self.num_actions, self.scratch, self.max_frames = (
            worker,
            num_actions,
            scratch_dpath,
            max_frames,
        )
        self.device = torch.device("cpu")

    def rollout(self, prime_frames: torch.Tensor, actions: torch.Tensor, method: str = "one_go", steps: int = 25,
                temperature: float = 1.0, schedule: str = "cosine", seed: int = 0,
                prime_actions: torch.Tensor | None = None, progress: bool = False,
                anneal_temperature: bool = False) -> torch.Tensor:  # fmt: skip
        """prime_frames [B, T0, 3, H, W], actions [B, N] -> upstream's one-go frames [B, N, 3, H, W]
        (its sampler anneals the temperature itself: `anneal_temperature` is ours to choose, not its)."""
        if method != "one_go" or schedule != "cosine":
            raise ValueError("upstream is measured with its own one-go sampler (cosine schedule)")
        every_action = torch.cat([prime_actions, actions], dim=1)  # [B, T0 + N - 1]
        np.savez(self.scratch / "in.npz", prime=prime_frames.permute(0, 1, 3, 4, 2).numpy(),
                 actions=every_action.numpy())  # fmt: skip
        self.worker.request("sample", kind="genie_redux_guided", in_fpath=str(self.scratch / "in.npz"),
                            out_fpath=str(self.scratch / "out.npy"), num_frames=actions.shape[1], steps=steps,
                            temperature=temperature, seed=seed)  # fmt: skip
        return torch.from_numpy(np.load(self.scratch / "out.npy")).permute(0, 1, 4, 2, 3)  # [B, N, 3, H, W]


def test_loader(run: UpstreamRun, settings: EvalSettings) -> Any:
    """The test windows `genie_redux eval` draws with these settings (same sampler, same seed)."""
    from data.datasets import make_dataloader

    dataset = WindowDataset(run.test_store_dpath, run.test_split, num_frames=settings.num_frames)
    sampler = balanced_sampler(dataset, settings.num_sequences, seed=settings.seed)
    return make_dataloader(dataset, 6, sampler=sampler, num_workers=0, seed=settings.seed)


def run_settings(run: UpstreamRun) -> dict[str, Any]:
    """What decides a run's figures (paths as strings): a finished run with the same settings is reused."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(run).items()}


def finished_report(run: UpstreamRun) -> dict[str, Any] | None:
    """The report of a finished run of exactly these settings in run_dpath, else None (runs recorded
    before the settings were, or with other settings, train again)."""
    fpath = run.run_dpath / "upstream_training.json"
    if not fpath.is_file():
        return None
    report = json.loads(fpath.read_text())
    return report if report.get("settings") == run_settings(run) else None


def run_upstream(run: UpstreamRun) -> dict[str, Any]:
    if (report := finished_report(run)) is not None:
        print(f"{run.run_dpath}: finished with these settings, reused")
        return report
    dpath = check_upstream_dpath(str(run.upstream_dpath))
    kw = constructor_kwargs("tiny", run.image_size, upstream_layout(dpath))
    common = {"layout": kw["layout"], "tokenizer": kw["tokenizer"], "maskgit": kw["maskgit"], "tdce": kw["tdce"], "threads": run.threads,
              "seed": run.seed, "batch": run.batch_size, "frames": run.num_frames, "num_actions": kw["num_actions"],
              "warmup_steps": run.warmup_steps,
              "weight_decay": run.weight_decay, "grad_clip": run.grad_clip}  # fmt: skip
    settings = EvalSettings(inference_method="one_go", inference_steps=run.inference_steps,
                            temperature=run.temperature, num_sequences=run.num_sequences, num_gifs=2)  # fmt: skip
    run.run_dpath.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(run.threads)
    with tempfile.TemporaryDirectory(dir=run.run_dpath) as scratch, UpstreamWorker(dpath) as worker:
        scratch = Path(scratch)
        write_training_windows(run, scratch)
        schedule = {"tokenizer": (run.tokenizer_min, run.tokenizer_lr_max, run.tokenizer_lr_min),
                    "genie_redux_guided": (run.dynamics_min, run.lr_max, run.lr_min)}  # fmt: skip
        training = {
            kind: worker.request(
                "train_for",
                kind=kind,
                minutes=minutes,
                lr_max=lr_max,
                lr_min=lr_min,
                data_dpath=str(scratch),
                **common,
            )  # fmt: skip
            for kind, (minutes, lr_max, lr_min) in schedule.items()
        }
        loader = test_loader(run, settings)
        model = UpstreamWorldModel(worker, kw["num_actions"], scratch, run.num_frames)
        result = evaluate(model, loader, settings, EnvTable.of_dataset(loader.dataset), show_progress=True)
    result.settings.update(upstream=f"{dpath} ({upstream_revision(dpath)})", dataset=str(run.test_store_dpath),
                           split=run.test_split)  # fmt: skip
    result.notes.append(
        "upstream GenieRedux-G, trained and sampled by its own code (benchmarks/upstream_fidelity.py)"
    )
    write_reports(result, run.run_dpath / f"eval_one_go_t{run.temperature:g}")
    report = {"upstream": result.settings["upstream"], "mismatches": kw["mismatches"], **training,
              "settings": run_settings(run)}  # fmt: skip
    atomic_write_json(run.run_dpath / "upstream_training.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"] and len(argv) == 2:
        # `--check DPATH`: start upstream's models' worker and stop; experiments/fidelity.py asks this before it
        # trains anything, so a checkout that cannot run here fails in seconds, not after our arms' minutes
        with UpstreamWorker(Path(argv[1])):
            pass
        print(f"upstream GenieRedux at {argv[1]} runs here")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("upstream-dpath", "store", "test-store", "run-dpath"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--test-split", default="all")
    for name, default in (("seed", 0), ("num-sequences", 48), ("image-size", 32), ("batch-size", 8),
                          ("inference-steps", 25)):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    for name, default in (("tokenizer-min", 10.0), ("dynamics-min", 10.0), ("lr-max", 1e-3), ("lr-min", 1e-4),
                          ("tokenizer-lr-max", 1e-3), ("tokenizer-lr-min", 1e-4), ("temperature", 1.0)):  # fmt: skip
        parser.add_argument(f"--{name}", type=float, default=default)
    args = parser.parse_args(argv)
    run = UpstreamRun(args.upstream_dpath, args.store, args.test_store, args.test_split, args.run_dpath, args.seed,
                      args.tokenizer_min, args.dynamics_min, args.image_size, args.batch_size,
                      lr_max=args.lr_max, lr_min=args.lr_min, tokenizer_lr_max=args.tokenizer_lr_max,
                      tokenizer_lr_min=args.tokenizer_lr_min, num_sequences=args.num_sequences,
                      inference_steps=args.inference_steps, temperature=args.temperature)  # fmt: skip
    report = run_upstream(run)
    print(f"upstream: {report['upstream']}; tokenizer {report['tokenizer']['steps']} steps, "
          f"GenieRedux-G {report['genie_redux_guided']['steps']} steps; results in {run.run_dpath}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
