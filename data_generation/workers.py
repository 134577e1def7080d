"""Worker processes: each owns one emulator at a time (stable-retro allows one per process) and
one episode-store shard, records its share of the work list and reports to the parent via a queue.

Compression and the atomic write of episode n run in a background thread while episode n + 1 is
recorded: zstd and fsync release the GIL, so the emulator keeps its core busy. Two frame buffers
alternate between the recorder and that thread; at most one write is in flight.

Messages to the parent: ("done", episode_id, num_frames, bytes, raw_bytes), ("skipped", episode_id),
("failed", episode_id, one-line reason).
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from data_generation.work import WorkItem, episode_seed


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; plain data so it pickles into a spawned process."""

    output_dpath: str
    shard_name: str
    items: tuple[WorkItem, ...]
    seed: int
    n_steps_max: int
    image_size: int
    frame_skip: int
    sticky_action_prob: float
    variant: str
    agent_options: dict[str, Any]


def _failure(error: BaseException) -> str:
    if os.environ.get("GENIE_REDUX_DEBUG") == "1":
        traceback.print_exception(error)
    return f"{type(error).__name__}: {error}".splitlines()[0]


class BackgroundWrites:
    """Writes episodes on one background thread, one at a time, and reports each to the queue."""

    def __init__(self, writer: Any, queue: Any) -> None:
        self._writer, self._queue = writer, queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-writer")
        self._pending: tuple[str, Future, int, int] | None = None  # id, write, frames, raw bytes

    def submit(self, item: WorkItem, recording: Any, info: dict[str, Any]) -> None:
        """Start writing `recording` once the previous write is done (its frame buffer is then free)."""
        self.wait()
        future = self._executor.submit(
            self._writer.write, item.episode_id, recording.frames, recording.actions,
            item.env_name, item.session_index, info,
        )  # fmt: skip
        self._pending = (item.episode_id, future, len(recording.frames), recording.frames.nbytes)

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk, and report it."""
        if self._pending is None:
            return
        episode_id, future, num_frames, raw_bytes = self._pending
        self._pending = None
        try:
            num_bytes = future.result()
        except Exception as error:  # one bad episode must not stop the others; reported, rerun retries
            self._queue.put(("failed", episode_id, _failure(error)))
            return
        self._queue.put(("done", episode_id, num_frames, num_bytes, raw_bytes))

    def close(self) -> None:
        self.wait()
        self._executor.shutdown(wait=True)


def run_worker(spec: WorkerSpec, queue: Any, parent_pid: int) -> None:
    """Process entry point. Exits on its own if the parent dies (kill -9 of the generator)."""
    from data.episode_store import EpisodeWriter
    from data_generation.agents import build_agent
    from data_generation.envs import make_env
    from data_generation.recorder import frame_buffer, record_episode

    env, env_name, buffers = None, None, []
    with EpisodeWriter(spec.output_dpath, spec.shard_name) as writer:
        writes = BackgroundWrites(writer, queue)
        try:
            for item in spec.items:
                if os.getppid() != parent_pid:  # orphaned: the generator was killed, stop cleanly
                    break
                if writer.has_episode(item.episode_id):
                    queue.put(("skipped", item.episode_id))
                    continue
                try:
                    if item.env_name != env_name:
                        writes.wait()  # the buffers are replaced below
                        if env is not None:
                            env.close()  # before the next make: one emulator per process
                        env, env_name = None, None
                        env = make_env(
                            item.env_name, spec.image_size, spec.frame_skip, spec.sticky_action_prob
                        )
                        env_name = item.env_name
                        agent = build_agent(spec.variant, env.action_space.n, dict(spec.agent_options))
                        buffers = [frame_buffer(env, spec.n_steps_max) for _ in range(2)]
                    seed = episode_seed(spec.seed, item.env_name, item.session_index)
                    buffers.reverse()  # record into the buffer no write is reading
                    recording = record_episode(env, agent, seed, spec.n_steps_max, frames_out=buffers[0])
                    info = {
                        **recording.info,
                        "variant": spec.variant,
                        "sticky_action_prob": spec.sticky_action_prob,
                    }
                    writes.submit(item, recording, info)
                except (
                    Exception
                ) as error:  # one bad episode must not stop the others; reported, rerun retries
                    queue.put(("failed", item.episode_id, _failure(error)))
        finally:
            writes.close()
    if env is not None:
        env.close()
