"""The episode file format, shared by the writer and the reader (one module defines it).

An episode is one file `<episode_id>.gre`:

    prefix   16 bytes   MAGIC (8) | header length (u32 LE) | CRC-32 of the header (u32 LE)
    header   JSON       metadata + where each compressed blob lies in the payload
    payload  bytes      zstd frames, one per chunk of `chunk_frames` frames, then one for the actions

Frames are compressed in chunks of consecutive frames rather than one by one because game frames
repeat a lot over time (DESIGN.md §5: 16-frame chunks compress 3-4× better than single frames),
and in chunks rather than whole episodes so a training window decodes only the chunks it touches.
Each zstd frame carries its own content checksum, so a flipped byte fails loudly on decode; the
header has a CRC and records the payload length, so truncation is caught before any decode.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import zstandard

FORMAT_VERSION = 1
MAGIC = b"GREPISO\x01"
PREFIX = struct.Struct("<8sII")  # magic, header_len, header_crc32
EPISODE_SUFFIX = ".gre"
DEFAULT_CHUNK_FRAMES = 8  # measured in benchmarks/bench_window_reads.py: see docs/data_store.md
DEFAULT_ZSTD_LEVEL = 3
ACTIONS_DTYPE = np.int16  # vocabulary ids are small; the reader returns int64


class CorruptEpisodeError(Exception):
    """An episode file is truncated, has a bad checksum or an unreadable header."""


@dataclass(frozen=True)
class EpisodeHeader:
    """Everything about an episode except its frames and actions; parsed from the file header."""

    episode_id: str
    env_name: str
    session_index: int
    num_frames: int
    image_size: int
    action_names: tuple[str, ...]
    info: dict[str, Any]
    chunk_frames: int
    frame_chunks: tuple[tuple[int, int], ...]  # (payload offset, compressed length) per chunk
    actions_blob: tuple[int, int]
    payload_bytes: int
    header_bytes: int  # length of prefix + header JSON: where the payload starts in the file

    @property
    def file_size(self) -> int:
        return self.header_bytes + self.payload_bytes


def _json_default(value: Any) -> Any:
    """Let generator code put numpy scalars and arrays into `info` without converting by hand."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"info value of type {type(value).__name__} is not JSON-serialisable")


