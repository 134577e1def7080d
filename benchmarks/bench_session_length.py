"""Does a generated frame cost more the longer a session runs? Seconds per `WorldModel.step` around
frame 20 and around frame 1000 of one session, same run, and the ratio between them.

`python run.py bench session_length [preset=tiny] [image_size=] [batch=1] [steps=1] [frames=20,1000]
[window=9] [threads=2]`

Temporal attention uses relative time, so when the context window (16 frames) slides, the oldest
cached keys/values are dropped and nothing is recomputed: the ratio should be ~1. Each figure is the
median over `window` consecutive steps centred on the named frame (untrained weights: the cost does not
depend on what is generated).
"""

from __future__ import annotations

import statistics
import time

from common.errors import UserError

OPTIONS = {"preset", "image_size", "batch", "steps", "frames", "window", "threads"}


def parse_options(options: dict[str, str]) -> dict:
    unknown = set(options) - OPTIONS
    if unknown:
        raise UserError(f"unknown session_length option(s) {sorted(unknown)}; use {sorted(OPTIONS)}")
    opts = {
        "preset": options.get("preset", "tiny"),
        "image_size": int(options["image_size"]) if options.get("image_size") else None,
        "batch": int(options.get("batch", "1")),
        "steps": int(options.get("steps", "1")),
        "frames": sorted(int(v) for v in options.get("frames", "20,1000").split(",")),
        "window": int(options.get("window", "9")),
        "threads": int(options.get("threads", "2")),
    }
    if opts["frames"][0] <= opts["window"] // 2 + 1:
        raise UserError(f"frames must be past the prime frame and half the window; got {opts['frames']}")
    return opts


def step_times(world_model, batch: int, steps: int, frames: list[int], window: int) -> dict[int, float]:  # noqa: ANN001
    """Median step seconds around each frame index in `frames` (frame 0 = the one prime frame)."""
    import torch

    size = world_model.tokenizer.config.image_size
    generator = torch.Generator().manual_seed(0)
    world_model.reset(torch.rand(batch, 1, 3, size, size, generator=generator))
    wanted = {f: range(f - window // 2, f + window // 2 + 1) for f in frames}
    times: dict[int, list[float]] = {f: [] for f in frames}
    for frame_index in range(1, max(frames) + window // 2 + 1):
        actions = torch.randint(0, world_model.num_actions, (batch,), generator=generator)
        start = time.perf_counter()
        world_model.step(actions, steps=steps, generator=generator)
        elapsed = time.perf_counter() - start
        for f, indices in wanted.items():
            if frame_index in indices:
                times[f].append(elapsed)
    return {f: statistics.median(values) for f, values in times.items()}


def main(**options: str) -> int:
    import torch

    from benchmarks.results_md import publish
    from models.presets import build
    from models.world_model import WorldModel

    opts = parse_options(options)
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    overrides = {"image_size": opts["image_size"]} if opts["image_size"] else {}
    world_model = WorldModel(build("genie_redux_guided", opts["preset"], **overrides))
    seconds = step_times(world_model, opts["batch"], opts["steps"], opts["frames"], opts["window"])
    first = opts["frames"][0]
    rows = [
        {
            "preset": opts["preset"],
            "image_size": world_model.tokenizer.config.image_size,
            "batch": opts["batch"],
            "maskgit_steps": opts["steps"],
            "frame": frame,
            "s_per_step": value,
            f"vs_frame_{first}": value / seconds[first],
        }
        for frame, value in seconds.items()
    ]
    notes = (
        f"one session of {max(opts['frames']) + opts['window'] // 2} generated frames after 1 prime frame, "
        f"context window {world_model.max_frames} frames; median of {opts['window']} steps around each frame, "
        f"{opts['threads']} threads, fp32, untrained genie_redux_guided weights."
    )
    publish(
        f"session_length_{opts['preset']}" + (f"_{opts['image_size']}px" if opts["image_size"] else ""),
        rows,
        notes,
    )
    return 0
