"""Videos of uint8 frames through PyAV (FFmpeg's libraries, shipped in its wheel): read any video FFmpeg
reads (mp4, webm, gif, mkv, ...), write mp4 for viewing (H.264, yuv420p: what every player opens) or
losslessly (H.264 RGB at crf 0: the exact frames, for importing them again)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.atomic import atomic_path

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mkv", ".mov", ".avi")


class VideoReadError(ValueError):
    """A file FFmpeg cannot read as a video (damaged, not a video, no video stream)."""


def read_video(fpath: str | Path) -> np.ndarray:
    """Every frame of the file's first video stream, uint8 [T, H, W, 3] (RGB)."""
    import av

    try:
        with av.open(str(fpath)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{fpath} holds no video stream")
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise VideoReadError(f"{fpath} is not a readable video ({error})") from None
    if not frames:
        raise VideoReadError(f"{fpath} holds no frames")
    return np.stack(frames)  # [T, H, W, 3]


def write_mp4(
    fpath: str | Path, frames: np.ndarray, fps: float, scale: int = 1, lossless: bool = False
) -> Path:
    """uint8 [T, H, W, 3] -> an mp4 (atomically), each pixel scaled to scale x scale (nearest).

    yuv420p halves the colour resolution, so it needs even sides: an odd frame gets one black row/column.
    """
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # [T, H*s, W*s, 3]
    if not lossless and (frames.shape[1] % 2 or frames.shape[2] % 2):
        frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)))
    fpath = Path(fpath)
    with atomic_path(fpath) as tmp_fpath, av.open(str(tmp_fpath), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264rgb" if lossless else "libx264", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        stream.options = {"crf": "0"} if lossless else {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder
    return fpath
