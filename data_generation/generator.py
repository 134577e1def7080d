"""Run a generation: work list -> worker processes -> episode store, with progress and a summary.

Resumable: finished episodes (in any shard of the output) are skipped, so a rerun after kill -9
records only what was missing; episodes in flight were never renamed into place and are redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing as mp
import os
import queue as queue_module
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from common.errors import UserError
from common.paths import ensure_writable_dpath
from data.episode_store import EpisodeStore, is_store
from data_generation.recording_pipeline import writer_gets_a_core
from data_generation.work import EpisodeReport, GenerationSpec, WorkItem, build_work_list, split_for_workers
from data_generation.workers import WorkerSpec, run_worker


@dataclass
class Summary:
    episodes: int = 0
    frames: int = 0
    bytes_on_disk: int = 0
    raw_bytes: int = 0
    already_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def lines(self, output_dpath: Path, seconds: float) -> list[str]:
        ratio = f"{self.raw_bytes / self.bytes_on_disk:.1f}x" if self.bytes_on_disk else "n/a"
        lines = [
            f"recorded {self.episodes} episodes, {self.frames} frames in {seconds:.1f}s "
            f"({self.frames / max(seconds, 1e-9):.0f} frames/s); {self.already_done} were already done",
            f"{self.bytes_on_disk / 2**20:.1f} MiB on disk, compression {ratio} over raw uint8; output: {output_dpath}",
        ]
        if self.failed:
            lines.append(f"{len(self.failed)} episodes FAILED (rerun to retry):")
            lines += [f"  {episode_id}: {reason}" for episode_id, reason in sorted(self.failed.items())[:20]]
        return lines


def finished_episode_ids(output_dpath: Path) -> set[str]:
    """Episodes already complete in any shard (a rerun may use another worker count or shard layout)."""
    if not is_store(output_dpath):
        return set()
    return {record.episode_id for record in EpisodeStore(output_dpath).episodes}


def _worker_specs(spec: GenerationSpec, todo: list[WorkItem]) -> list[WorkerSpec]:
    shares = split_for_workers(todo, spec.n_workers)
    has_spare_core = writer_gets_a_core(len(shares))
    return [
        WorkerSpec(
            generation=spec,
            # one shard per (generation shard, worker): the store allows one writer per shard
            shard_name=f"shard{spec.shard_index:03d}-w{rank:03d}",
            items=tuple(items),
            has_spare_core=has_spare_core,
        )
        for rank, items in enumerate(shares)
    ]


def run_generation(spec: GenerationSpec) -> Summary:
    """Record every missing episode of this shard; prints a progress bar and returns the summary."""
    spec.check()  # before the lock file and the output folder exist
    ensure_writable_dpath(spec.output_dpath, "output_dpath")
    with generation_lock(spec.output_dpath, spec.shard_index):
        return _generate(spec)


@contextlib.contextmanager
def generation_lock(output_dpath: Path, shard_index: int) -> Iterator[None]:
    """Held for the whole run: a second `generate` on the same shard stops with one line, before any
    worker starts (its workers would otherwise each fail on the episode store's per-shard lock)."""
    fpath = output_dpath / f".generate-shard{shard_index:03d}.lock"
    with open(fpath, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise UserError(
                f"another generate run (pid {owner}) is writing shard {shard_index} of {output_dpath}; wait for it "
                f"to finish (rerunning then resumes), or give this run its own shard_index=... with num_shards=..."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def _generate(spec: GenerationSpec) -> Summary:
    items = build_work_list(list(spec.env_names), spec.n_sessions, spec.shard_index, spec.num_shards)
    done_ids = finished_episode_ids(spec.output_dpath)
    todo = [item for item in items if item.episode_id not in done_ids]
    summary = Summary(already_done=len(items) - len(todo))
    started = time.perf_counter()
    if todo:
        _run_workers(_worker_specs(spec, todo), len(todo), summary)
    for line in summary.lines(spec.output_dpath, time.perf_counter() - started):
        print(line)
    return summary


def _run_workers(worker_specs: list[WorkerSpec], num_items: int, summary: Summary) -> None:
    # spawn: a fresh interpreter per worker, so no emulator or file handle leaks in from the parent.
    context = mp.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(target=run_worker, args=(ws, messages, os.getpid()), daemon=True)
        for ws in worker_specs
    ]
    for process in processes:
        process.start()
    started = time.perf_counter()
    with tqdm(total=num_items, unit="ep", desc="generate", dynamic_ncols=True) as bar:
        handled = 0
        while handled < num_items:
            try:
                message = messages.get(timeout=1.0)
            except queue_module.Empty:
                if not any(p.is_alive() for p in processes) and messages.empty():
                    break  # a worker died without reporting (killed): its items count as failed below
                continue
            handled += 1
            _account(message, summary)
            bar.update(1)
            bar.set_postfix(
                frames_per_s=f"{summary.frames / (time.perf_counter() - started):.0f}", refresh=False
            )
    for process in processes:
        process.join()
    lost = num_items - handled
    if lost:
        summary.failed["(worker died)"] = f"{lost} episodes were not recorded; rerun to record them"


def _account(report: EpisodeReport, summary: Summary) -> None:
    if report.status == "done":
        summary.episodes += 1
        summary.frames += report.num_frames
        summary.bytes_on_disk += report.bytes_on_disk
        summary.raw_bytes += report.raw_bytes
    elif report.status == "skipped":
        summary.already_done += 1
    else:
        summary.failed[report.episode_id] = report.reason
