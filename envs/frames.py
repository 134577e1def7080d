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


class FrameResizer:
    """`square_and_resize` for a stream of same-sized screens, byte for byte, with less work per frame.

    An emulator's screen size never changes, so the black square canvas is allocated once and only
    its centre is overwritten (the border stays zero), and Pillow reads the canvas in place
    (`frombuffer`) instead of through a fresh padded copy. At 256 px the BOX resize itself is most of
    what is left; it is Pillow's, unchanged, so the bytes are exactly those of `square_and_resize`.
    """

    def __init__(self, image_size: int) -> None:
        self.image_size = check_image_size(image_size)
        self._canvas: np.ndarray | None = None  # [S, S, 3], S = max(H, W) of the screens seen
        self._screen_shape: tuple[int, ...] | None = None
        self._top = self._left = 0

    def _prepare(self, screen_shape: tuple[int, ...]) -> None:
        height, width, channels = screen_shape
        side = max(height, width)
        self._canvas = np.zeros((side, side, channels), dtype=np.uint8)  # [S, S, 3]
        self._top, self._left = (side - height) // 2, (side - width) // 2
        self._screen_shape = tuple(screen_shape)

    def __call__(self, screen: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> a new uint8 [image_size, image_size, 3] array."""
        if screen.shape != self._screen_shape:  # first frame, or a core that changed resolution
            self._prepare(screen.shape)
        height, width, _ = screen.shape
        side = self._canvas.shape[0]
        if side == self.image_size:  # nothing to average (CoinRun at 64 px): pad only, if at all
            return square_and_resize(screen, self.image_size)
        self._canvas[self._top : self._top + height, self._left : self._left + width] = screen
        # frombuffer reads the canvas as it is now (Pillow unpacks RGB into its own RGBX storage).
        image = Image.frombuffer("RGB", (side, side), self._canvas, "raw", "RGB", 0, 1)
        resized = image.resize((self.image_size, self.image_size), resample=Image.Resampling.BOX)
        return np.asarray(resized, dtype=np.uint8)  # [image_size, image_size, 3]
