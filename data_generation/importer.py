"""`python run.py import [config=videos|minari] key=value ...`: your own recordings into an episode store.

config=videos (the default): a folder of videos or frame-image folders with their actions beside them
(data_generation/recordings.py); config=minari: a Minari dataset on disk (data_generation/minari_source.py).
Episodes go through the store's writer (data/episode_store.py), each atomic; a rerun skips the episodes
already there, so an import stopped by a bad file resumes once the file is fixed. Frames are padded and
resized as generated ones are, actions stored as vocabulary ids, and `genie_redux train` reads the store
like any generated one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from common.config import compose_config
from common.errors import UserError
from common.paths import ensure_writable_dpath
from data.actions import ACTION_VOCABULARY, action_ids
from data.episode_store import SAFE_NAME, EpisodeStore, EpisodeWriter, episode_id_for, is_store
from data.store_splits import DEFAULT_SPLIT_FRACTIONS, sessions_in_split

CONFIG_DPATH = Path(__file__).resolve().parent / "import_configs"
DEFAULT_CONFIG = "videos"
SHARD_NAME = "import"  # one writer at a time: a second import into the same store is one line


@dataclass
class ImportSource:
    game: str
    episode_names: list[str]  # each episode's source (a file, a folder, a Minari episode), in session order
    env_actions: tuple[str, ...]  # the game's own actions (vocabulary names): what a random action may be
    read: Callable[[int], tuple[np.ndarray, list[str]]]  # i -> (frames uint8 [T, H, W, 3], T-1 action names)


def checked_action_names(cfg: DictConfig) -> list[str] | None:
    if cfg.action_names is None:
        return None
    names = [str(name).upper() for name in cfg.action_names]
    unknown = [name for name in names if name not in ACTION_VOCABULARY]
    if unknown:
        raise UserError(f"action_names {unknown} are not in the vocabulary ({', '.join(ACTION_VOCABULARY)})")
    return names


def safe_game_name(name: str) -> str:
    """A folder's name as a store's game name: characters a file name may not hold become '-'."""
    safe = "".join(c if c.isalnum() or c in "._+-" else "-" for c in name).lstrip("._+-")
    return safe or "recordings"


def videos_source(cfg: DictConfig) -> ImportSource:
    """Every recording's actions read and named up front, so an unknown name stops before anything is written."""
    from data_generation.recordings import find_recordings, read_action_labels, read_frames, vocabulary_names

    source_dpath = Path(cfg.source_dpath)
    episodes = find_recordings(source_dpath)
    action_names = checked_action_names(cfg)
    action_map = OmegaConf.to_container(cfg.action_map, resolve=True)
    actions = [
        vocabulary_names(read_action_labels(e.actions_fpath), e.actions_fpath, action_names, action_map)
        for e in episodes
    ]
    used = {name for names in actions for name in names}
    env_actions = tuple(action_names) if action_names else tuple(n for n in ACTION_VOCABULARY if n in used)
    return ImportSource(
        game=cfg.game or safe_game_name(source_dpath.name),
        episode_names=[e.name for e in episodes],
        env_actions=env_actions,
        read=lambda i: (read_frames(episodes[i]), actions[i]),
    )


def minari_source(cfg: DictConfig) -> ImportSource:
    from data_generation.minari_source import (
        check_frames,
        dataset_action_names,
        dataset_game_name,
        open_dataset,
    )

    dataset = open_dataset(cfg.dataset_id, cfg.dataset_dpath)
    names = dataset_action_names(dataset, checked_action_names(cfg))
    first_action = int(dataset.action_space.start)

    def read(index: int) -> tuple[np.ndarray, list[str]]:
        episode = dataset[index]
        frames = check_frames(episode.observations, cfg.observation_key, f"Minari episode {episode.id}")
        local = np.asarray(episode.actions, dtype=np.int64).reshape(-1) - first_action  # [T]
        return frames, [names[int(a)] for a in local]

    if dataset.total_episodes == 0:
        raise UserError(f"Minari dataset {dataset.id} holds no episodes")
    read(0)  # observations that are not frames: one line before any episode is written
    return ImportSource(
        game=cfg.game or dataset_game_name(dataset),
        episode_names=[f"{dataset.id}#{int(i)}" for i in dataset.episode_indices],
        env_actions=names,
        read=read,
    )


SOURCES: dict[str, Callable[[DictConfig], ImportSource]] = {"videos": videos_source, "minari": minari_source}


@dataclass
class ImportSummary:
    imported: int = 0
    already_there: int = 0
    frames: int = 0
    bytes_on_disk: int = 0


