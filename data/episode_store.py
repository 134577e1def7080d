"""The episode store: `EpisodeWriter` (generators) and `EpisodeStore` (datasets) over one format.

Layout under a root directory:

    <root>/shards/<shard_name>/<episode_id>.gre    one file per episode (data/store_format.py)
    <root>/shards/<shard_name>/index.jsonl         one line per episode (data/store_index.py)
    <root>/shards/<shard_name>/.writer.lock        held by the one process writing that shard

Several processes or machines write into one root by each using its own `shard_name`. An episode
becomes visible only when complete (temp file, fsync, rename); a killed writer leaves at most a
dot-prefixed temp file, which readers ignore and the next writer of that shard deletes.

Readers open files lazily and per process (handles are dropped after a fork), so a DataLoader can
fork any number of workers from a store built in the main process.

    python -m data.episode_store summary ROOT     # episodes per env; decodes every one and names the damaged
    python -m data.episode_store rebuild ROOT     # rewrite every shard's index from the files
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import sys
import warnings
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from common.atomic import atomic_path
from common.errors import UserError
from data.actions import ACTION_VOCABULARY, NUM_ACTIONS
from data.store_format import (
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_ZSTD_LEVEL,
    CorruptEpisodeError,
    EpisodeHeader,
    decode_actions,
    decode_frames,
    encode_episode,
    read_header_from_fd,
)
from data.store_index import (
    CHECK_MODES,
    EpisodeRecord,
    ShardReport,
    append_index,
    episode_fpath,
    read_header_file,
    scan_shard,
    write_index,
)

__all__ = [
    "CorruptEpisodeError",
    "EpisodeRecord",
    "EpisodeStore",
    "EpisodeWriter",
    "episode_id_for",
    "is_store",
    "repair_shard",
    "shard_dpath",
]

SHARDS_DIRNAME = "shards"
LOCK_NAME = ".writer.lock"
SET_ASIDE_SUFFIX = ".corrupt"  # appended to an episode file a writer's repair found unreadable
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MAX_OPEN_FILES = 64  # per process; an LRU keeps file descriptors bounded over millions of episodes


def episode_id_for(env_name: str, session_index: int) -> str:
    """The contract's episode id: `f"{env_name}__s{session_index:06d}"`."""
    return f"{env_name}__s{session_index:06d}"


def shards_dpath(root_dpath: str | Path) -> Path:
    return Path(root_dpath) / SHARDS_DIRNAME


def shard_dpath(root_dpath: str | Path, shard_name: str) -> Path:
    """The one place a shard's folder is spelled (see the layout above)."""
    return shards_dpath(root_dpath) / shard_name


def is_store(root_dpath: str | Path) -> bool:
    """True when `root_dpath` holds an episode store (possibly still empty)."""
    return shards_dpath(root_dpath).is_dir()


