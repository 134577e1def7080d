"""Record episodes and write them, overlapping the two: what a worker does with its emulator.

When each worker can have two cores (`writer_gets_a_core`), the emulator thread only plays:
episode n + 1 is recorded while a writer thread compresses and atomically writes episode n (zstd,
Pillow's resize and fsync release the GIL), and with `defer_resize` and an agent that ignores
observations (the random agent) the emulator thread keeps native screens and the pad + BOX resize
moves to the writer thread too. Otherwise all of it runs in the emulator's thread, which costs
less CPU in all. The bytes are the same either way.

Buffers: two recording buffers alternate between the emulator thread and the writer; the writer
owns one frame buffer for resizing into. At most one write is in flight.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from agents.policy import Policy
from data_generation.recorder import Recording, frame_buffer, record_episode, record_screens
from data_generation.work import EpisodeReport, WorkItem
from envs import GameEnv
from envs.frames import FrameResizer


def failure_reason(error: BaseException) -> str:
    """One line for the parent's summary (the traceback too with GENIE_REDUX_DEBUG=1)."""
    if os.environ.get("GENIE_REDUX_DEBUG") == "1":
        traceback.print_exception(error)
    return f"{type(error).__name__}: {error}".splitlines()[0]


def writer_gets_a_core(n_workers: int) -> bool:
    """True when each of `n_workers` workers can have a second core for a writer thread.

    Measured (benchmarks/RESULTS.md, generation): a writer thread that compresses and resizes takes
    10-15 % more CPU in all than doing the same work in the emulator's thread (screens come back
    from a cold buffer, the two threads trade the GIL), so it only helps when a core would idle.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return usable >= 2 * n_workers


class EpisodeWriteQueue:
    """Writes episodes one at a time, on a background thread if `in_background`, reporting each.

    Reports one `EpisodeReport` per episode, done or failed, to `reports`. Without a core to spare, writing in the calling thread costs
    5-10 % less CPU than handing the work to a thread (measured), so the worker decides.
    """

    def __init__(self, writer: Any, reports: Any, in_background: bool) -> None:
        self._writer, self._reports = writer, reports
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-writer") if in_background else None
        )
        self._pending: tuple[str, Future] | None = None

    def submit(self, item: WorkItem, make_recording: Callable[[], Recording], info: dict[str, Any]) -> None:
        """Once the previous write is done, make the recording and write it (on the writer thread)."""
        self.wait()
        if self._executor is None:
            future: Future = Future()
            try:
                future.set_result(self._write(item, make_recording, info))
            except Exception as error:  # reported by wait(), like a background failure
                future.set_exception(error)
        else:
            future = self._executor.submit(self._write, item, make_recording, info)
        self._pending = (item.episode_id, future)
        if self._executor is None:
            self.wait()  # report now

    def _write(
        self, item: WorkItem, make_recording: Callable[[], Recording], info: dict[str, Any]
    ) -> EpisodeReport:
        recording = make_recording()
        num_bytes = self._writer.write(
            item.episode_id, recording.frames, recording.actions, item.env_name, item.session_index,
            {**recording.info, **info},
        )  # fmt: skip
        return EpisodeReport(
            "done",
            item.episode_id,
            num_frames=len(recording.frames),
            bytes_on_disk=num_bytes,
            raw_bytes=recording.frames.nbytes,
        )

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk, and report it."""
        if self._pending is None:
            return
        episode_id, future = self._pending
        self._pending = None
        try:
            self._reports.put(future.result())
        except Exception as error:  # one bad episode must not stop the others; reported, rerun retries
            self._reports.put(EpisodeReport("failed", episode_id, reason=failure_reason(error)))

    def close(self) -> None:
        self.wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class EpisodePipeline:
    """Plays one env with one agent and hands each episode to `writes`; owns the reused buffers."""

    def __init__(
        self, env: GameEnv, policy: Policy, n_steps_max: int, writes: EpisodeWriteQueue, defer_resize: bool
    ) -> None:
        self.env, self.policy, self.n_steps_max, self._writes = env, policy, n_steps_max, writes
        self.defers_resize = defer_resize and not policy.uses_observation
        # What the emulator thread records into: native screens if deferring, else observations.
        shape = env.screen_shape if self.defers_resize else env.observation_space.shape
        self._buffers = [frame_buffer(n_steps_max + 1, shape) for _ in range(2)]
        if self.defers_resize:  # the writer thread's own resizer and output (never shared)
            self._resize = FrameResizer(env.image_size)
            self._frames_out = frame_buffer(n_steps_max + 1, env.observation_space.shape)

    def record(self, item: WorkItem, seed: int, info: dict[str, Any]) -> int:
        """Record `item`'s episode, then queue its write (it starts once the previous one is done).
        Returns the episode's number of frames T.

        The only write that can be in flight while this records is the previous episode's, and that
        one reads the other buffer.
        """
        self._buffers.reverse()
        buffer = self._buffers[0]
        if self.defers_resize:
            screens = record_screens(self.env, self.policy, seed, self.n_steps_max, buffer)
            self._writes.submit(item, lambda: screens.resized(self._resize, self._frames_out), info)
            return len(screens.screens)
        recording = record_episode(self.env, self.policy, seed, self.n_steps_max, frames_out=buffer)
        self._writes.submit(item, lambda: recording, info)
        return len(recording.frames)

    def close(self) -> None:
        """Wait for the last write; the buffers are free after this."""
        self._writes.wait()
