"""Where a training step's time goes: ours and upstream's tokenizer / GenieRedux-G step profiled the same way.

`python run.py bench profile_step [preset=tiny] [models=tokenizer,genie_redux_guided] [batch=1]
[threads=1] [upstream_dpath=PATH]`

Each (side, model) runs in a fresh process: one untimed step, one timed step (wall seconds), FLOPs of
forward + backward counted by `torch.utils.flop_counter.FlopCounterMode`, then one step under
`torch.profiler` (`profile_training_step` in benchmarks/upstream_worker.py, the same function for both
sides). Rows: seconds per step, GFLOP per step, achieved GFLOP/s, the same process's rate on one large
plain fp32 matmul (4096x512 @ 512x2048) and the step's share of it, the GFLOP of the frozen tokenizer's
encoding inside a world-model step (counted alone), the forward / backward / optimizer seconds, and each op family's share of the profiled time (self time of its ops): optimizer (AdamW's
foreach ops), matmul (linear layers, bmm), convolution, attention (scaled-dot-product kernels, softmax), norm,
activation, data movement (copies, cat, index), elementwise, views (no arithmetic: dispatch cost), other. The notes list each side's largest ops. Speeds compare at equal FLOPs only when the
GFLOP columns agree: the models differ where upstream's constructors impose it (benchmarks/upstream.py).
Block `profile_step_<preset>`.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module

from benchmarks import upstream as upstream_side
from common.errors import UserError

KINDS = ("tokenizer", "genie_redux_guided")
OPTIONS = {"preset", "models", "batch", "threads", "upstream_dpath"}
FRAMES = 16
# op family -> substrings of profiler op names (first match wins, in this order)
FAMILIES = {
    "attention": ("scaled_dot_product", "softmax", "flash_attention", "_efficient_attention"),
    "optimizer": ("optimizer", "_foreach"),
    "matmul": ("addmm", "aten::mm", "bmm", "matmul", "aten::linear", "baddbmm", "einsum"),
    "convolution": ("convolution",),
    "norm": ("layer_norm", "group_norm", "batch_norm", "aten::norm"),
    "activation": ("gelu", "silu", "relu", "tanh", "sigmoid"),
    "data movement": (
        "copy_",
        "aten::cat",
        "index",
        "gather",
        "scatter",
        "clone",
        "contiguous",
        "embedding",
        "masked",
        "where",
        "to_copy",
        "aten::fill_",
        "zero_",
        "aten::empty",
    ),  # fmt: skip
    "elementwise": (
        "aten::add",
        "aten::mul",
        "aten::sub",
        "aten::div",
        "aten::exp",
        "aten::pow",
        "aten::sqrt",
        "aten::neg",
        "lerp",
        "addcmul",
        "addcdiv",
        "aten::sum",
        "aten::mean",
        "aten::clamp",
        "aten::abs",
        "aten::sign",
        "aten::log",
        "aten::rsub",
    ),  # fmt: skip
    # no arithmetic: the price of each op dispatch (many small ops show up here)
    "views": (
        "aten::view",
        "reshape",
        "transpose",
        "permute",
        "as_strided",
        "aten::t",
        "unsqueeze",
        "squeeze",
        "expand",
        "split",
        "unbind",
        "select",
        "slice",
        "aten::detach",
        "aten::alias",
    ),  # fmt: skip
}


def family(op_name: str) -> str:
    name = op_name.lower()
    for fam, needles in FAMILIES.items():
        if any(needle in name for needle in needles):
            return fam
    return "other"


def family_shares(ops: list[list]) -> dict[str, float]:
    """[[op name, self seconds], ...] -> {family: share of the summed self time}."""
    totals = {fam: 0.0 for fam in (*FAMILIES, "other")}
    for name, seconds in ops:
        totals[family(name)] += seconds
    whole = sum(totals.values()) or 1.0
    return {fam: value / whole for fam, value in totals.items()}


def ours(preset: str, kind: str, batch: int, threads: int, queue: mp.Queue) -> None:
    import torch

    from benchmarks.upstream_worker import profile_training_step
    from models.presets import build

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(kind, preset).train()
    size = model.config.image_size if kind == "tokenizer" else model.image_size
    frames = torch.rand(batch, FRAMES, 3, size, size)  # [B, T, 3, H, W]
    actions = torch.randint(0, 8, (batch, FRAMES - 1))  # [B, T-1]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def forward():  # noqa: ANN202
        return (model(frames) if kind == "tokenizer" else model(frames, actions)).loss

    encode = (lambda: model.tokenize(frames)) if kind != "tokenizer" else None
    queue.put(profile_training_step(forward, optimizer, encode))


def run_ours(preset: str, kind: str, batch: int, threads: int) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=ours, args=(preset, kind, batch, threads, queue))
    proc.start()
    while True:  # a child that dies (an error, out of memory) must not leave us waiting on its queue
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise UserError(
                    f"profile_step: our {kind} process exited with code {proc.exitcode} before reporting "
                    "(its traceback is above)"
                ) from None
    proc.join()
    return result


def run_upstream(dpath, preset: str, kind: str, batch: int, threads: int) -> dict:  # noqa: ANN001
    kw = upstream_side.constructor_kwargs(preset, layout=upstream_side.upstream_layout(dpath))
    with upstream_side.UpstreamWorker(dpath) as worker:
        return worker.request(
            "profile_step", layout=kw["layout"], kind=kind, tokenizer=kw["tokenizer"], maskgit=kw["maskgit"],
            tdce=kw["tdce"], threads=threads, batch=batch, frames=FRAMES, num_actions=kw["num_actions"],
        )  # fmt: skip


def row(side: str, kind: str, reply: dict) -> dict:
    shares = family_shares(reply["ops"])
    return {
        "side": side,
        "model": kind,
        "s_per_step": reply["s_per_step"],
        "gflop_per_step": reply["flops"] / 1e9,
        "gflop_per_s": reply["flops"] / 1e9 / reply["s_per_step"],
        # the same process's large plain matmul: how close the step runs to what the core gives
        "matmul_gflop_per_s": reply["matmul_gflop_per_s"],
        "of_matmul_rate": reply["flops"] / 1e9 / reply["s_per_step"] / reply["matmul_gflop_per_s"],
        "frozen_encode_gflop": reply["encode_flops"] / 1e9,
        **{f"{phase}_s": reply["phases"].get(phase, 0.0) for phase in ("forward", "backward", "optimizer")},
        **{f"{fam} %": 100 * share for fam, share in shares.items()},
    }


def top_ops(side: str, kind: str, reply: dict, count: int = 6) -> str:
    whole = sum(seconds for _, seconds in reply["ops"]) or 1.0
    ops = ", ".join(f"{name} {100 * seconds / whole:.0f} %" for name, seconds in reply["ops"][:count])
    return f"{side} {kind}: {ops}"


def parse_options(options: dict[str, str]) -> dict:
    unknown = set(options) - OPTIONS
    if unknown:
        raise UserError(f"unknown profile_step option(s) {sorted(unknown)}; use {sorted(OPTIONS)}")
    models = options.get("models", ",".join(KINDS)).split(",")
    bad = [m for m in models if m not in KINDS]
    if bad:
        raise UserError(f"models={','.join(bad)} unknown; use a comma list of {', '.join(KINDS)}")
    return {
        "preset": options.get("preset", "tiny"),
        "models": models,
        "batch": int(options.get("batch", "1")),
        "threads": int(options.get("threads", "1")),
        "upstream_dpath": (
            upstream_side.check_upstream_dpath(options["upstream_dpath"])
            if "upstream_dpath" in options
            else None
        ),
    }


def main(**options: str) -> int:
    from tqdm import tqdm

    from benchmarks.results_md import publish

    opts = parse_options(options)
    preset, batch, threads, dpath = opts["preset"], opts["batch"], opts["threads"], opts["upstream_dpath"]
    rows, tops = [], []
    for kind in tqdm(opts["models"], desc="profile_step"):
        sides = [("ours", lambda k=kind: run_ours(preset, k, batch, threads))]
        if dpath is not None:
            sides.append(("upstream", lambda k=kind: run_upstream(dpath, preset, k, batch, threads)))
        for side, measure in sides:
            reply = measure()
            rows.append({"preset": preset, **row(side, kind, reply)})
            tops.append(top_ops(side, kind, reply))
            tqdm.write(str(rows[-1]))
    notes = (
        f"batch {batch} x {FRAMES} frames, fp32, {threads} thread(s); one untimed step, then one timed step "
        "(s_per_step), FLOPs of forward + backward by FlopCounterMode, op shares from one torch.profiler step "
        "(self CPU time). Largest ops: " + "; ".join(tops) + "."
    )
    notes += (
        " " + upstream_side.adapter_notes(preset, dpath)
        if dpath is not None
        else " Upstream not profiled (pass upstream_dpath=)."
    )
    publish(f"profile_step_{preset}", rows, notes)
    return 0
