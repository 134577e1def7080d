"""Frame preprocessing shared by every game: pad to a square, then area-resize (uint8 in, uint8 out).

Padding first keeps the game's aspect ratio (a 224x320 Genesis screen is not stretched); the BOX
filter averages every source pixel that falls in a target pixel, which is what "area resize" means
and what keeps thin sprites (bullets, 1-px ledges) from aliasing away at 64 px.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from common.errors import UserError

MIN_IMAGE_SIZE = 8


def check_image_size(image_size: object) -> int:
    """Validate a user-given image size; returns it as an int."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise UserError(
            f"image_size must be an integer >= {MIN_IMAGE_SIZE} (got {image_size!r}); e.g. image_size=64"
        )
    return image_size


def pad_to_square(frame: np.ndarray) -> np.ndarray:
    """Center `frame` [H, W, 3] on a black square canvas [S, S, 3] with S = max(H, W)."""
    height, width, channels = frame.shape
    side = max(height, width)
    if height == width:
        return frame
    canvas = np.zeros((side, side, channels), dtype=frame.dtype)  # [S, S, 3]
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = frame
    return canvas


def square_and_resize(frame: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [image_size, image_size, 3]: pad to square, then BOX (area) resize."""
    square = pad_to_square(frame)
    if square.shape[0] == image_size:
        return np.ascontiguousarray(square)
    resized = Image.fromarray(square).resize((image_size, image_size), resample=Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.uint8)  # [image_size, image_size, 3]
