"""Synthetic episodes (coloured squares moving over a background) for tests and benchmarks.

They are cheap to make, deterministic from a seed, and compress roughly like simple game frames
(flat colours, small moving objects), so store tests and window-read benchmarks need no emulator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.actions import FIRST_VOCABULARY_SIZE


def moving_squares(num_frames: int, image_size: int, seed: int, num_squares: int = 3) -> np.ndarray:
    """uint8 [num_frames, image_size, image_size, 3]: squares bouncing at constant speed."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=3, dtype=np.uint8)
    frames = np.empty((num_frames, image_size, image_size, 3), dtype=np.uint8)  # [T, H, W, 3]
    frames[:] = background
    side = max(2, image_size // 8)
    span = image_size - side
    positions = rng.uniform(0, span, size=(num_squares, 2))
    velocities = rng.uniform(-3, 3, size=(num_squares, 2)) * image_size / 64
    colours = rng.integers(0, 256, size=(num_squares, 3), dtype=np.uint8)
    for t in range(num_frames):
        # Reflect at the borders: position on a triangle wave of period 2*span.
        raw = positions + velocities * t
        bounced = span - np.abs(np.mod(raw, 2 * span) - span)
        for (row, col), colour in zip(bounced.astype(int), colours):
            frames[t, row : row + side, col : col + side] = colour
    return frames


def random_actions(num_frames: int, seed: int) -> np.ndarray:
    """int64 [num_frames - 1] vocabulary ids among the first FIRST_VOCABULARY_SIZE (what models are built for)."""
    return np.random.default_rng(seed).integers(0, FIRST_VOCABULARY_SIZE, size=max(0, num_frames - 1))


def write_synthetic_store(
    root_dpath: str | Path,
    env_names: list[str],
    num_sessions: int,
    num_frames: int | list[int],
    image_size: int,
    shard_name: str = "synthetic",
    chunk_frames: int | None = None,
) -> None:
    """Fill a store with `num_sessions` episodes per env; `num_frames` may vary per session."""
    from data.episode_store import EpisodeWriter, episode_id_for

    lengths = num_frames if isinstance(num_frames, list) else [num_frames] * num_sessions
    options = {} if chunk_frames is None else {"chunk_frames": chunk_frames}
    with EpisodeWriter(root_dpath, shard_name, **options) as writer:
        for env_index, env_name in enumerate(env_names):
            for session in range(num_sessions):
                seed = env_index * 100_003 + session
                frames = moving_squares(lengths[session], image_size, seed)
                writer.write(
                    episode_id_for(env_name, session),
                    frames,
                    random_actions(lengths[session], seed),
                    env_name=env_name,
                    session_index=session,
                    info={"seed": seed, "synthetic": True},
                )