def shard_names(root_dpath: str | Path) -> list[str]:
    """Every shard of the store, sorted (dot-prefixed folders are not shards)."""
    return sorted(
        p.name for p in shards_dpath(root_dpath).iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def _check_name(kind: str, name: str) -> None:
    if not SAFE_NAME.match(name):
        raise UserError(f"{kind} '{name}' must be letters, digits, '.', '_', '+' or '-' (it names a file)")


def _fsync_dir(dpath: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(dpath, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EpisodeWriter:
    """Writes episodes into one shard; exactly one live writer per shard (enforced with a lock)."""

    def __init__(
        self,
        root_dpath: str | Path,
        shard_name: str,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
    ) -> None:
        _check_name("shard_name", shard_name)
        self.shard_dpath = shard_dpath(root_dpath, shard_name)
        self.chunk_frames, self.zstd_level = int(chunk_frames), int(zstd_level)
        try:
            self.shard_dpath.mkdir(parents=True, exist_ok=True)
            self._lock_handle = open(self.shard_dpath / LOCK_NAME, "a+")  # noqa: SIM115 (held for life)
        except OSError as error:
            raise UserError(
                f"cannot create episode shard {self.shard_dpath}: {error.strerror}; choose a writable root_dpath"
            ) from error
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            self._lock_handle.close()
            raise UserError(
                f"shard '{shard_name}' in {root_dpath} is being written by another process; give each writer its own shard_name"
            ) from error
        self.repair()

    def repair(self) -> ShardReport:
        """Bring the shard back to a clean state after a killed writer (this writer holds its lock):
        delete its temp files, set corrupt episodes aside (kept for inspection, so a rerun rewrites them)
        and rewrite the index if a crash between rename and index append, or a torn line, left it stale.
        Returns the shard's report after the repair."""
        for leftover in self.shard_dpath.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        records, report = scan_shard(self.shard_dpath, check="stat")
        if report.is_clean:
            return report
        for episode_id in report.corrupt:
            fpath = episode_fpath(self.shard_dpath, episode_id)
            fpath.replace(fpath.with_name(fpath.name + SET_ASIDE_SUFFIX))
        write_index(self.shard_dpath, records)
        return scan_shard(self.shard_dpath, check="stat")[1]

    def has_episode(self, episode_id: str) -> bool:
        """True when this shard already holds the complete episode (files appear only when complete)."""
        return episode_fpath(self.shard_dpath, episode_id).exists()

    def write(
        self,
        episode_id: str,
        frames: np.ndarray,
        actions: np.ndarray,
        env_name: str,
        session_index: int,
        info: dict[str, Any],
    ) -> int:
        """Atomically write one episode (frames uint8 [T,H,W,3], actions [T-1] vocabulary ids); bytes written."""
        _check_name("episode_id", episode_id)
        frames, actions = _validated_arrays(frames, actions)
        try:
            payload = encode_episode(
                frames,
                actions,
                episode_id=episode_id,
                env_name=env_name,
                session_index=session_index,
                action_names=ACTION_VOCABULARY,
                info=info,
                chunk_frames=self.chunk_frames,
                level=self.zstd_level,
            )
        except TypeError as error:
            raise ValueError(f"episode {episode_id}: {error}") from error
        final_fpath = episode_fpath(self.shard_dpath, episode_id)
        try:
            with atomic_path(final_fpath) as tmp_fpath:  # temp + fsync + rename; temp removed on failure
                tmp_fpath.write_bytes(payload)
            _fsync_dir(self.shard_dpath)
            header = read_header_file(final_fpath)
            append_index(self.shard_dpath, EpisodeRecord.from_header(header, self.shard_dpath.name))
        except OSError as error:
            raise UserError(
                f"cannot write episode {final_fpath}: {error.strerror}; free disk space or choose a writable root_dpath"
            ) from error
        return len(payload)

    def close(self) -> None:
        if not self._lock_handle.closed:
            self._lock_handle.close()  # releases the flock

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _validated_arrays(frames: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames, actions = np.asarray(frames), np.asarray(actions)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be uint8 [T>=1, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if frames.shape[1] != frames.shape[2]:
        raise ValueError(
            f"frames must be square (the env pads them), got {frames.shape[1]}x{frames.shape[2]}"
        )
    if actions.shape != (frames.shape[0] - 1,) or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(
            f"actions must be integer [T-1] = [{frames.shape[0] - 1}], got {actions.dtype} {list(actions.shape)}"
        )
    if actions.size and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
        raise ValueError(
            f"actions must be vocabulary ids in [0, {NUM_ACTIONS}), got {actions.min()}..{actions.max()}"
        )
    return frames, actions


class EpisodeStore:
    """Read-only view of every shard under a root; verifies the indexes against the files on open."""

    def __init__(self, root_dpath: str | Path, check: str = "stat") -> None:
        if check not in CHECK_MODES:
            raise UserError(f"check='{check}' is not one of {', '.join(CHECK_MODES)}")
        self.root_dpath = Path(root_dpath)
        if not is_store(self.root_dpath):
            raise UserError(
                f"no episode store at {self.root_dpath} (no '{SHARDS_DIRNAME}/' folder); generate data first: python run.py generate ..."
            )
        self.reports: list[ShardReport] = []
        self._records: dict[str, EpisodeRecord] = {}
        for name in shard_names(self.root_dpath):
            self._add_shard(shard_dpath(self.root_dpath, name), check)
        self.corrupt_episode_ids: set[str] = {i for r in self.reports for i in r.corrupt}
        self.episodes: list[EpisodeRecord] = [self._records[i] for i in sorted(self._records)]
        self._pid = -1  # per-process state is created on first read (after any fork)

    def _add_shard(self, dpath: Path, check: str) -> None:
        records, report = scan_shard(dpath, check)
        self.reports.append(report)
        if not report.is_clean:
            warnings.warn(
                f"stale episode index: {report.summary()} (fixed on the next write; or run python -m data.episode_store rebuild {self.root_dpath})",
                stacklevel=3,
            )
        for episode_id, record in records.items():
            if episode_id in self._records:
                other = self._records[episode_id].shard_name
                warnings.warn(
                    f"episode {episode_id} is in shards '{other}' and '{record.shard_name}'; using '{other}'",
                    stacklevel=3,
                )
                continue
            self._records[episode_id] = record

    def record(self, episode_id: str) -> EpisodeRecord:
        if episode_id not in self._records:
            raise KeyError(f"episode {episode_id} is not in the store at {self.root_dpath}")
        return self._records[episode_id]

    def _ensure_process_state(self) -> None:
        """File descriptors and the zstd context must not be shared across fork: rebuild them per pid."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._open: OrderedDict[str, tuple[int, EpisodeHeader]] = OrderedDict()
            self._decompressor = zstandard.ZstdDecompressor()

    def _open_episode(self, episode_id: str) -> tuple[int, EpisodeHeader]:
        """LRU of open episodes: (fd, header). Raises CorruptEpisodeError or FileNotFoundError."""
        self._ensure_process_state()
        if episode_id in self._open:
            self._open.move_to_end(episode_id)
            return self._open[episode_id]
        record = self.record(episode_id)
        fd = os.open(episode_fpath(shard_dpath(self.root_dpath, record.shard_name), episode_id), os.O_RDONLY)
        try:
            header = read_header_from_fd(fd, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise
        if len(self._open) >= MAX_OPEN_FILES:
            os.close(self._open.popitem(last=False)[1][0])
        self._open[episode_id] = (fd, header)
        return fd, header

    def header(self, episode_id: str) -> EpisodeHeader:
        """The full header, including the episode's `info` dict."""
        return self._open_episode(episode_id)[1]

    def read_frames(self, episode_id: str, start: int, stop: int) -> np.ndarray:
        """uint8 [stop-start, H, W, 3]; decodes only the chunks the range touches."""
        fd, header = self._open_episode(episode_id)
        if not 0 <= start < stop <= header.num_frames:
            raise IndexError(
                f"frames [{start}, {stop}) outside episode {episode_id} of {header.num_frames} frames"
            )
        return decode_frames(fd, header, start, stop, self._decompressor)

    def read_actions(self, episode_id: str, start: int, stop: int) -> np.ndarray:
        """int64 [stop-start] vocabulary ids (the episode's own vocabulary: see EpisodeRecord.action_names)."""
        fd, header = self._open_episode(episode_id)
        if not 0 <= start <= stop <= header.num_frames - 1:
            raise IndexError(
                f"actions [{start}, {stop}) outside episode {episode_id} of {header.num_frames - 1} actions"
            )
        return decode_actions(fd, header, self._decompressor)[start:stop]

    def close(self) -> None:
        if self._pid == os.getpid():
            for fd, _ in self._open.values():
                os.close(fd)
            self._open.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into spawn-started workers: ship the index, not file descriptors."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_open", "_decompressor")}
        return {**state, "_pid": -1}


def store_totals(root_dpath: str | Path) -> dict[str, Any]:
    """How much a store holds: episodes, frames, mean frames per episode (from its index)."""
    lengths = [record.num_frames for record in EpisodeStore(root_dpath).episodes]
    return {
        "episodes": len(lengths),
        "frames": int(sum(lengths)),
        "mean_episode_frames": round(sum(lengths) / max(1, len(lengths)), 1),
    }


def rebuild_index(root_dpath: str | Path) -> list[ShardReport]:
    """Rewrite every shard's index from its episode files' headers (takes each shard's writer lock)."""
    return [repair_shard(root_dpath, name) for name in shard_names(root_dpath)]


def repair_shard(root_dpath: str | Path, shard_name: str) -> ShardReport:
    """Take the shard's writer lock and repair it (EpisodeWriter.repair); its report afterwards."""
    with EpisodeWriter(root_dpath, shard_name) as writer:
        return writer.repair()


def verify_episodes(store: EpisodeStore, show_progress: bool = True) -> dict[str, str]:
    """Decode every episode in full (zstd checksums catch flipped bytes) -> {episode_id: problem}."""
    from tqdm import tqdm

    damaged = {}
    for record in tqdm(store.episodes, desc="verifying", unit="ep", disable=not show_progress, leave=False):
        try:
            store.read_frames(record.episode_id, 0, record.num_frames)
            store.read_actions(record.episode_id, 0, record.num_frames - 1)
        except (CorruptEpisodeError, OSError) as error:
            damaged[record.episode_id] = str(error)
    return damaged


def unreadable_at_open(store: EpisodeStore) -> dict[str, str]:
    """{episode_id: problem} for the files the store left out when it opened (header unreadable or the
    file cut short): readers skip them without decoding anything."""
    problems = {}
    for report in store.reports:
        for episode_id in report.corrupt:
            fpath = episode_fpath(shard_dpath(store.root_dpath, report.shard_name), episode_id)
            try:
                read_header_file(fpath)
                problems[episode_id] = "unreadable when the store was opened"  # changed since then
            except (CorruptEpisodeError, OSError) as error:
                problems[episode_id] = str(error)
    return problems


def set_aside_files(root_dpath: str | Path) -> list[Path]:
    """Episode files a writer's repair renamed aside as unreadable (a rerun of generate rewrites them)."""
    return sorted(shards_dpath(root_dpath).glob(f"*/*{SET_ASIDE_SUFFIX}"))


def summary_lines(store: EpisodeStore, decode: bool) -> tuple[list[str], int]:
    """What `summary` prints, and the number of damaged episodes readers skip."""
    per_env = Counter(r.env_name for r in store.episodes)
    frames = Counter()
    for r in store.episodes:
        frames[r.env_name] += r.num_frames
    at_open = unreadable_at_open(store)
    undecodable = verify_episodes(store) if decode else {}
    lines = [f"{env}: {per_env[env]} episodes, {frames[env]} frames" for env in sorted(per_env)]
    lines += [
        f"stale index: {report.summary()} (rebuild rewrites it)"
        for report in store.reports
        if not report.is_clean
    ]
    damaged = {**at_open, **undecodable}
    lines += [f"damaged: {episode_id}: {problem}" for episode_id, problem in sorted(damaged.items())[:10]]
    if len(damaged) > 10:
        lines.append(f"damaged: ... and {len(damaged) - 10} more")
    checked = (
        "every episode decoded" if decode else "not decoded (--fast): damage inside chunks not looked for"
    )
    counts = f"{len(damaged)} damaged (readers skip them: {len(at_open)} unreadable at open"
    counts += f", {len(undecodable)} failed to decode)" if decode else ")"
    lines.append(
        f"{len(store.episodes)} readable episodes in {len(store.reports)} shards; {checked}; {counts}"
    )
    set_aside = set_aside_files(store.root_dpath)
    if set_aside:
        lines.append(
            f"{len(set_aside)} episode files set aside by a writer's repair (*{SET_ASIDE_SUFFIX}; the next "
            "generate run records them again)"
        )
    return lines, len(damaged)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.episode_store", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("summary", "rebuild"))
    parser.add_argument("root_dpath")
    parser.add_argument("--fast", action="store_true", help="summary from the indexes only, without decoding")
    args = parser.parse_args(argv)
    try:
        if args.command == "rebuild":
            rebuild_index(args.root_dpath)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what the opening warns about, the summary lists
            store = EpisodeStore(args.root_dpath)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    lines, num_damaged = summary_lines(store, decode=not args.fast)
    print("\n".join(lines))
    return 1 if num_damaged else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
