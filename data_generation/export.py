"""`python run.py export store_dpath=... output_dpath=...`: a store's episodes as mp4 videos to watch.

One folder per game, one `<episode id>.mp4` per episode with its actions beside it in `<episode id>.csv`
(a column `action`, vocabulary names): exactly the layout `python run.py import` reads, so an exported
game imports back (with `lossless=true` and the store's frame size, frame for frame).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from tqdm import tqdm

from common.atomic import atomic_write_text
from common.config import compose_config
from common.errors import UserError
from common.paths import ensure_writable_dpath
from common.videos import write_mp4
from data.episode_store import EpisodeRecord, EpisodeStore

CONFIG_DPATH = Path(__file__).resolve().parent / "export_configs"
DEFAULT_CONFIG = "videos"


def actions_csv(store: EpisodeStore, record: EpisodeRecord) -> str:
    """The episode's actions as import reads them: a header `action`, then one vocabulary name per row."""
    ids = store.read_actions(record.episode_id, 0, record.num_frames - 1)  # int64 [T-1]
    out = io.StringIO()
    out.write("action\n")
    out.writelines(f"{record.action_names[int(i)]}\n" for i in ids)
    return out.getvalue()


def chosen_episodes(
    store: EpisodeStore, env_names: list[str] | None, max_episodes: int | None
) -> list[EpisodeRecord]:
    available = sorted({r.env_name for r in store.episodes})
    missing = sorted(set(env_names or ()) - set(available))
    if missing:
        raise UserError(f"env_names {missing} are not in {store.root_dpath}; it has: {', '.join(available)}")
    chosen = []
    for env_name in env_names or available:
        records = sorted((r for r in store.episodes if r.env_name == env_name), key=lambda r: r.session_index)
        chosen += records[:max_episodes] if max_episodes is not None else records
    return chosen


def main(mode: str | None, args: list[str]) -> int:
    cfg = compose_config(CONFIG_DPATH, DEFAULT_CONFIG, args)
    for key in ("store_dpath", "output_dpath"):
        if cfg[key] is None:
            raise UserError(f"{key}= is required (python run.py export --help)")
    if int(cfg.scale) < 1 or float(cfg.fps) <= 0:
        raise UserError(f"scale must be >= 1 and fps > 0 (got scale={cfg.scale}, fps={cfg.fps})")
    if cfg.max_episodes is not None and int(cfg.max_episodes) < 1:
        raise UserError(f"max_episodes must be >= 1 or null (got {cfg.max_episodes})")
    store = EpisodeStore(cfg.store_dpath)
    env_names = list(cfg.env_names) if cfg.env_names is not None else None
    records = chosen_episodes(store, env_names, cfg.max_episodes)
    output_dpath = ensure_writable_dpath(cfg.output_dpath, "output_dpath")
    started, written, frames = time.perf_counter(), 0, 0
    for record in tqdm(records, desc="export", unit="ep", dynamic_ncols=True, disable=None):
        video_fpath = output_dpath / record.env_name / f"{record.episode_id}.mp4"
        if video_fpath.is_file():
            continue
        # the actions first: a video without its actions beside it would stop an import
        atomic_write_text(video_fpath.with_suffix(".csv"), actions_csv(store, record))
        episode_frames = store.read_frames(record.episode_id, 0, record.num_frames)  # uint8 [T, S, S, 3]
        write_mp4(video_fpath, episode_frames, float(cfg.fps), int(cfg.scale), bool(cfg.lossless))
        written, frames = written + 1, frames + record.num_frames
    print(
        f"exported {written} episodes ({frames} frames) in {time.perf_counter() - started:.1f}s; "
        f"{len(records) - written} were already there; output: {output_dpath} (one folder per game)"
    )
    return 0
