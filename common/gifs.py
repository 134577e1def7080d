"""Animated gifs of uint8 frames: the one encoder for evaluation clips, agent episodes and the player."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from common.atomic import atomic_write_bytes


def encode_gif(frames: np.ndarray | list[np.ndarray], fps: float, min_size: int = 0) -> bytes:
    """uint8 frames [T, H, W, 3] -> a looping gif, scaled up by a whole factor (nearest) to >= min_size."""
    if len(frames) == 0:
        raise ValueError("no frames to put in a gif")
    scale = max(1, -(-min_size // frames[0].shape[0]))  # ceil(min_size / H)
    kernel = np.ones((scale, scale, 1), dtype=np.uint8)
    images = [Image.fromarray(np.kron(np.asarray(f), kernel) if scale > 1 else np.asarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
    )
    return buffer.getvalue()


def save_gif(fpath: str | Path, frames: np.ndarray, fps: float = 4.0, min_size: int = 0) -> Path:
    """Write uint8 [T, H, W, 3] frames as a looping gif, atomically."""
    fpath = Path(fpath)
    atomic_write_bytes(fpath, encode_gif(frames, fps, min_size))
    return fpath
