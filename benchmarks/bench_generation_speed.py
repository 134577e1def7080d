"""World-model generation speed: seconds per generated frame at 16 frames of context, cached (past
keys/values computed once) vs uncached (the whole window re-run per MaskGIT step), per MaskGIT step count.

`python run.py bench generation_speed [preset=tiny] [image_size=] [batches=1,8] [steps=1,8,25]
[uncached_steps=1,8] [one_go_steps=1,8,25] [repeats=3] [threads=2] [upstream_dpath=PATH]`

Uncached generation costs one full-window dynamics pass per MaskGIT step plus a fixed part (the window
decode). At the `neurips` size a 25-step uncached frame takes minutes on CPU, so the uncached path is run
end to end only for `uncached_steps` at batch 1 and for 1 step at larger batches; other step counts are
extrapolated as `t(1 step) + (steps - 1) * t(one full-window pass)`, with the pass timed on its own at the
same batch. The `uncached_source` column says which numbers were measured; batch 1 checks the linear
model against a measured multi-step run (`uncached_pred_error`).

`upstream_dpath=` (a checkout of upstream GenieRedux, the user's) also times upstream's GenieReduxGuided
built at the preset's sizes in a child process (benchmarks/upstream.py): one frame after the same 15
prime frames, as one iteration of its frame-by-frame loop (`Dynamics.sample` over the window at the same
MaskGIT steps, then decoding the window; tokenizing the prime frames is not timed, as our priming is not).
Each cached timing alternates with an upstream one (ours, upstream, ours, ...; `repeats` each, medians);
rows then carry `upstream_s_per_frame` and `cached_vs_upstream` (upstream / cached). Without it the rows
say "upstream not measured".

one_go (`one_go_steps=`, empty to skip): the papers' evaluation mode, 2 prime frames then 10 frames refined
jointly, timed whole per call and divided by 10, ours (`WorldModel.rollout(method="one_go")`) alternating
with upstream's one-go sampler (`GenieReduxGuided.sample`) when `upstream_dpath=` is given.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from benchmarks import upstream as upstream_side
from common.errors import UserError

# the papers' evaluation mode: 2 prime frames, then 10 frames refined jointly (one_go)
ONE_GO_PRIME, ONE_GO_FRAMES = 2, 10
OPTIONS = {
    "one_go_steps",
    "preset",
    "image_size",
    "batches",
    "steps",
    "uncached_steps",
    "repeats",
    "threads",
    "upstream_dpath",
}


def timed_step(wm, frames, actions, steps: int, repeats: int, first_seed: int = 0) -> float:  # noqa: ANN001
    """Median seconds of one `step` after `reset` (priming is not timed), over `repeats` runs."""
    import torch

    times = []
    for repeat in range(first_seed, first_seed + repeats):
        wm.reset(frames, actions)  # 15 prime frames: the generated frame is the 16th of the window
        start = time.perf_counter()
        wm.step(
            torch.zeros(frames.shape[0], dtype=torch.long),
            steps=steps,
            generator=torch.Generator().manual_seed(repeat),
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_one_go(wm, batch: int, steps: int, seed: int) -> float:  # noqa: ANN001
    """Seconds per generated frame of one one_go rollout: ONE_GO_PRIME random frames -> ONE_GO_FRAMES
    frames refined jointly, timed whole (prime tokenization and decoding included, as upstream's)."""
    import torch

    size = wm.model.image_size
    generator = torch.Generator().manual_seed(batch)
    prime = torch.rand(batch, ONE_GO_PRIME, 3, size, size, generator=generator)  # [B, T0, 3, H, W]
    # [B, T0-1 + N]: the actions between the prime frames, then one per generated frame
    actions = torch.randint(0, wm.num_actions, (batch, ONE_GO_PRIME - 1 + ONE_GO_FRAMES), generator=generator)
    start = time.perf_counter()
    wm.rollout(
        prime, actions[:, ONE_GO_PRIME - 1 :], method="one_go", steps=steps, seed=seed,
        prime_actions=actions[:, : ONE_GO_PRIME - 1],
    )  # fmt: skip
    return (time.perf_counter() - start) / ONE_GO_FRAMES


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
        "one_go_steps": ints("one_go_steps", "1,8,25") if options.get("one_go_steps", "x") else [],
        "repeats": int(options.get("repeats", "3")),
        "threads": int(options.get("threads", "2")),
        "upstream_dpath": (
            upstream_side.check_upstream_dpath(options["upstream_dpath"])
            if "upstream_dpath" in options
            else None
        ),
    }
    if 1 not in opts["uncached_steps"]:
        raise UserError(
            "uncached_steps must include 1 (the base of the extrapolation), e.g. uncached_steps=1,8"
        )
    return opts


