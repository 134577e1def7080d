"""Per-shard episode index (`index.jsonl`) and the staleness check that keeps it honest.

Each shard directory holds its episode files and one index line per episode, appended right after
the episode's atomic rename. A reader loads one small file per shard instead of opening every episode;
it then compares the index with the directory listing, so an episode written after a crash (renamed
but not yet indexed), deleted, or replaced by hand is noticed, read from its own header, and reported.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from data.store_format import EPISODE_SUFFIX, CorruptEpisodeError, EpisodeHeader, read_header_from_fd

INDEX_NAME = "index.jsonl"
CHECK_MODES = ("stat", "names", "none")  # how hard a reader verifies the index against the directory


@dataclass(frozen=True)
class EpisodeRecord:
    """What the index knows about one episode: enough to build datasets without opening the file."""

    episode_id: str
    env_name: str
    session_index: int
    num_frames: int
    image_size: int
    action_names: tuple[str, ...]
    shard_name: str
    file_size: int

    @classmethod
    def from_header(cls, header: EpisodeHeader, shard_name: str) -> EpisodeRecord:
        return cls(
            episode_id=header.episode_id,
            env_name=header.env_name,
            session_index=header.session_index,
            num_frames=header.num_frames,
            image_size=header.image_size,
            action_names=header.action_names,
            shard_name=shard_name,
            file_size=header.file_size,
        )

    @classmethod
    def from_index_line(cls, raw: dict[str, Any], shard_name: str) -> EpisodeRecord:
        return cls(**{**raw, "action_names": tuple(raw["action_names"]), "shard_name": shard_name})

    def to_index_line(self) -> str:
        fields = asdict(self)
        del fields["shard_name"]  # implied by the directory; lets a shard be renamed or moved
        return json.dumps(fields, sort_keys=True) + "\n"


@dataclass
class ShardReport:
    """What the staleness check found in one shard (episode ids)."""

    shard_name: str
    missing: list[str] = field(default_factory=list)  # indexed, file gone
    changed: list[str] = field(default_factory=list)  # indexed with another size; re-read
    unindexed: list[str] = field(default_factory=list)  # file present, not indexed; read its header
    corrupt: list[str] = field(default_factory=list)  # unreadable header or truncated: skipped
    num_bad_index_lines: int = 0  # torn last line after a crash, or edited by hand

    @property
    def is_clean(self) -> bool:
        return not (
            self.missing or self.changed or self.unindexed or self.corrupt or self.num_bad_index_lines
        )

    def summary(self) -> str:
        parts = [
            f"{len(ids)} {name}"
            for name, ids in (
                ("missing", self.missing),
                ("changed", self.changed),
                ("unindexed", self.unindexed),
                ("corrupt", self.corrupt),
            )
            if ids
        ]
        if self.num_bad_index_lines:
            parts.append(f"{self.num_bad_index_lines} unreadable index lines")
        return f"shard '{self.shard_name}': " + ", ".join(parts)


def episode_fpath(shard_dpath: Path, episode_id: str) -> Path:
    return shard_dpath / f"{episode_id}{EPISODE_SUFFIX}"


def read_header_file(fpath: Path) -> EpisodeHeader:
    """Open an episode file just long enough to read and validate its header."""
    fd = os.open(fpath, os.O_RDONLY)
    try:
        return read_header_from_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def read_index(shard_dpath: Path) -> tuple[dict[str, EpisodeRecord], int]:
    """Index entries by episode id (a later line wins) and the number of unreadable lines."""
    index_fpath = shard_dpath / INDEX_NAME
    if not index_fpath.exists():
        return {}, 0
    records: dict[str, EpisodeRecord] = {}
    num_bad = 0
    for line in index_fpath.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = EpisodeRecord.from_index_line(json.loads(line), shard_dpath.name)
        except (ValueError, TypeError, KeyError):
            num_bad += 1
            continue
        records[record.episode_id] = record
    return records, num_bad


def _list_episode_files(shard_dpath: Path, with_sizes: bool) -> dict[str, int]:
    """episode id -> file size (-1 when not stat'ed); temp files (dot-prefixed) are ignored."""
    found: dict[str, int] = {}
    with os.scandir(shard_dpath) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(EPISODE_SUFFIX):
                continue
            found[entry.name[: -len(EPISODE_SUFFIX)]] = entry.stat().st_size if with_sizes else -1
    return found


def scan_shard(shard_dpath: Path, check: str = "stat") -> tuple[dict[str, EpisodeRecord], ShardReport]:
    """The shard's valid episodes: the index, verified against the directory as `check` asks.

    "stat" lists the directory and compares sizes (catches new, deleted and rewritten files);
    "names" lists without stat'ing; "none" trusts the index (fastest start on huge read-only stores).
    """
    records, num_bad = read_index(shard_dpath)
    report = ShardReport(shard_dpath.name, num_bad_index_lines=num_bad)
    if check == "none":
        return records, report
    on_disk = _list_episode_files(shard_dpath, with_sizes=check == "stat")
    for episode_id in sorted(set(records) - set(on_disk)):
        report.missing.append(episode_id)
        del records[episode_id]
    to_read = sorted(set(on_disk) - set(records))
    report.unindexed.extend(to_read)
    changed = [i for i, size in on_disk.items() if i in records and size not in (-1, records[i].file_size)]
    report.changed.extend(sorted(changed))
    for episode_id in to_read + report.changed:
        records.pop(episode_id, None)
        try:
            header = read_header_file(episode_fpath(shard_dpath, episode_id))
        except (CorruptEpisodeError, OSError) as error:
            warnings.warn(f"skipping corrupt episode {shard_dpath / episode_id}: {error}", stacklevel=2)
            report.corrupt.append(episode_id)
            continue
        records[episode_id] = EpisodeRecord.from_header(header, shard_dpath.name)
    return records, report


def write_index(shard_dpath: Path, records: dict[str, EpisodeRecord]) -> None:
    """Replace the shard's index atomically (used to repair it after a crash or by `rebuild`)."""
    lines = [records[i].to_index_line() for i in sorted(records)]
    atomic_write_text(shard_dpath / INDEX_NAME, "".join(lines))


def append_index(shard_dpath: Path, record: EpisodeRecord) -> None:
    """Append one line and fsync; a crash can only tear this last line, which readers skip."""
    with open(shard_dpath / INDEX_NAME, "a", encoding="utf-8") as handle:
        handle.write(record.to_index_line())
        handle.flush()
        os.fsync(handle.fileno())
