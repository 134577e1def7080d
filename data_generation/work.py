"""The work list: (env, session) pairs, their seeds, and how shards and workers split them.

Everything here is a pure function of the config, so every machine computes the same list and the
same per-episode seeds: worker count and sharding decide only *who* records an episode, never its
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from data.episode_store import episode_id_for


@dataclass(frozen=True, order=True)
class WorkItem:
    env_name: str
    session_index: int

    @property
    def episode_id(self) -> str:
        return episode_id_for(self.env_name, self.session_index)


REPORT_STATUSES = ("done", "skipped", "failed")


@dataclass(frozen=True)
class EpisodeReport:
    """What a worker tells the parent about one work item (plain data: it pickles through the queue)."""

    status: str  # one of REPORT_STATUSES; "skipped": the store already had the episode
    episode_id: str
    num_frames: int = 0  # done: frames written (T)
    bytes_on_disk: int = 0  # done: compressed size
    raw_bytes: int = 0  # done: the frames' uncompressed size
    reason: str = ""  # failed: one line for the summary

    def __post_init__(self) -> None:
        if self.status not in REPORT_STATUSES:
            raise ValueError(f"report status {self.status!r} is not one of {REPORT_STATUSES}")


def check_counts(n_sessions: int, shard_index: int, num_shards: int) -> None:
    """The session count and the shard arithmetic a work list needs; UserError naming the fix."""
    if n_sessions < 1:
        raise UserError(f"n_sessions must be >= 1 (got {n_sessions})")
    if num_shards < 1:
        raise UserError(
            f"num_shards must be >= 1 (got {num_shards}); 1 unless several machines share the work"
        )
    if not 0 <= shard_index < num_shards:
        raise UserError(
            f"shard_index must be in 0..{num_shards - 1} with num_shards={num_shards} (got shard_index={shard_index})"
        )


def build_work_list(
    env_names: list[str], n_sessions: int, shard_index: int, num_shards: int
) -> list[WorkItem]:
    """This shard's items: the full list sorted by (env, session), every num_shards-th from shard_index."""
    check_counts(n_sessions, shard_index, num_shards)
    items = sorted(WorkItem(env, s) for env in env_names for s in range(n_sessions))
    return items[shard_index::num_shards]


def split_for_workers(items: list[WorkItem], n_workers: int) -> list[list[WorkItem]]:
    """Round-robin: each worker walks the envs in order, so it switches emulator once per env."""
    return [items[w::n_workers] for w in range(n_workers) if items[w::n_workers]]


@dataclass(frozen=True)
class GenerationSpec:
    """One generation run's settings (plain data: it pickles into each spawned worker with its share)."""

    env_names: tuple[str, ...]
    output_dpath: Path
    n_sessions: int
    n_steps_max: int
    n_workers: int
    image_size: int
    frame_skip: int
    sticky_action_prob: float
    seed: int
    variant: str
    agent_options: dict[str, Any]
    levels: tuple[int, int] | None = None  # coinrun: the level range episodes map into
    shard_index: int = 0
    num_shards: int = 1
    # gymnasium games only: keyword arguments for gymnasium.make, and their actions' vocabulary names
    gymnasium_make_kwargs: dict[str, Any] | None = None
    gymnasium_action_names: tuple[str, ...] | None = None

    def env_options(self, env_name: str) -> dict[str, Any]:
        """The `make_env` keywords beyond the shared ones that `env_name` takes (gymnasium games' own)."""
        from envs.names import gymnasium_env_id

        if gymnasium_env_id(env_name) is None:
            return {}
        return {"make_kwargs": self.gymnasium_make_kwargs, "action_names": self.gymnasium_action_names}

    def check(self) -> None:
        """Every setting that can be checked before a lock, a folder or a worker exists; UserError if bad."""
        from data_generation.variants import policy_arguments

        check_counts(self.n_sessions, self.shard_index, self.num_shards)
        if self.n_workers < 1:
            raise UserError(f"n_workers must be >= 1 (got {self.n_workers})")
        if self.n_steps_max < 1:
            raise UserError(f"n_steps_max must be >= 1 (got {self.n_steps_max})")
        policy_arguments(self.variant, self.agent_options)
