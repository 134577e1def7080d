"""Training-step time (forward + backward + AdamW) and peak memory for the tokenizer and the guided
dynamics, batch 1 x 16 frames, `tiny` and `neurips` presets, on this machine's CPU (or GPU if any).

`python run.py bench model_step [presets=tiny,neurips] [steps=2] [threads=2] [checkpointing=both]`
Each configuration runs in a fresh process so the peak RSS (ru_maxrss) is its own.
Upstream reference on this machine kind (CPU): neurips tokenizer 33.8 s/step at 12.5 GB, guided
dynamics 21.9 s/step at 8.4 GB.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

UPSTREAM = {("neurips", "tokenizer"): (33.8, 12.5), ("neurips", "genie_redux_guided"): (21.9, 8.4)}


def measure(preset: str, kind: str, steps: int, threads: int, checkpointing: bool, queue: mp.Queue) -> None:
    import torch

    from models.presets import build

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    part = {"activation_checkpointing": checkpointing}
    model = build(
        kind, preset, **({"tokenizer": part} if kind == "tokenizer" else {"dynamics": part})
    ).train()
    size = model.config.image_size if kind == "tokenizer" else model.image_size
    frames = torch.rand(1, 16, 3, size, size)
    actions = torch.randint(0, 8, (1, 15))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        out = model(frames) if kind == "tokenizer" else model(frames, actions)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    queue.put((min(times[1:] or times), peak_gb))


def main(**options: str) -> int:
    from benchmarks.recording import record

    presets = options.get("presets", "tiny,neurips").split(",")
    steps = int(options.get("steps", "2"))
    threads = int(options.get("threads", "2"))
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[options.get("checkpointing", "both")]
    context = mp.get_context("spawn")
    rows = []
    for preset in presets:
        for kind in ("tokenizer", "genie_redux_guided"):
            for checkpointing in modes:
                queue = context.Queue()
                proc = context.Process(
                    target=measure, args=(preset, kind, steps, threads, checkpointing, queue)
                )
                proc.start()
                seconds, peak_gb = queue.get()
                proc.join()
                ref = UPSTREAM.get((preset, kind))
                rows.append(
                    {
                        "preset": preset,
                        "model": kind,
                        "act_ckpt": checkpointing,
                        "s_per_step": seconds,
                        "peak_rss_gb": peak_gb,
                        "speedup_vs_upstream": ref[0] / seconds if ref else "",
                        "mem_frac_of_upstream": peak_gb / ref[1] if ref else "",
                    }
                )
                print(rows[-1], flush=True)
    notes = (
        f"batch 1 x 16 frames, fwd+bwd+AdamW, best of the steps after the first ({steps} steps), {threads} threads; "
        "peak RSS of a fresh process (includes the Python/torch baseline, ~0.3 GB). Upstream figures are "
        "the references given for this machine kind, not re-measured here."
    )
    record("model_step", rows, notes)
    return 0