def encode_episode(
    frames: np.ndarray,
    actions: np.ndarray,
    *,
    episode_id: str,
    env_name: str,
    session_index: int,
    action_names: tuple[str, ...],
    info: dict[str, Any],
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    level: int = DEFAULT_ZSTD_LEVEL,
) -> bytes:
    """Serialise one validated episode (frames uint8 [T,H,W,3], actions [T-1]) to the file bytes."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    blobs: list[bytes] = []
    for start in range(0, frames.shape[0], chunk_frames):
        chunk = np.ascontiguousarray(frames[start : start + chunk_frames])  # [<=chunk_frames, H, W, 3]
        blobs.append(compressor.compress(chunk.tobytes()))
    blobs.append(compressor.compress(actions.astype(ACTIONS_DTYPE).tobytes()))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).tolist()
    spans = [[offsets[i], len(blob)] for i, blob in enumerate(blobs)]
    header = {
        "format_version": FORMAT_VERSION,
        "episode_id": episode_id,
        "env_name": env_name,
        "session_index": int(session_index),
        "num_frames": int(frames.shape[0]),
        "image_size": int(frames.shape[1]),
        "action_names": list(action_names),
        "info": info,
        "chunk_frames": int(chunk_frames),
        "frame_chunks": spans[:-1],
        "actions_blob": spans[-1],
        "payload_bytes": offsets[-1],
        "compression": f"zstd-{level}",
    }
    header_json = json.dumps(header, default=_json_default, sort_keys=True).encode("utf-8")
    prefix = PREFIX.pack(MAGIC, len(header_json), zlib.crc32(header_json))
    return b"".join([prefix, header_json, *blobs])


def parse_prefix(prefix: bytes) -> tuple[int, int]:
    """(header_len, header_crc) from the first PREFIX.size bytes; raises CorruptEpisodeError."""
    if len(prefix) < PREFIX.size:
        raise CorruptEpisodeError("file shorter than its 16-byte prefix")
    magic, header_len, header_crc = PREFIX.unpack(prefix[: PREFIX.size])
    if magic != MAGIC:
        raise CorruptEpisodeError(f"not an episode file (magic {magic!r})")
    return header_len, header_crc


def parse_header(header_json: bytes, header_crc: int, file_size: int) -> EpisodeHeader:
    """Check the header's CRC and the file length against it; raises CorruptEpisodeError."""
    if zlib.crc32(header_json) != header_crc:
        raise CorruptEpisodeError("header checksum mismatch")
    try:
        raw = json.loads(header_json)
        if raw["format_version"] != FORMAT_VERSION:
            raise CorruptEpisodeError(
                f"format version {raw['format_version']} (this code reads {FORMAT_VERSION})"
            )
        header = EpisodeHeader(
            episode_id=raw["episode_id"],
            env_name=raw["env_name"],
            session_index=int(raw["session_index"]),
            num_frames=int(raw["num_frames"]),
            image_size=int(raw["image_size"]),
            action_names=tuple(raw["action_names"]),
            info=raw["info"],
            chunk_frames=int(raw["chunk_frames"]),
            frame_chunks=tuple((int(o), int(n)) for o, n in raw["frame_chunks"]),
            actions_blob=(int(raw["actions_blob"][0]), int(raw["actions_blob"][1])),
            payload_bytes=int(raw["payload_bytes"]),
            header_bytes=PREFIX.size + len(header_json),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptEpisodeError(f"malformed header ({error})") from error
    if header.file_size != file_size:
        raise CorruptEpisodeError(
            f"file is {file_size} bytes but its header says {header.file_size} (truncated?)"
        )
    return header


def read_header_from_fd(fd: int, file_size: int) -> EpisodeHeader:
    """Read and validate the header of an open episode file (two small preads)."""
    header_len, header_crc = parse_prefix(_pread_exact(fd, PREFIX.size, 0))
    if PREFIX.size + header_len > file_size:
        raise CorruptEpisodeError("header extends past the end of the file (truncated?)")
    return parse_header(_pread_exact(fd, header_len, PREFIX.size), header_crc, file_size)


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise CorruptEpisodeError(f"short read at byte {offset}: wanted {length}, got {len(data)}")
    return data


def decode_frames(
    fd: int, header: EpisodeHeader, start: int, stop: int, decompressor: zstandard.ZstdDecompressor
) -> np.ndarray:
    """Frames [start, stop) as uint8 [stop-start, H, W, 3], decoding only the chunks they touch."""
    size, cf = header.image_size, header.chunk_frames
    first_chunk, last_chunk = start // cf, (stop - 1) // cf
    span_start = header.frame_chunks[first_chunk][0]
    span_stop = header.frame_chunks[last_chunk][0] + header.frame_chunks[last_chunk][1]
    # One pread for the touched chunks: they are contiguous in the payload.
    span = _pread_exact(fd, span_stop - span_start, header.header_bytes + span_start)
    out = np.empty((stop - start, size, size, 3), dtype=np.uint8)  # [T, H, W, 3]
    for chunk in range(first_chunk, last_chunk + 1):
        offset, length = header.frame_chunks[chunk]
        blob = span[offset - span_start : offset - span_start + length]
        frames = np.frombuffer(_decompress(decompressor, blob), dtype=np.uint8).reshape(-1, size, size, 3)
        chunk_start = chunk * cf
        lo, hi = max(start, chunk_start), min(stop, chunk_start + frames.shape[0])
        out[lo - start : hi - start] = frames[lo - chunk_start : hi - chunk_start]
    return out


def decode_actions(fd: int, header: EpisodeHeader, decompressor: zstandard.ZstdDecompressor) -> np.ndarray:
    """All T-1 actions of the episode as int64 (one small blob)."""
    offset, length = header.actions_blob
    blob = _pread_exact(fd, length, header.header_bytes + offset)
    return np.frombuffer(_decompress(decompressor, blob), dtype=ACTIONS_DTYPE).astype(np.int64)


def _decompress(decompressor: zstandard.ZstdDecompressor, blob: bytes) -> bytes:
    try:
        return decompressor.decompress(blob)
    except zstandard.ZstdError as error:
        raise CorruptEpisodeError(f"compressed chunk is damaged ({error})") from error