def measure_batch(model, batch: int, opts: dict, upstream=None) -> list[dict]:  # noqa: ANN001
    """Cached and uncached s/frame at one batch size, for every requested MaskGIT step count.

    `upstream(batch, context, steps, seed) -> seconds` (or None): timed alternately with each cached run.
    """
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
        if upstream is None:
            cached = timed_step(cached_wm, frames, actions, steps, repeats)
        else:
            cached_times, upstream_times = [], []
            for repeat in range(repeats):  # ours, upstream, ours, upstream, ...
                cached_times.append(timed_step(cached_wm, frames, actions, steps, 1, first_seed=repeat))
                upstream_times.append(upstream(batch, context, steps, repeat))
            cached = statistics.median(cached_times)
            upstream_s = statistics.median(upstream_times)
        predicted = uncached[1] + (steps - 1) * per_pass
        measured = uncached.get(steps)
        uncached_s = measured if measured is not None else predicted
        versus = (
            {"upstream": upstream_side.NOT_MEASURED}
            if upstream is None
            else {"upstream_s_per_frame": upstream_s, "cached_vs_upstream": upstream_s / cached}
        )
        if steps in opts["one_go_steps"]:
            versus |= one_go_columns(cached_wm, batch, steps, repeats, upstream)
        rows.append(
            {
                "batch": batch,
                "maskgit_steps": steps,
                "cached_s_per_frame": cached,
                "uncached_s_per_frame": uncached_s,
                "uncached_source": "measured" if measured is not None else "extrapolated",
                "uncached_pred_error": (predicted - measured) / measured if measured and steps > 1 else "",
                "speedup": uncached_s / cached,
                **versus,
            }
        )
    return rows


def one_go_columns(wm, batch: int, steps: int, repeats: int, upstream) -> dict:  # noqa: ANN001
    """Our one_go s/frame, and upstream's one-go sampler's alternating with it when measured."""
    ours, theirs = [], []
    for repeat in range(repeats):  # ours, upstream, ours, upstream, ...
        ours.append(timed_one_go(wm, batch, steps, repeat))
        if upstream is not None:
            theirs.append(upstream.one_go(batch, steps, repeat))
    columns = {"one_go_s_per_frame": statistics.median(ours)}
    if upstream is not None:
        upstream_s = statistics.median(theirs)
        columns |= {
            "upstream_one_go_s_per_frame": upstream_s,
            "one_go_vs_upstream": upstream_s / columns["one_go_s_per_frame"],
        }
    return columns


