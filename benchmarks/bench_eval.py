"""Evaluation throughput: sequences/s of the protocol with one_go vs autoregressive rollouts (tiny preset).

`python run.py bench eval [preset=tiny] [num_sequences=12] [batch_size=6] [steps=25] [device=cpu]`

Each protocol row runs `evaluate` exactly as `genie_redux eval` does (2 prime + 10 generated frames,
25 MaskGIT steps, metrics); "with ΔPSNR" adds the two paired random-action rollouts per batch. The
untrained model's numbers are meaningless here, only the time is measured. Ratios are against
one_go without ΔPSNR in the same run.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.devices import synchronize
from benchmarks.results_md import publish
from data.store_synthetic import moving_squares, random_actions
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.settings import EvalSettings


def synthetic_batches(num_sequences: int, batch_size: int, num_frames: int, image_size: int) -> list[dict]:
    batches = []
    for start in range(0, num_sequences, batch_size):
        seeds = range(start, min(start + batch_size, num_sequences))
        frames = torch.from_numpy(
            np.stack([moving_squares(num_frames, image_size, s) for s in seeds])
        )  # [B, T, H, W, 3]
        actions = torch.stack([torch.from_numpy(random_actions(num_frames, s)) for s in seeds])  # [B, T-1]
        batches.append(
            {"frames": frames, "actions": actions, "env_id": torch.zeros(len(seeds), dtype=torch.long)}
        )
    return batches


def time_protocol(world_model, batches: list[dict], settings: EvalSettings, device: torch.device) -> float:
    envs = EnvTable(("synthetic",))
    evaluate(world_model, batches[:1], settings, envs, device=device)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    result = evaluate(world_model, batches, settings, envs, device=device)
    synchronize(device)
    return result.num_sequences / (time.perf_counter() - start)


def main(**options: str) -> int:
    from models.presets import build
    from models.world_model import WorldModel

    preset = options.get("preset", "tiny")
    num_sequences, batch_size = int(options.get("num_sequences", 12)), int(options.get("batch_size", 6))
    steps = int(options.get("steps", 25))
    device = torch.device(options.get("device", "cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    world_model = WorldModel(build("genie_redux_guided", preset).to(device))
    image_size = world_model.model.image_size
    base = EvalSettings(
        num_first_frames=2, sample_num_frames=10, inference_steps=steps, num_sequences=num_sequences
    )
    batches = synthetic_batches(num_sequences, batch_size, base.num_frames, image_size)
    rows, reference = [], None
    for with_delta in (False, True):
        for method in ("one_go", "autoregressive"):
            # delta_psnr_frame beyond the horizon switches the two extra ΔPSNR rollouts off.
            settings = EvalSettings(
                **{**base.as_dict(), "inference_method": method, "delta_psnr_frame": 4 if with_delta else 11}
            )
            rate = time_protocol(world_model, batches, settings, device)
            reference = reference or rate
            rows.append(
                {
                    "method": method,
                    "ΔPSNR rollouts": with_delta,
                    "sequences/s": rate,
                    "generated frames/s": rate * 10,
                    "vs one_go w/o ΔPSNR": rate / reference,
                }
            )
    notes = (
        f"preset {preset}, {image_size} px, batch {batch_size}, {num_sequences} sequences, 2 prime + 10 generated "
        f"frames, {steps} MaskGIT steps, device {device}. one_go samples all 10 frames in 25 steps jointly; "
        "autoregressive runs 25 steps per frame on the new frame's tokens with cached context."
    )
    publish("eval", rows, notes)
    return 0
