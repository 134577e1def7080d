"""Images into the player: a bounded, safe decode of uploads (the session gif: common/gifs.py)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

MAX_UPLOAD_BYTES = 2_000_000  # an uploaded start image may be at most this many bytes
MAX_UPLOAD_PIXELS = 4096 * 4096  # and at most this many pixels once decoded (decompression-bomb guard)
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


class UploadError(ValueError):
    """An upload the player refuses; the message is shown to the user as is."""


def decode_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """Image file bytes -> uint8 [H, W, 3] (first frame of an animation; alpha dropped)."""
    if len(data) > max_bytes:
        raise UploadError(
            f"the image is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB: upload a smaller file"
        )
    if not data:
        raise UploadError("the upload is empty: choose an image file (PNG, JPEG, GIF, WEBP, BMP)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)  # reads the header only
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise UploadError(
                    f"the image is {width}x{height} pixels; the limit is {MAX_UPLOAD_PIXELS:,} pixels: "
                    "upload a smaller image"
                )
            rgb = image.convert("RGB")  # decodes now, bounded by the check above
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UploadError(
            f"the image is too large to decode safely ({error}); upload a smaller image"
        ) from None
    except Exception:  # noqa: BLE001 (Pillow raises many types for broken files)
        raise UploadError(
            "the file is not an image the player can read: upload a PNG, JPEG, GIF, WEBP or BMP file"
        ) from None
    return np.asarray(rgb, dtype=np.uint8)  # [H, W, 3]
