"""Your own recordings as episodes: a folder with, per episode, one video or one folder of frame images,
and its actions beside it. What `python run.py import` (data_generation/importer.py) reads:

    my_recordings/
      run1.mp4       one episode as a video: .mp4 .webm .gif .mkv .mov .avi (any FFmpeg reads)
      run1.csv       its actions: a column `action`, one row per transition (frames - 1 rows)
      run2/          one episode as frame images (.png .jpg .jpeg .bmp .webp), in name order
      run2.jsonl     its actions as JSON lines: {"action": "RIGHT"} or a bare "RIGHT" or 2 per line

An action is a vocabulary name (data/actions.py, any case), a name of yours mapped by `action_map`, or an
integer indexing `action_names`. Episodes are numbered in name order (run2 before run10).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.videos import VIDEO_SUFFIXES, VideoReadError, read_video
from data.actions import ACTION_VOCABULARY

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ACTION_SUFFIXES = (".csv", ".jsonl")
ACTION_COLUMN = "action"


@dataclass(frozen=True)
class RecordedEpisode:
    name: str  # the video's or the image folder's name in the source folder (stored as the episode's source)
    frames_path: Path  # a video file, or a folder of frame images
    actions_fpath: Path  # <name>.csv or <name>.jsonl beside it


def natural_key(name: str) -> list:
    """'run10' after 'run2': digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_images(dpath: Path) -> list[Path]:
    return sorted(
        (p for p in dpath.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: natural_key(p.name)
    )


def find_recordings(source_dpath: Path) -> list[RecordedEpisode]:
    """Every episode in `source_dpath`, in name order, each with its actions file; UserError if none."""
    if not source_dpath.is_dir():
        raise UserError(
            f"source_dpath={source_dpath} is not a folder; point it at the folder of your recordings"
        )
    episodes = []
    for path in sorted(source_dpath.iterdir(), key=lambda p: natural_key(p.name)):
        is_video = path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
        if not (is_video or (path.is_dir() and frame_images(path))):
            continue
        stem = path.stem if is_video else path.name
        beside = [path.with_name(stem + suffix) for suffix in ACTION_SUFFIXES]
        actions_fpath = next((p for p in beside if p.is_file()), None)
        if actions_fpath is None:
            raise UserError(
                f"{path} has no actions beside it: write them to {beside[0].name} (a column '{ACTION_COLUMN}') "
                f"or {beside[1].name}, one action per transition between frames"
            )
        episodes.append(RecordedEpisode(path.name, path, actions_fpath))
    if not episodes:
        raise UserError(
            f"no recordings in {source_dpath}: put one video ({' '.join(VIDEO_SUFFIXES)}) or one folder of frame "
            f"images per episode there, each with its actions in <name>.csv or <name>.jsonl beside it"
        )
    return episodes


def read_action_labels(fpath: Path) -> list[tuple[int, str | int]]:
    """(line number, action as written) for every action in a .csv (column `action`) or .jsonl file."""
    try:
        text = fpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read actions file {fpath}: {error}") from None
    if fpath.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or ACTION_COLUMN not in reader.fieldnames:
            raise UserError(
                f"{fpath} needs a header row with a column '{ACTION_COLUMN}' (its columns: {reader.fieldnames})"
            )
        return [(line, row[ACTION_COLUMN]) for line, row in enumerate(reader, start=2)]
    labels = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise UserError(f"{fpath} line {line} is not JSON ({error.msg})") from None
        if isinstance(value, dict):
            if ACTION_COLUMN not in value:
                raise UserError(f"{fpath} line {line} has no '{ACTION_COLUMN}' key: {raw.strip()[:60]}")
            value = value[ACTION_COLUMN]
        labels.append((line, value))
    return labels


def vocabulary_names(
    labels: list[tuple[int, str | int]],
    fpath: Path,
    action_names: list[str] | None,
    action_map: dict[str, str],
) -> list[str]:
    """Each action as a vocabulary name: an integer indexes `action_names`; a name is mapped by `action_map`
    (case-insensitive), then must be in the vocabulary. UserError naming the file and line if not."""
    mapping = {str(key).upper(): str(value).upper() for key, value in action_map.items()}
    names = []
    for line, label in labels:
        where = f"{fpath.name} line {line}"
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise UserError(f"{where}: action {label!r} is neither a name nor an integer")
        text = str(label).strip()
        if text.lstrip("-").isdigit():
            index = int(text)
            if action_names is None:
                raise UserError(
                    f"{where}: action {index} is a number; say which action each number is with "
                    "action_names=[NOOP,LEFT,...] (in vocabulary names, number 0 first)"
                )
            if not 0 <= index < len(action_names):
                raise UserError(
                    f"{where}: action {index} is outside action_names (0..{len(action_names) - 1})"
                )
            names.append(action_names[index])
            continue
        name = mapping.get(text.upper(), text.upper())
        if name not in ACTION_VOCABULARY:
            raise UserError(
                f"{where}: unknown action '{text}'; use a vocabulary name ({', '.join(ACTION_VOCABULARY)}) "
                f"or map yours with +action_map.{text}=NAME"
            )
        names.append(name)
    return names


def read_frames(episode: RecordedEpisode) -> np.ndarray:
    """uint8 [T, H, W, 3] of a video or an image folder; UserError naming the file that cannot be read."""
    if episode.frames_path.is_file():
        try:
            return read_video(episode.frames_path)
        except VideoReadError as error:
            raise UserError(str(error)) from None
    from PIL import Image, UnidentifiedImageError

    frames = []
    for fpath in frame_images(episode.frames_path):
        try:
            with Image.open(fpath) as image:
                frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8))  # [H, W, 3]
        except (OSError, UnidentifiedImageError) as error:
            raise UserError(f"{fpath} is not a readable image ({error})") from None
        if frames[-1].shape != frames[0].shape:
            raise UserError(
                f"{fpath} is {frames[-1].shape[1]}x{frames[-1].shape[0]} px, the frames before it "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}: every frame of an episode needs one size"
            )
    return np.stack(frames)  # [T, H, W, 3]
