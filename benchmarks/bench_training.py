"""Training throughput on CPU for the tiny tokenizer and tiny GenieRedux-G: samples/s and the share
of step time spent waiting for the data loader (target < 5 %), measured in one run.

    python run.py bench training [steps=60] [batch_size=8] [num_workers=2] [image_size=16]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from accelerate.state import AcceleratorState

from benchmarks.results_md import publish
from common.config import compose_config
from data.store_synthetic import write_synthetic_store
from models.checkpoint import final_model_dpath
from training import cli
from training.run_log import read_metrics
from training.trainer import Trainer


def run_config(config: str, root: Path, steps: int, batch_size: int, num_workers: int, *extra: str) -> dict:
    args = [
        f"config={config}", "model=tiny", f"train.dataset_root_dpath={root}", "train.dataset_name=squares",
        f"run_dpath={root / config}", "train.num_frames=16", f"train.batch_size={batch_size}",
        "train.num_processes=1", "train.grad_accum=1",
        f"train.num_workers={num_workers}", f"train.num_train_steps={steps}", f"train.log_every_steps={steps // 3}",
        "train.validation.every_steps=0", f"train.checkpoint.every_steps={steps}", *extra,
    ]  # fmt: skip
    Trainer(compose_config(cli.CONFIG_DPATH, "genie_redux", args), args).run()
    AcceleratorState._reset_state(reset_partial_state=True)
    # The first window includes warm-up (allocator, worker start); report the later ones.
    perf = [r for r in read_metrics(root / config / "metrics.jsonl") if "perf/samples_per_s" in r][1:]
    return {
        "model": f"tiny {config}",
        "batch": batch_size,
        "workers": num_workers,
        "samples_per_s": sum(r["perf/samples_per_s"] for r in perf) / len(perf),
        "data_wait_share_pct": 100 * sum(r["perf/data_wait_share"] for r in perf) / len(perf),
    }


def main(**options: str) -> int:
    steps = int(options.get("steps", 60))
    batch_size = int(options.get("batch_size", 8))
    num_workers = int(options.get("num_workers", 2))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_store(
            root / "squares", ["envA", "envB"], num_sessions=12, num_frames=64, image_size=16
        )
        rows = [run_config("tokenizer", root, steps, batch_size, num_workers)]
        tokenizer_dpath = final_model_dpath(root / "tokenizer")
        rows.append(
            run_config(
                "genie_redux_guided",
                root,
                steps,
                batch_size,
                num_workers,
                f"tokenizer_dpath={tokenizer_dpath}",
            )
        )
    notes = (
        f"{steps} optimizer steps per model, 16-frame windows of 16 px synthetic frames, fp32, DataLoader with "
        f"{num_workers} workers; data wait = time blocked in next(loader) / step time (first log window dropped)."
    )
    publish("training", rows, notes)
    print(json.dumps(rows, indent=2))
    return 0
