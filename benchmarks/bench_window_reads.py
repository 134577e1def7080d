"""Episode-store figures: bytes per frame by chunk size, and 16-frame window reads/s (cold and warm cache).

    python run.py bench window_reads                       # synthetic + real game frames (~2 min, 2 cores)
    python run.py bench window_reads real=false num_reads=200

Rows
- `size`: bytes per stored frame against raw uint8 (H*W*3), for chunks of 1..32 frames, our zstd-3 file
  and HDF5 (h5py's built-in gzip-1 and lzf filters, same chunking) for comparison; `windows_per_s` is
  the warm read rate of random 16-frame windows through `EpisodeStore.read_frames`.
- `reads`: random 16-frame windows through `WindowDataset` + DataLoader (batch 8) with 0 and 2 workers;
  `vs_memcpy` divides by copying the same windows out of an in-memory uint8 array in the same run.
  "cold": before every window its episode file is evicted from the page cache with
  posix_fadvise(DONTNEED) (no root needed; `drop_caches` is also tried and reported in the notes).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, RandomSampler
from tqdm import tqdm

from benchmarks.results_md import publish
from common.errors import UserError
from data.datasets import WindowDataset, make_dataloader
from data.episode_store import EpisodeStore, EpisodeWriter, episode_id_for, shard_dpath
from data.store_index import episode_fpath
from data.store_synthetic import moving_squares, random_actions

WINDOW = 16
OPTIONS = {
    "num_reads": "400",  # windows timed per configuration
    "num_episodes": "6",  # episodes per store
    "episode_frames": "160",
    "sizes": "64,256",
    "chunk_frames": "1,4,8,16,32",
    "real": "true",  # also measure frames from Airstriker-Genesis-v0 and CoinRun (random agent)
}


def episode_frames(source: str, num_frames: int, size: int, seed: int) -> np.ndarray | None:
    """uint8 [T, size, size, 3] from synthetic squares or a real game under random actions."""
    if source == "synthetic":
        return moving_squares(num_frames, size, seed)
    from envs import make_env

    env = make_env(source, size, seed=seed)
    try:
        rng = np.random.default_rng(seed)
        frames = [env.reset(seed=seed)[0]]
        while len(frames) < num_frames:
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            frames.append(obs if not (terminated or truncated) else env.reset()[0])
        return np.stack(frames)
    finally:
        env.close()


def build_store(root: Path, episodes: list[np.ndarray], chunk_frames: int) -> int:
    """Write the episodes; total bytes on disk."""
    with EpisodeWriter(root, "bench", chunk_frames=chunk_frames) as writer:
        return sum(
            writer.write(episode_id_for("bench", i), e, random_actions(len(e), i), "bench", i, {})
            for i, e in enumerate(episodes)
        )


def random_windows(episodes: list[np.ndarray], num_reads: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(episodes), size=num_reads)
    return [(int(e), int(rng.integers(len(episodes[e]) - WINDOW + 1))) for e in picks]


def rate(fn, items: list, desc: str) -> float:
    start = time.perf_counter()
    for item in tqdm(items, desc=desc, leave=False):
        fn(item)
    return len(items) / (time.perf_counter() - start)


def hdf5_row(
    tmp: Path, episodes: list[np.ndarray], windows: list, chunk: int, codec: str
) -> tuple[int, float]:
    """Bytes and warm window reads/s for the same frames in HDF5 with h5py's built-in filters."""
    import h5py

    fpath = tmp / f"episodes_{codec}.h5"
    options = {"compression": "gzip", "compression_opts": 1} if codec == "gzip-1" else {"compression": "lzf"}
    with h5py.File(fpath, "w") as handle:
        for i, frames in enumerate(episodes):
            handle.create_dataset(str(i), data=frames, chunks=(chunk, *frames.shape[1:]), **options)
    with h5py.File(fpath, "r") as handle:
        datasets = [handle[str(i)] for i in range(len(episodes))]
        reads = rate(lambda w: datasets[w[0]][w[1] : w[1] + WINDOW], windows, f"hdf5 {codec}")
    return fpath.stat().st_size, reads