def imported_sources(output_dpath: Path, game: str) -> dict[str, str]:
    """episode id -> the source it was imported from, for the game's episodes already in the store."""
    if not is_store(output_dpath):
        return {}
    store = EpisodeStore(output_dpath)
    return {
        r.episode_id: str(store.header(r.episode_id).info.get("source"))
        for r in store.episodes
        if r.env_name == game
    }


def write_episodes(source: ImportSource, output_dpath: Path, image_size: int, kind: str) -> ImportSummary:
    from envs.frames import FrameResizer

    summary = ImportSummary()
    done = imported_sources(output_dpath, source.game)
    for index, name in enumerate(source.episode_names):
        before = done.get(episode_id_for(source.game, index))
        if before is not None and before != name:
            raise UserError(
                f"{output_dpath} already holds episode {index} of {source.game}, imported from {before}, but "
                f"it is {name} now (the source changed): import into a new output_dpath"
            )
    resize = FrameResizer(image_size)
    # disable=None: a progress bar on a terminal only
    bar = tqdm(source.episode_names, desc="import", unit="ep", dynamic_ncols=True, disable=None)
    with EpisodeWriter(output_dpath, SHARD_NAME) as writer:
        for index, name in enumerate(bar):
            episode_id = episode_id_for(source.game, index)
            if episode_id in done:
                summary.already_there += 1
                continue
            frames, actions = source.read(index)
            if len(actions) != len(frames) - 1:
                raise UserError(
                    f"{name}: {len(frames)} frames need {len(frames) - 1} actions (one per transition), but its "
                    f"actions number {len(actions)}; fix it and rerun (episodes before it are kept)"
                )
            resized = np.stack([resize(frame) for frame in frames])  # [T, S, S, 3]
            info = {"source": name, "imported_from": kind, "env_actions": list(source.env_actions)}
            summary.bytes_on_disk += writer.write(
                episode_id, resized, np.asarray(action_ids(actions), dtype=np.int64), source.game, index, info
            )
            summary.imported += 1
            summary.frames += len(frames)
    return summary


def split_line(source: ImportSource) -> str:
    """How the store's default split (by session) shares the game's episodes out."""
    sessions = list(range(len(source.episode_names)))
    counts = [
        len(sessions_in_split(sessions, source.game, split, DEFAULT_SPLIT_FRACTIONS, 0))
        for split in ("train", "val", "test")
    ]
    line = f"split by session: {counts[0]} train, {counts[1]} val, {counts[2]} test episodes"
    if counts[1] == 0:
        line += " (no validation episode: import more, or train with train.validation.every_steps=0)"
    return line


def main(mode: str | None, args: list[str]) -> int:
    from data_generation.cli import check_model_frame_size
    from envs.frames import check_image_size

    cfg = compose_config(CONFIG_DPATH, DEFAULT_CONFIG, args)
    if cfg.format not in SOURCES:
        raise UserError(
            f"format={cfg.format} is not one of {', '.join(SOURCES)} (config=videos or config=minari)"
        )
    for key in ("output_dpath", "source_dpath") if cfg.format == "videos" else ("output_dpath",):
        if cfg[key] is None:
            raise UserError(f"{key}= is required (python run.py import --help)")
    image_size = check_image_size(cfg.image_size)
    check_model_frame_size(image_size)
    if cfg.format not in SOURCES:
        raise UserError(
            f"format={cfg.format} is not one of {', '.join(SOURCES)} (config=videos or config=minari)"
        )
    if cfg.game is not None and not SAFE_NAME.match(str(cfg.game)):
        raise UserError(f"game={cfg.game} must be letters, digits, '.', '_', '+' or '-' (it names files)")
    source = SOURCES[cfg.format](cfg)
    output_dpath = ensure_writable_dpath(cfg.output_dpath, "output_dpath")
    started = time.perf_counter()
    summary = write_episodes(source, output_dpath, image_size, cfg.format)
    seconds = time.perf_counter() - started
    print(
        f"imported {summary.imported} episodes ({summary.frames} frames, {summary.bytes_on_disk / 2**20:.1f} MiB) "
        f"of {source.game} in {seconds:.1f}s; {summary.already_there} were already there; output: {output_dpath}"
    )
    print(f"{source.game}'s actions: {', '.join(source.env_actions)}; {split_line(source)}")
    print(
        f"train on it: python run.py genie_redux train config=tokenizer_cpu "
        f"train.dataset_root_dpath={output_dpath.parent} train.dataset_name={output_dpath.name}"
    )
    return 0
