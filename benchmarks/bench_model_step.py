"""Training-step time (forward + backward + AdamW) and peak memory for the tokenizer and the guided
dynamics, batch 1 x 16 frames, in fp32 and CPU bf16 autocast, with and without activation checkpointing.

`python run.py bench model_step [presets=tiny,neurips] [models=tokenizer,genie_redux_guided] [steps=2]
[threads=2] [checkpointing=both] [precision=fp32,bf16] [loss_check_steps=30] [repeats=1]
[upstream_dpath=PATH] [tag=NAME]`
Results: block `model_step` (runs that include `neurips`) or `model_step_<presets>` (e.g. `model_step_tiny`);
beside upstream at `neurips` `model_step_vs_upstream`; `tag=NAME` appends `_NAME` (a study that must not replace
a standing block).
Each configuration runs in a fresh process so the peak RSS (ru_maxrss) is its own; `repeats` fresh
processes per configuration, figures are their medians. bf16 is `torch.autocast(device,
dtype=torch.bfloat16)` around the forward pass (weights and AdamW state stay fp32), which is what the
trainer's `train.mixed_precision=bf16` gives through Accelerate.
`loss_check_steps` > 0 also trains the `tiny` tokenizer and guided dynamics that many steps on one fixed
batch from the same initialisation in fp32 and bf16 and reports how closely the bf16 loss tracks fp32.
`upstream_dpath=` (a checkout of upstream GenieRedux, the user's) also times upstream's Tokenizer /
GenieReduxGuided at the preset's sizes doing the same step, each in its own fresh child process
(benchmarks/upstream.py), alternating with ours: ours, upstream, ours, upstream, ...; rows then carry
upstream's figures and the ratios. Without it the rows say "upstream not measured".
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import resource
import statistics
import time

from benchmarks import upstream
from common.errors import UserError

KINDS = ("tokenizer", "genie_redux_guided")
PRECISIONS = ("fp32", "bf16")


def forward_context(precision: str, device: str):  # noqa: ANN201 (a context manager)
    """bf16: autocast the forward only; the backward then runs each op in its forward's dtype."""
    import torch

    if precision == "bf16":
        return torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_steps(preset: str, kind: str, steps: int, checkpointing: bool, precision: str):  # noqa: ANN201
    """Build one model and run `steps` optimizer steps on a fixed batch -> (seconds, losses) per step."""
    import torch

    from models.presets import build

    torch.manual_seed(0)
    part = {"activation_checkpointing": checkpointing}
    model = build(
        kind, preset, **({"tokenizer": part} if kind == "tokenizer" else {"dynamics": part})
    ).train()
    size = model.config.image_size if kind == "tokenizer" else model.image_size
    frames = torch.rand(1, 16, 3, size, size)  # [B, T, 3, H, W]
    actions = torch.randint(0, 8, (1, 15))  # [B, T-1]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, losses = [], []
    for _ in range(steps):
        start = time.perf_counter()
        with forward_context(precision, "cpu"):
            out = model(frames) if kind == "tokenizer" else model(frames, actions)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(float(out.loss.detach()))
    return times, losses


def measure(
    preset: str, kind: str, steps: int, threads: int, checkpointing: bool, precision: str, queue: mp.Queue
) -> None:
    import torch

    torch.set_num_threads(threads)
    times, _ = train_steps(preset, kind, steps, checkpointing, precision)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    queue.put((statistics.median(times[1:] or times), peak_gb))  # the first step pays one-off allocations


