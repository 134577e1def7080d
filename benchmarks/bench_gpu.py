"""One command for a GPU machine: training-step speed and MFU, generation, the player, the AutoExplore
reward and a short CoinRun training run, within a time budget (450 s, and 5 s of grace per part: < 8 min).

`python run.py bench gpu [budget_s=450] [train_s=180] [presets=neurips,cvpr]
[models=genie_redux_guided,tokenizer,genie_redux] [modes=eager,compiled] [max_batch=512]
[memory_fraction=0.85] [steps=5] [inference_preset=neurips] [game=coinrun] [store_sessions=64]
[store_steps=200] [workers=4]`

Parts, in order (each records its rows as it goes):
1. training steps: every model x preset x mode at a batch that fills the device (doubling, eager;
   benchmarks/train_step_speed.py): s/step, samples/s, tokens/s, peak memory, model TFLOP/s and MFU
   against the device's dense bf16 peak (benchmarks/devices.py; a device not in that table gets no MFU,
   and the notes say so). bf16 autocast on CUDA, fp32 on CPU, as the trainer's `mixed_precision=auto`.
2. generation frames/s at 1 / 8 / 25 MaskGIT steps (`inference_preset`), batch 1 and 8;
3. the player's frames/s (WorldModelEnv.step, batch 1);
4. the AutoExplore reward for 8 envs of `game`;
5. a CoinRun training run of `train_s` seconds through the launcher (a tokenizer at the first preset on
   a CoinRun store recorded in the background from the start, benchmarks/coinrun_run.py): its loss must
   fall.
Time guards: the CoinRun run keeps `train_s` + 40 s and each inference part a fixed share; the training
steps get the rest, eager configurations first (each at most 12 % of it), then the compiled ones in order,
each with all that is left but 4 s per configuration after it (the first, neurips GenieRedux-G, is the MFU
aim). A part (and each configuration) gets a soft time limit it checks between measurements and a hard
one (SIGALRM) that stops it where it is; a part that does not fit, stops at its limit or fails is recorded
with the reason, and the rest still run. `workers`: the store's recording processes and the training
run's loader workers.

Without CUDA the same command is the CPU stand-in CI runs: defaults become presets=tiny,
inference_preset=tiny, budget_s=240, train_s=40, a small store, max_batch=4 and modes=eager (inductor
takes minutes per tiny model on a 2-core CPU; modes=eager,compiled runs it, as tests/test_bench_gpu.py
does for the tokenizer).
Results: blocks `gpu_training_step`, `gpu_inference`, `gpu_coinrun_training` (on CPU with the suffix
`_cpu_tiny`, so a stand-in run never replaces GPU figures).
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from benchmarks import coinrun_run, gpu_inference
from benchmarks.devices import bf16_peak_tflops, device_name, is_out_of_memory
from benchmarks.train_step_speed import Deadline, StepSetup, build_model, find_batch, freed, measure
from common.errors import UserError

KINDS = ("genie_redux_guided", "tokenizer", "genie_redux")  # the dynamics step first: the MFU aim
MODES = ("eager", "compiled")
GPU_DEFAULTS = {"budget_s": "450", "train_s": "180", "presets": "neurips,cvpr", "models": ",".join(KINDS),
                "modes": ",".join(MODES), "max_batch": "512", "memory_fraction": "0.85", "steps": "5",
                "inference_preset": "neurips", "game": "coinrun", "store_sessions": "64", "store_steps": "200",
                "workers": "4"}  # fmt: skip
CPU_DEFAULTS = {**GPU_DEFAULTS, "budget_s": "240", "train_s": "40", "presets": "tiny", "max_batch": "4", "modes": "eager",
                "steps": "2", "inference_preset": "tiny", "store_sessions": "6", "store_steps": "40",
                "workers": "1"}  # fmt: skip
INFERENCE_SHARE = {"generation": 0.06, "player": 0.03, "auto_explore_reward": 0.06}  # of budget_s
COINRUN_STARTUP_S = 40.0  # the training run's launcher, store opening and loader workers
EAGER_SHARE = 0.12  # an eager configuration's time at most: this share of the training-step part ...
EAGER_MIN_S = 15.0  # ... or this, if more
CONFIG_RESERVE_S = 4.0  # kept for each configuration after the one being measured
COLUMNS = {  # each block's columns, in order; what a row did not measure shows as "–"
    "gpu_training_step": ["model", "preset", "mode", "precision", "batch", "s_per_step", "samples_per_s",
                          "tokens_per_s", "peak_mem_gb", "model_tflops_per_s", "mfu", "note"],
    "gpu_inference": ["part", "preset", "batch", "maskgit_steps", "frames_per_s", "ms_per_step", "note"],
    "gpu_coinrun_training": ["model", "preset", "batch", "steps", "wall_s", "samples_per_s", "loss_first",
                             "loss_last", "loss_fell", "note"],
}  # fmt: skip


class TimeLimitReached(BaseException):  # noqa: N818 (a signal, like KeyboardInterrupt: generic handlers pass it on)
    """A part's (or a configuration's) hard time limit."""


@contextlib.contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Raise TimeLimitReached in this thread after `seconds`; nested limits keep the outer one running."""

    def stop(signum: int, frame: object) -> None:
        raise TimeLimitReached

    outer_left = signal.getitimer(signal.ITIMER_REAL)[0]
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(min(seconds, outer_left) if outer_left else seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 1e-3))