class UpstreamGeneration:
    """Upstream's guided world model in one child process: `self(batch, context, steps, seed)` -> s/frame."""

    def __init__(self, dpath, preset: str, image_size: int | None, threads: int) -> None:  # noqa: ANN001
        self.kw = upstream_side.constructor_kwargs(preset, image_size, upstream_side.upstream_layout(dpath))
        self.worker = upstream_side.UpstreamWorker(dpath)
        try:
            self.worker.request(
                "build_guided",
                layout=self.kw["layout"],
                tokenizer=self.kw["tokenizer"],
                maskgit=self.kw["maskgit"],
                tdce=self.kw["tdce"],
                threads=threads,
            )
        except BaseException:
            self.worker.close()
            raise

    def __call__(self, batch: int, context: int, steps: int, seed: int) -> float:
        reply = self.worker.request(
            "gen_frame",
            batch=batch,
            context=context,
            steps=steps,
            seed=seed,
            num_actions=self.kw["num_actions"],
        )
        return reply["seconds"]

    def one_go(self, batch: int, steps: int, seed: int) -> float:
        """Upstream's one-go sampler, seconds per generated frame (same prime/frames as ours)."""
        reply = self.worker.request(
            "gen_one_go", batch=batch, prime=ONE_GO_PRIME, frames=ONE_GO_FRAMES, steps=steps, seed=seed,
            num_actions=self.kw["num_actions"],
        )  # fmt: skip
        return reply["seconds"] / ONE_GO_FRAMES

    def __enter__(self) -> UpstreamGeneration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.close()


def main(**options: str) -> int:
    import torch
    from tqdm import tqdm

    from benchmarks.results_md import publish
    from models.presets import build

    opts = parse_options(options)
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    overrides = {"image_size": opts["image_size"]} if opts["image_size"] else {}
    model = build("genie_redux_guided", opts["preset"], **overrides)
    size, preset = model.image_size, opts["preset"]
    rows = []
    with contextlib.ExitStack() as stack:
        upstream = None
        if opts["upstream_dpath"] is not None:
            upstream = stack.enter_context(
                UpstreamGeneration(opts["upstream_dpath"], preset, opts["image_size"], opts["threads"])
            )
        for batch in tqdm(opts["batches"], desc="generation_speed"):
            for row in measure_batch(model, batch, opts, upstream):
                rows.append({"preset": preset, "image_size": size, **row})
                tqdm.write(str(rows[-1]))
    tokens = model.dynamics.grid[0] * model.dynamics.grid[1]
    notes = (
        f"genie_redux_guided `{preset}` at {size} px ({tokens} tokens/frame), context 16 frames (15 prime + "
        f"the generated one), median of {opts['repeats']}, {opts['threads']} threads, fp32, priming not timed; "
        "cached includes the extra pass that appends the final frame's keys/values and the incremental decode. "
        f"Uncached rows marked `extrapolated` were NOT run end to end: t(1 step) + (steps-1) x one timed "
        f"full-window pass at the same batch; measured end to end: {opts['uncached_steps']} steps at batch 1, "
        "1 step at larger batches."
    )
    if opts["one_go_steps"]:
        notes += (
            f" one_go columns (MaskGIT steps {opts['one_go_steps']}): {ONE_GO_PRIME} random prime frames -> "
            f"{ONE_GO_FRAMES} frames refined jointly (the papers' evaluation mode), whole call timed (prime "
            f"tokenization and decoding included) / {ONE_GO_FRAMES}"
            + (
                ", alternating with upstream's GenieReduxGuided.sample doing the same."
                if opts["upstream_dpath"]
                else "."
            )
        )
    if opts["upstream_dpath"] is not None:
        notes += (
            " Upstream measured in the same run, each timing alternating with a cached one: one frame after "
            "the same 15 prime frames as one iteration of its frame-by-frame loop (Dynamics.sample over the "
            "16-frame window at the same MaskGIT steps + decoding the window), prime tokenization not timed; "
            "cached_vs_upstream = upstream s/frame / cached s/frame. "
            + upstream_side.adapter_notes(preset, opts["upstream_dpath"], opts["image_size"])
        )
    else:
        notes += " Upstream not measured (pass upstream_dpath= to measure it beside ours)."
    suffix = "" if preset == "tiny" and not opts["image_size"] else f"_{preset}_{size}px"
    if opts["upstream_dpath"] is not None and suffix:  # beside upstream: its own block, the cache study stays
        suffix += "_vs_upstream"
    publish(f"generation_speed{suffix}", rows, notes)
    return 0
