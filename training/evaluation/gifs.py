"""Side-by-side clips (prediction | ground truth, or one column per action) for evaluation gifs.

`save_gif` (common/gifs.py) writes them; it is re-exported here for the evaluation code.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from common.gifs import save_gif
from data.transforms import frames_to_uint8

LABEL_HEIGHT = 14  # pixels above each column for its name (PIL's built-in bitmap font is ~11 px)
MIN_DISPLAY_SIZE = 128  # small frames (64 px CoinRun) are upscaled, nearest-neighbour, to stay legible
GAP = 4  # pixels between columns


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """float `[T, 3, H, W]` in [0, 1] → uint8 `[T, H, W, 3]`."""
    return frames_to_uint8(frames.unsqueeze(0))[0].cpu().numpy()


def _label_strip(text: str, width: int) -> np.ndarray:
    strip = Image.new("RGB", (width, LABEL_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, 1), text, fill=(0, 0, 0))
    return np.asarray(strip)  # [LABEL_HEIGHT, width, 3]


def side_by_side(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Lay out same-length uint8 `[T, H, W, 3]` clips left to right, each under its label."""
    clips = list(columns.values())
    num_frames, height, width, _ = clips[0].shape
    if any(clip.shape != clips[0].shape for clip in clips):
        raise ValueError(f"columns differ in shape: {[clip.shape for clip in clips]}")
    scale = max(1, -(-MIN_DISPLAY_SIZE // height))  # ceil division
    panels = []
    for label, clip in columns.items():
        big = clip.repeat(scale, axis=1).repeat(scale, axis=2)  # [T, H*s, W*s, 3]
        strip = np.broadcast_to(
            _label_strip(label, width * scale), (num_frames, LABEL_HEIGHT, width * scale, 3)
        )
        panels.append(np.concatenate([strip, big], axis=1))  # [T, LABEL_HEIGHT + H*s, W*s, 3]
        panels.append(np.full((num_frames, LABEL_HEIGHT + height * scale, GAP, 3), 255, dtype=np.uint8))
    return np.concatenate(panels[:-1], axis=2)  # [T, LABEL_HEIGHT + H*s, k*W*s + gaps, 3]


__all__ = ["save_gif", "side_by_side", "to_uint8_frames"]