def hard_seconds(seconds: float, grace_s: float = 5.0) -> float:
    """The hard limit of a part with a soft limit of `seconds` (the soft one is checked between
    measurements, so a part overruns it by at most one measurement, or the grace)."""
    return seconds + grace_s


def guarded(name: str, seconds: float, minimum_s: float, measure_part: Callable[[Deadline], None],
            grace_s: float = 5.0) -> str:  # fmt: skip
    """Run one part under a soft (`Deadline`) and a hard limit; -> its status line for the notes."""
    if seconds < minimum_s:
        return f"{name}: skipped, {max(seconds, 0):.0f} s of the budget left, it needs {minimum_s:.0f} s"
    started, limit = time.perf_counter(), hard_seconds(seconds, grace_s)
    try:
        with hard_limit(limit):
            measure_part(Deadline(seconds))
    except TimeLimitReached:
        return f"{name}: stopped at its hard time limit ({limit:.1f} s); rows so far kept"
    except Exception as error:  # noqa: BLE001 (a failing part is recorded; the others still run)
        elapsed = time.perf_counter() - started
        return f"{name}: failed after {elapsed:.0f} s: {type(error).__name__}: {error}"[:400]
    return f"{name}: {time.perf_counter() - started:.0f} s (limit {seconds:.0f} s)"


def parse_options(options: dict[str, str], has_cuda: bool) -> dict[str, Any]:
    defaults = GPU_DEFAULTS if has_cuda else CPU_DEFAULTS
    unknown = set(options) - set(defaults)
    if unknown:
        raise UserError(f"unknown gpu option(s) {sorted(unknown)}; use {sorted(defaults)}")
    values = {**defaults, **options}
    lists = {key: values[key].split(",") for key in ("presets", "models", "modes")}
    if not set(lists["models"]) <= set(KINDS) or not set(lists["modes"]) <= set(MODES):
        raise UserError(f"models must be a comma list of {KINDS}, modes of {MODES}")
    opts = {key: float(values[key]) for key in ("budget_s", "train_s", "memory_fraction")}
    opts |= {
        key: int(values[key]) for key in ("max_batch", "steps", "store_sessions", "store_steps", "workers")
    }
    return {**opts, **lists, "inference_preset": values["inference_preset"], "game": values["game"]}


def na(value: float | None) -> float | str:
    return "–" if value is None else value


def complete(rows: list[dict], columns: list[str]) -> list[dict]:
    """Every row with every column, in order (a skipped row has only its labels and a note)."""
    return [{column: na(row.get(column)) for column in columns} for row in rows]


def same_tokenizer_as(preset: str, earlier: list[str]) -> str | None:
    """An earlier preset whose tokenizer config is this one's (cvpr's is neurips's): measured once."""
    from models.presets import PRESETS

    return next((p for p in earlier if PRESETS[p]["tokenizer"] == PRESETS[preset]["tokenizer"]), None)


def step_configs(opts: dict) -> list[tuple[str, str, str]]:
    """(preset, kind, mode) in the order they are measured: every eager one (cheap, and each finds the
    batch its compiled twin reuses), then the compiled ones, in the order of `presets` and `models`."""
    return [(p, k, m) for m in opts["modes"] for p in opts["presets"] for k in opts["models"]]


def config_seconds(mode: str, left_s: float, part_s: float, num_later: int) -> float:
    """A configuration's time: eager ones at most EAGER_SHARE of the part; a compiled one all that is left
    but CONFIG_RESERVE_S for each configuration after it (so the first compiled ones, the aim, fit)."""
    seconds = left_s - CONFIG_RESERVE_S * num_later
    return min(seconds, max(EAGER_SHARE * part_s, EAGER_MIN_S)) if mode == "eager" else seconds


