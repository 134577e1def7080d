"""World-model generation speed: seconds per generated frame at 16 frames of context, batch 1 and 8,
cached (past keys/values computed once) vs uncached (the whole window per MaskGIT step), for 1, 8
and 25 MaskGIT steps.

`python run.py bench generation_speed [preset=tiny] [batches=1,8] [steps=1,8,25] [repeats=3] [threads=2]`
"""

from __future__ import annotations

import time


def seconds_per_frame(wm, frames, actions, steps: int, repeats: int) -> float:
    import torch

    best = float("inf")
    for repeat in range(repeats):
        wm.reset(frames, actions)  # 15 prime frames: the generated frame is the 16th of the window
        start = time.perf_counter()
        wm.step(
            torch.zeros(frames.shape[0], dtype=torch.long),
            steps=steps,
            generator=torch.Generator().manual_seed(repeat),
        )
        best = min(best, time.perf_counter() - start)
    return best


def main(**options: str) -> int:
    import torch
    from tqdm import tqdm

    from benchmarks.recording import record
    from models.presets import build
    from models.world_model import WorldModel

    preset = options.get("preset", "tiny")
    batches = [int(b) for b in options.get("batches", "1,8").split(",")]
    step_counts = [int(s) for s in options.get("steps", "1,8,25").split(",")]
    repeats = int(options.get("repeats", "3"))
    torch.set_num_threads(int(options.get("threads", "2")))
    torch.manual_seed(0)
    model = build("genie_redux_guided", preset)
    context = model.dynamics.config.num_frames - 1
    size = model.image_size
    rows = []
    configs = [(b, s) for b in batches for s in step_counts]
    for batch, steps in tqdm(configs, desc="generation_speed"):
        frames = torch.rand(batch, context, 3, size, size)
        actions = torch.randint(0, 8, (batch, context - 1))
        cached = seconds_per_frame(WorldModel(model, use_cache=True), frames, actions, steps, repeats)
        uncached = seconds_per_frame(WorldModel(model, use_cache=False), frames, actions, steps, repeats)
        rows.append(
            {
                "preset": preset,
                "batch": batch,
                "maskgit_steps": steps,
                "cached_s_per_frame": cached,
                "uncached_s_per_frame": uncached,
                "speedup": uncached / cached,
            }
        )
    notes = (
        f"genie_redux_guided `{preset}`, context 16 frames (15 prime + the generated one), best of {repeats}; "
        "cached includes the extra pass that appends the final frame's keys/values and the incremental decode."
    )
    record(f"generation_speed_{preset}" if preset != "tiny" else "generation_speed", rows, notes)
    return 0
