"""World-model generation speed: seconds per generated frame at 16 frames of context, cached (past
keys/values computed once) vs uncached (the whole window re-run per MaskGIT step), per MaskGIT step count.

`python run.py bench generation_speed [preset=tiny] [image_size=] [batches=1,8] [steps=1,8,25]
[uncached_steps=1,8] [repeats=3] [threads=2]`

Uncached generation costs one full-window dynamics pass per MaskGIT step plus a fixed part (the window
decode). At the `neurips` size a 25-step uncached frame takes minutes on CPU, so the uncached path is run
end to end only for `uncached_steps` at batch 1 and for 1 step at larger batches; other step counts are
extrapolated as `t(1 step) + (steps - 1) * t(one full-window pass)`, with the pass timed on its own at the
same batch. The `uncached_source` column says which numbers were measured; batch 1 checks the linear
model against a measured multi-step run (`uncached_pred_error`).
"""

from __future__ import annotations

import statistics
import time

from common.errors import UserError

OPTIONS = {"preset", "image_size", "batches", "steps", "uncached_steps", "repeats", "threads"}


def timed_step(wm, frames, actions, steps: int, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of one `step` after `reset` (priming is not timed), over `repeats` runs."""
    import torch

    times = []
    for repeat in range(repeats):
        wm.reset(frames, actions)  # 15 prime frames: the generated frame is the 16th of the window
        start = time.perf_counter()
        wm.step(
            torch.zeros(frames.shape[0], dtype=torch.long),
            steps=steps,
            generator=torch.Generator().manual_seed(repeat),
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_uncached_pass(wm, frames, actions, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of one full-window dynamics pass: the work an uncached MaskGIT step adds."""
    import torch

    wm.reset(frames, actions)
    b = frames.shape[0]
    h, w = wm.dynamics.grid
    masked = torch.full((b, 1, h, w), wm.dynamics.mask_id, dtype=torch.long)  # [B, 1, h, w]: all masked
    action_embeds = wm.model.embed_actions(torch.zeros(b, 1, dtype=torch.long))  # [B, 1, D]
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            wm.new_frame_logits(masked, action_embeds, None)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_options(options: dict[str, str]) -> dict:
    unknown = set(options) - OPTIONS
    if unknown:
        raise UserError(f"unknown generation_speed option(s) {sorted(unknown)}; use {sorted(OPTIONS)}")
    ints = lambda key, default: [int(v) for v in options.get(key, default).split(",")]  # noqa: E731
    opts = {
        "preset": options.get("preset", "tiny"),
        "image_size": int(options["image_size"]) if options.get("image_size") else None,
        "batches": ints("batches", "1,8"),
        "steps": ints("steps", "1,8,25"),
        "uncached_steps": ints("uncached_steps", "1,8"),
        "repeats": int(options.get("repeats", "3")),
        "threads": int(options.get("threads", "2")),
    }
    if 1 not in opts["uncached_steps"]:
        raise UserError(
            "uncached_steps must include 1 (the base of the extrapolation), e.g. uncached_steps=1,8"
        )
    return opts


def measure_batch(model, batch: int, opts: dict) -> list[dict]:  # noqa: ANN001
    """Cached and uncached s/frame at one batch size, for every requested MaskGIT step count."""
    import torch

    from models.world_model import WorldModel

    context = model.dynamics.config.num_frames - 1
    frames = torch.rand(batch, context, 3, model.image_size, model.image_size)  # [B, T0, 3, H, W]
    actions = torch.randint(0, model.num_actions, (batch, context - 1))  # [B, T0-1]
    cached_wm, uncached_wm = WorldModel(model, use_cache=True), WorldModel(model, use_cache=False)
    repeats = opts["repeats"]
    measured_steps = opts["uncached_steps"] if batch == 1 else [1]
    uncached = {s: timed_step(uncached_wm, frames, actions, s, repeats) for s in measured_steps}
    per_pass = timed_uncached_pass(uncached_wm, frames, actions, repeats)
    rows = []
    for steps in opts["steps"]:
        cached = timed_step(cached_wm, frames, actions, steps, repeats)
        predicted = uncached[1] + (steps - 1) * per_pass
        measured = uncached.get(steps)
        uncached_s = measured if measured is not None else predicted
        rows.append(
            {
                "batch": batch,
                "maskgit_steps": steps,
                "cached_s_per_frame": cached,
                "uncached_s_per_frame": uncached_s,
                "uncached_source": "measured" if measured is not None else "extrapolated",
                "uncached_pred_error": (predicted - measured) / measured if measured and steps > 1 else "",
                "speedup": uncached_s / cached,
            }
        )
    return rows


def main(**options: str) -> int:
    import torch
    from tqdm import tqdm

    from benchmarks.recording import record
    from models.presets import build

    opts = parse_options(options)
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    overrides = {"image_size": opts["image_size"]} if opts["image_size"] else {}
    model = build("genie_redux_guided", opts["preset"], **overrides)
    size, preset = model.image_size, opts["preset"]
    rows = []
    for batch in tqdm(opts["batches"], desc="generation_speed"):
        for row in measure_batch(model, batch, opts):
            rows.append({"preset": preset, "image_size": size, **row, "upstream": "upstream not measured"})
            tqdm.write(str(rows[-1]))
    tokens = model.dynamics.grid[0] * model.dynamics.grid[1]
    notes = (
        f"genie_redux_guided `{preset}` at {size} px ({tokens} tokens/frame), context 16 frames (15 prime + "
        f"the generated one), median of {opts['repeats']}, {opts['threads']} threads, fp32, priming not timed; "
        "cached includes the extra pass that appends the final frame's keys/values and the incremental decode. "
        f"Uncached rows marked `extrapolated` were NOT run end to end: t(1 step) + (steps-1) x one timed "
        f"full-window pass at the same batch; measured end to end: {opts['uncached_steps']} steps at batch 1, "
        "1 step at larger batches. Upstream GenieRedux is not measured by this script."
    )
    suffix = "" if preset == "tiny" and not opts["image_size"] else f"_{preset}_{size}px"
    record(f"generation_speed{suffix}", rows, notes)
    return 0