def run_isolated(context, *args) -> tuple[float, float]:  # noqa: ANN001
    queue = context.Queue()
    proc = context.Process(target=measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def loss_tracking(steps: int, threads: int) -> str:
    """Tiny models, same init and batch: fp32 vs bf16 losses -> one sentence for the notes."""
    import torch

    torch.set_num_threads(threads)
    parts = []
    for kind in KINDS:
        fp32 = train_steps("tiny", kind, steps, False, "fp32")[1]
        bf16 = train_steps("tiny", kind, steps, False, "bf16")[1]
        worst = max(abs(a - b) / abs(a) for a, b in zip(fp32, bf16))
        parts.append(
            f"{kind}: loss {fp32[0]:.4g} -> {fp32[-1]:.4g} (fp32) vs {bf16[0]:.4g} -> {bf16[-1]:.4g} (bf16), "
            f"largest per-step relative gap {worst:.1%}"
        )
    return (
        f"bf16 loss tracking, tiny, {steps} steps on one fixed batch from the same init: "
        + "; ".join(parts)
        + "."
    )


def parse_options(options: dict[str, str]) -> dict:
    known = {
        "presets",
        "models",
        "steps",
        "threads",
        "checkpointing",
        "precision",
        "loss_check_steps",
        "repeats",
        "tag",
        "upstream_dpath",
    }
    unknown = set(options) - known
    if unknown:
        raise UserError(f"unknown model_step option(s) {sorted(unknown)}; use {sorted(known)}")
    modes = {"both": (False, True), "on": (True,), "off": (False,)}
    if options.get("checkpointing", "both") not in modes:
        raise UserError("checkpointing must be both, on or off, e.g. checkpointing=on")
    precisions = options.get("precision", "fp32,bf16").split(",")
    if not set(precisions) <= set(PRECISIONS):
        raise UserError(f"precision must be a comma list of {PRECISIONS}, got {precisions}")
    kinds = options.get("models", ",".join(KINDS)).split(",")
    if not set(kinds) <= set(KINDS):
        raise UserError(f"models must be a comma list of {KINDS}, got {kinds}")
    if int(options.get("repeats", "1")) < 1:
        raise UserError("repeats must be >= 1, e.g. repeats=3")
    return {
        "presets": options.get("presets", "tiny,neurips").split(","),
        "kinds": kinds,
        "steps": int(options.get("steps", "2")),
        "threads": int(options.get("threads", "2")),
        "modes": modes[options.get("checkpointing", "both")],
        "precisions": precisions,
        "loss_check_steps": int(options.get("loss_check_steps", "30")),
        "repeats": int(options.get("repeats", "1")),
        "tag": options.get("tag", ""),
        "upstream_dpath": (
            upstream.check_upstream_dpath(options["upstream_dpath"]) if "upstream_dpath" in options else None
        ),
    }


def measure_group(context, opts: dict, preset: str, kind: str, precision: str) -> tuple[dict, list]:  # noqa: ANN001
    """`repeats` rounds of: ours (each checkpointing mode), then upstream, each a fresh process.

    -> ({ckpt: [(s/step, peak GB) per round]}, [(s/step, peak GB) of upstream per round]).
    """
    ours: dict[bool, list] = {ckpt: [] for ckpt in opts["modes"]}
    theirs = []
    for _ in range(opts["repeats"]):
        for ckpt in opts["modes"]:
            ours[ckpt].append(
                run_isolated(context, preset, kind, opts["steps"], opts["threads"], ckpt, precision)
            )
        if opts["upstream_dpath"] is not None:
            theirs.append(
                upstream.train_step(
                    opts["upstream_dpath"], preset, kind, opts["steps"], opts["threads"], precision, 1, 16
                )
            )
    return ours, theirs


def make_row(preset: str, kind: str, ckpt: bool, precision: str, ours: list, theirs: list) -> dict:
    """Medians over the rounds; with upstream figures the ratios, else "upstream not measured"."""
    seconds = statistics.median(s for s, _ in ours)
    peak_gb = statistics.median(g for _, g in ours)
    row = {
        "preset": preset,
        "model": kind,
        "act_ckpt": ckpt,
        "precision": precision,
        "s_per_step": seconds,
        "peak_rss_gb": peak_gb,
    }
    if not theirs:
        return {**row, "upstream": upstream.NOT_MEASURED}
    up_seconds = statistics.median(s for s, _ in theirs)
    up_gb = statistics.median(g for _, g in theirs)
    return {
        **row,
        "upstream_s_per_step": up_seconds,
        "upstream_peak_rss_gb": up_gb,
        "speedup_vs_upstream": up_seconds / seconds,
        "mem_frac_of_upstream": peak_gb / up_gb,
    }


def main(**options: str) -> int:
    from tqdm import tqdm

    from benchmarks.results_md import publish

    opts = parse_options(options)
    context = mp.get_context("spawn")
    groups = [
        (preset, kind, precision)
        for preset in opts["presets"]
        for kind in opts["kinds"]
        for precision in opts["precisions"]
    ]
    measured = {}
    for preset, kind, precision in tqdm(groups, desc="model_step"):
        ours, theirs = measure_group(context, opts, preset, kind, precision)
        for ckpt in opts["modes"]:
            measured[preset, kind, ckpt, precision] = make_row(
                preset, kind, ckpt, precision, ours[ckpt], theirs
            )
            tqdm.write(str(measured[preset, kind, ckpt, precision]))
    rows = [
        measured[preset, kind, ckpt, precision]
        for preset in opts["presets"]
        for kind in opts["kinds"]
        for ckpt in opts["modes"]
        for precision in opts["precisions"]
    ]
    notes = (
        f"batch 1 x 16 frames, fwd+bwd+AdamW, median of the steps after the first ({opts['steps']} steps), "
        f"{opts['threads']} threads; bf16 = CPU autocast around the forward, fp32 weights and optimizer. "
        "Peak RSS of a fresh process (includes the Python/torch baseline, ~0.3 GB). "
        f"Medians over {opts['repeats']} fresh process(es) per configuration."
    )
    if opts["upstream_dpath"] is not None:
        notes += (
            " Upstream measured in the same run, alternating with ours (ours, upstream, ours, ...), same "
            "batch, steps, threads and precision (upstream has no activation checkpointing: one upstream "
            "figure serves both act_ckpt rows); speedup_vs_upstream = upstream s/step / ours, "
            "mem_frac_of_upstream = ours peak RSS / upstream's. "
        )
        notes += " ".join(upstream.adapter_notes(p, opts["upstream_dpath"]) for p in opts["presets"])
    else:
        notes += " Upstream not measured (pass upstream_dpath= to measure it beside ours)."
    if opts["loss_check_steps"] > 0:
        notes += " " + loss_tracking(opts["loss_check_steps"], opts["threads"])
    # a run without the neurips preset gets its own block, so a tiny check keeps the neurips figures; a run
    # beside upstream at neurips gets its own too (it measures other settings than the precision study)
    suffix = "" if "neurips" in opts["presets"] else "_" + "_".join(opts["presets"])
    if opts["upstream_dpath"] is not None and "neurips" in opts["presets"]:
        suffix += "_vs_upstream"
    if opts["tag"]:  # a study beside the standing blocks, e.g. tag=ckpt -> model_step..._ckpt
        suffix += f"_{opts['tag']}"
    publish(f"model_step{suffix}", rows, notes)
    return 0