class ColdReads(Dataset):
    """Evicts a window's episode file from the page cache right before reading it."""

    def __init__(self, dataset: WindowDataset) -> None:
        self.dataset = dataset
        self.fpaths = [
            episode_fpath(shard_dpath(dataset.store.root_dpath, r.shard_name), r.episode_id)
            for r in dataset.episodes
        ]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        fd = os.open(self.fpaths[self.dataset.window(index)[0]], os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        return self.dataset[index]


def loader_rate(dataset: Dataset, num_reads: int, num_workers: int, desc: str) -> float:
    """Windows/s through a DataLoader, excluding worker start-up (timed from the first batch)."""
    sampler = RandomSampler(dataset, num_samples=num_reads + 8, generator=torch.Generator().manual_seed(0))
    batches = iter(make_dataloader(dataset, batch_size=8, sampler=sampler, num_workers=num_workers))
    next(batches)
    start, count = time.perf_counter(), 0
    for batch in tqdm(batches, desc=desc, leave=False):
        count += len(batch["frames"])
    return count / (time.perf_counter() - start)


def size_rows(
    tmp: Path, source: str, size: int, episodes: list[np.ndarray], opts: dict[str, str]
) -> list[dict]:
    raw = episodes[0][0].nbytes
    num_frames = sum(len(e) for e in episodes)
    windows = random_windows(episodes, int(opts["num_reads"]), seed=1)
    rows = []
    for chunk in [int(c) for c in opts["chunk_frames"].split(",")]:
        root = tmp / f"{source}_{size}_{chunk}"
        num_bytes = build_store(root, episodes, chunk)
        store = EpisodeStore(root)
        ids = [r.episode_id for r in store.episodes]
        reads = rate(
            lambda w, store=store, ids=ids: store.read_frames(ids[w[0]], w[1], w[1] + WINDOW),
            windows,
            f"{source} {size}px c{chunk}",
        )
        rows.append(
            _row("size", source, size, "gre zstd-3", chunk, 0, "warm", num_bytes / num_frames / raw, reads)
        )
    for codec in ("gzip-1", "lzf"):
        num_bytes, reads = hdf5_row(tmp, episodes, windows, 8, codec)
        rows.append(
            _row("size", source, size, f"hdf5 {codec}", 8, 0, "warm", num_bytes / num_frames / raw, reads)
        )
    return rows


def read_rows(tmp: Path, size: int, episodes: list[np.ndarray], num_reads: int) -> list[dict]:
    root = tmp / f"reads_{size}"
    num_bytes = build_store(root, episodes, chunk_frames=8)
    ratio = num_bytes / sum(e.nbytes for e in episodes)
    dataset = WindowDataset(root, "train", num_frames=WINDOW, split_fractions=(1.0, 0.0, 0.0))
    windows = random_windows(episodes, num_reads, seed=2)
    memcpy = rate(lambda w: episodes[w[0]][w[1] : w[1] + WINDOW].copy(), windows, "memcpy")
    rows = []
    for cache, data in (("warm", dataset), ("cold", ColdReads(dataset))):
        for workers in (0, 2):
            reads = loader_rate(data, num_reads, workers, f"{size}px {cache} w{workers}")
            row = _row("reads", "synthetic", size, "gre zstd-3", 8, workers, cache, ratio, reads)
            rows.append({**row, "vs_memcpy": round(reads / memcpy, 4)})
    return rows


def _row(section, source, size, fmt, chunk, workers, cache, ratio, reads) -> dict[str, Any]:
    return {
        "section": section,
        "frames": source,
        "px": size,
        "format": fmt,
        "chunk": chunk,
        "workers": workers,
        "cache": cache,
        "stored/raw": round(ratio, 5),
        "windows_per_s": round(reads, 1),
        "vs_memcpy": "",
    }


def try_drop_caches() -> str:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches works here (also used)"
    except OSError as error:
        return f"drop_caches not permitted ({error.strerror})"


def main(**options: str) -> int:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UserError(
            f"unknown option(s) {unknown}; known: {', '.join(f'{k}={v}' for k, v in OPTIONS.items())}"
        )
    opts = {**OPTIONS, **options}
    sizes = [int(s) for s in opts["sizes"].split(",")]
    num_episodes, length = int(opts["num_episodes"]), int(opts["episode_frames"])
    sources = ["synthetic"] + (["Airstriker-Genesis-v0", "coinrun"] if opts["real"] == "true" else [])
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="bench_window_reads_", dir=Path.home()) as tmp_name:
        tmp = Path(tmp_name)
        for source in sources:
            for size in sizes if source != "coinrun" else [s for s in sizes if s == 64]:
                try:
                    episodes = [episode_frames(source, length, size, seed) for seed in range(num_episodes)]
                except Exception as error:  # real games need ROMs/procgen; the synthetic rows still count
                    skipped.append(f"{source}: {type(error).__name__}: {error}".splitlines()[0])
                    break
                rows += size_rows(tmp, source, size, episodes, opts)
        drop = try_drop_caches()
        for size in sizes:
            episodes = [moving_squares(length, size, seed) for seed in range(num_episodes)]
            rows += read_rows(tmp, size, episodes, int(opts["num_reads"]))
    notes = (
        f"{num_episodes} episodes x {length} frames per store; random {WINDOW}-frame windows; real frames from a "
        f"random agent. Cold = per-window posix_fadvise(DONTNEED) of the episode file; {drop}. "
        f"Store under {Path.home()} (local disk). Rates from a shared machine vary with its load; compare rows "
        f"of one run. Options: {opts}." + (f" Skipped: {'; '.join(skipped)}." if skipped else "")
    )
    publish("window_reads", rows, notes)
    return 0