def measure_config(setup: StepSetup, mode: str, opts: dict, seconds: float,
                   batches: dict) -> tuple[int, str, object]:  # fmt: skip
    """-> (batch, why the batch search stopped there, StepFigures); the model dies with this frame."""
    model = build_model(setup)
    key = (setup.preset, setup.kind)
    if key not in batches:
        batches[key] = find_batch(
            model, setup, opts["max_batch"], opts["memory_fraction"], Deadline(0.4 * seconds)
        )
    batch, why = batches[key]
    return batch, why, measure(model, setup, batch, mode == "compiled", opts["steps"], Deadline(seconds))


def training_steps(rows: list[dict], opts: dict, device: torch.device, dtype: torch.dtype | None,
                   deadline: Deadline, measured: dict) -> None:  # fmt: skip
    """One row per (preset, model, mode); `measured[(preset, kind, mode)]` keeps the figures."""
    peak = bf16_peak_tflops(device_name(device))
    configs = step_configs(opts)
    part_s = deadline.left()
    batches: dict[tuple[str, str], tuple[int, str]] = {}
    for index, (preset, kind, mode) in enumerate(configs):
        row = {"model": kind, "preset": preset, "mode": mode, "precision": "bf16" if dtype else "fp32"}
        twin = same_tokenizer_as(preset, opts["presets"][: opts["presets"].index(preset)])
        if kind == "tokenizer" and twin is not None:
            rows.append(
                {**row, "note": f"same tokenizer config as {twin} (models/presets.py): not measured again"}
            )
            continue
        seconds = config_seconds(mode, deadline.left(), part_s, len(configs) - index - 1)
        if seconds < 1.0:
            rows.append({**row, "note": "skipped: the training-step time was spent"})
            continue
        setup = StepSetup(kind, preset, device, dtype)
        try:
            with hard_limit(hard_seconds(seconds)), freed(device):
                batch, why, figures = measure_config(setup, mode, opts, seconds, batches)
        except TimeLimitReached:
            rows.append({**row, "note": f"stopped at its time limit ({hard_seconds(seconds):.0f} s)"})
            continue
        except Exception as error:  # noqa: BLE001 (recorded; the next configuration still runs)
            reason = "out of memory" if is_out_of_memory(error) else f"{type(error).__name__}: {error}"
            rows.append({**row, "note": f"failed: {reason}"[:300]})
            continue
        measured[preset, kind, mode] = figures
        mfu = figures.mfu(peak)
        rows.append({**row, "batch": batch, "s_per_step": figures.s_per_step,
                     "samples_per_s": batch / figures.s_per_step, "tokens_per_s": figures.tokens_per_s,
                     "peak_mem_gb": figures.peak_memory_gb,
                     "model_tflops_per_s": figures.flops_per_step / figures.s_per_step / 1e12,
                     "mfu": na(mfu), "note": f"batch: {why}"})  # fmt: skip


def coinrun_training(rows: list[dict], opts: dict, root_dpath: Path, store: Any, measured: dict,
                     deadline: Deadline) -> None:  # fmt: skip
    preset = opts["presets"][0]
    wait_s = max(deadline.left() - opts["train_s"] - COINRUN_STARTUP_S, 30.0)  # it started with the run
    problem = coinrun_run.wait_store(store, root_dpath, wait_s)
    if problem is not None:
        rows.append({"model": "tokenizer", "preset": preset, "note": f"not run: {problem}"})
        return
    found = measured.get((preset, "tokenizer", "eager"))
    batch = min(found.batch, 32) if found else 4
    # as many steps as fit at the measured step time (scaled to this batch); unknown: until the limit
    num_steps = int(opts["train_s"] / (found.s_per_step * batch / found.batch)) if found else 1_000_000
    # its SIGINT-then-SIGKILL stop takes up to coinrun_run.STOP_WAIT_S more
    limit_s = min(opts["train_s"] + COINRUN_STARTUP_S, deadline.left() - coinrun_run.STOP_WAIT_S)
    rows.append(
        coinrun_run.training_row(root_dpath, preset, batch, max(num_steps, 20), limit_s, opts["workers"])
    )


