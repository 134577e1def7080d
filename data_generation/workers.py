"""Worker processes: each owns one emulator at a time (stable-retro allows one per process) and
one episode-store shard, records its share of the work list and reports to the parent via a queue.
Recording and writing overlap (data_generation/recording_pipeline.py).

Messages to the parent: one `data_generation.work.EpisodeReport` per work item (done, skipped or failed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from common.seeds import episode_seed
from data_generation.work import EpisodeReport, GenerationSpec, WorkItem


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; plain data so it pickles into a spawned process."""

    generation: GenerationSpec  # the run's settings, shared by every worker (not copied field by field)
    shard_name: str
    items: tuple[WorkItem, ...]
    has_spare_core: bool  # write and resize on a second thread (pipeline.writer_gets_a_core)


def run_worker(spec: WorkerSpec, queue: Any, parent_pid: int) -> None:
    """Process entry point. Exits on its own if the parent dies (kill -9 of the generator)."""
    from data.episode_store import EpisodeWriter
    from data_generation.recording_pipeline import EpisodeWriteQueue

    with EpisodeWriter(spec.generation.output_dpath, spec.shard_name) as writer:
        writes = EpisodeWriteQueue(writer, queue, in_background=spec.has_spare_core)
        try:
            _record_items(spec, queue, parent_pid, writer, writes)
        finally:
            writes.close()


def _record_items(spec: WorkerSpec, queue: Any, parent_pid: int, writer: Any, writes: Any) -> None:
    from data_generation.recording_pipeline import EpisodePipeline, failure_reason
    from data_generation.variants import build_policy
    from envs import make_env

    env, env_name, pipeline = None, None, None
    extra_info = {
        "variant": spec.generation.variant,
        "sticky_action_prob": spec.generation.sticky_action_prob,
    }
    try:
        for item in spec.items:
            if os.getppid() != parent_pid:  # orphaned: the generator was killed, stop cleanly
                break
            if writer.has_episode(item.episode_id):
                queue.put(EpisodeReport("skipped", item.episode_id))
                continue
            try:
                if item.env_name != env_name:
                    if env is not None:
                        if pipeline is not None:
                            pipeline.close()  # its last write reads buffers of this env
                        env.close()  # before the next make: one emulator per process
                    env, env_name, pipeline = None, None, None
                    env = make_env(
                        item.env_name,
                        spec.generation.image_size,
                        spec.generation.frame_skip,
                        spec.generation.sticky_action_prob,
                        levels=spec.generation.levels,
                        **spec.generation.env_options(item.env_name),
                    )
                    agent = build_policy(
                        spec.generation.variant, env.action_space.n, dict(spec.generation.agent_options)
                    )
                    pipeline = EpisodePipeline(
                        env, agent, spec.generation.n_steps_max, writes, spec.has_spare_core
                    )
                    env_name = item.env_name  # only once it can record: a failed build is retried per episode
                seed = episode_seed(spec.generation.seed, item.env_name, item.session_index)
                pipeline.record(item, seed, extra_info)
            except Exception as error:  # one bad episode must not stop the others; reported, rerun retries
                queue.put(EpisodeReport("failed", item.episode_id, reason=failure_reason(error)))
    finally:
        if env is not None:
            writes.wait()
            env.close()