def main(**options: str) -> int:
    from benchmarks.results_md import publish
    from models.presets import PRESETS

    has_cuda = torch.cuda.is_available()
    opts = parse_options(options, has_cuda)
    device = torch.device("cuda" if has_cuda else "cpu")
    dtype = torch.bfloat16 if has_cuda else None  # what the trainer's mixed_precision=auto gives
    if not has_cuda:
        print("no CUDA device: running the CPU stand-in (tiny preset, small budget)", flush=True)
    total = Deadline(opts["budget_s"])
    shares = {name: share * opts["budget_s"] for name, share in INFERENCE_SHARE.items()}
    coinrun_s = opts["train_s"] + COINRUN_STARTUP_S
    statuses, train_rows, inference_rows, run_rows, measured = [], [], [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        root = Path(tmp)
        image_size = PRESETS[opts["presets"][0]]["tokenizer"].image_size
        store = coinrun_run.start_store(
            root, image_size, opts["store_sessions"], opts["store_steps"], opts["workers"]
        )
        try:
            later = sum(shares.values()) + coinrun_s
            statuses.append(guarded("training steps", total.left() - later, 5.0,
                                    lambda d: training_steps(train_rows, opts, device, dtype, d, measured)))  # fmt: skip
            preset = opts["inference_preset"]
            parts = {
                "generation": lambda d: gpu_inference.generation(inference_rows, preset, device, [1, 8, 25], [1, 8], 3, d),
                "player": lambda d: gpu_inference.player(inference_rows, preset, device, [2, 8], 20, d),
                "auto_explore_reward": lambda d: gpu_inference.auto_explore_reward(
                    inference_rows, preset, device, opts["game"], 8, 40, d),
            }  # fmt: skip
            for name, measure_part in parts.items():
                later -= shares[name]
                statuses.append(guarded(name, total.left() - later, 2.0, measure_part))
            statuses.append(guarded("coinrun training", total.left(), opts["train_s"] / 2,
                                    lambda d: coinrun_training(run_rows, opts, root, store, measured, d)))  # fmt: skip
        finally:
            if store.poll() is None:
                store.kill()
                store.wait()
    publish_all(publish, opts, device, train_rows, inference_rows, run_rows, statuses)
    return 0


def publish_all(publish: Callable, opts: dict, device: torch.device, train_rows: list, inference_rows: list,
                run_rows: list, statuses: list[str]) -> None:  # fmt: skip
    name = device_name(device)
    peak = bf16_peak_tflops(name)
    suffix = "" if device.type == "cuda" else "_cpu_" + "_".join(opts["presets"])
    mfu_note = (f"MFU = counted model FLOPs / s / {peak:.0f} TFLOP/s (dense bf16 peak of {name})" if peak
                else f"MFU not reported: {name} is not in the bf16 peak table (benchmarks/devices.py)")  # fmt: skip
    where = (
        ""
        if device.type == "cuda"
        else "CPU stand-in at the tiny preset (figures only prove the path runs). "
    )
    limits = f"Budget {opts['budget_s']:.0f} s; parts: " + "; ".join(statuses) + "."
    publish(f"gpu_training_step{suffix}", complete(train_rows, COLUMNS["gpu_training_step"]),
            f"{where}fwd + bwd + AdamW on random clips of 16 frames, median of {opts['steps']} steps after warm-up "
            f"(compiled: torch.compile, its compilation untimed), bf16 autocast on CUDA / fp32 on CPU; "
            f"tokens = frames x the tokenizer's grid; FLOPs counted by FlopCounterMode at batch 2 on this device "
            f"and scaled to the batch (CPU: the fused CPU attention kernel is not counted). {mfu_note}. {limits}")  # fmt: skip
    publish(f"gpu_inference{suffix}", complete(inference_rows, COLUMNS["gpu_inference"]),
            f"{where}Untrained weights (time per frame does not depend on them), WorldModel precision auto "
            f"(bf16 autocast on CUDA, fp32 on CPU); frames_per_s = batch / s per step (AutoExplore: env steps "
            f"scored per s). {limits}")  # fmt: skip
    publish(f"gpu_coinrun_training{suffix}", complete(run_rows, COLUMNS["gpu_coinrun_training"]),
            f"{where}`generate config=coinrun/random` ({opts['store_sessions']} episodes x <= {opts['store_steps']} "
            f"steps, recorded while the other parts ran), then `genie_redux train config=tokenizer` for at most "
            f"{opts['train_s']:.0f} s of training; loss_fell: mean of the last logged losses below the first. {limits}")  # fmt: skip
