"""Atomic file writes: a reader sees either the old file or the complete new one, never a torn one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(final_fpath: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same directory; rename it onto `final_fpath` on success."""
    final_fpath = Path(final_fpath)
    final_fpath.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final_fpath.name}.", suffix=".tmp", dir=final_fpath.parent)
    os.close(fd)
    tmp_fpath = Path(tmp_name)
    try:
        yield tmp_fpath
        with open(tmp_fpath, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_fpath, final_fpath)
    finally:
        tmp_fpath.unlink(missing_ok=True)


def atomic_write_bytes(final_fpath: str | Path, payload: bytes) -> None:
    with atomic_path(final_fpath) as tmp_fpath:
        tmp_fpath.write_bytes(payload)


def atomic_write_text(final_fpath: str | Path, text: str) -> None:
    atomic_write_bytes(final_fpath, text.encode("utf-8"))


def atomic_write_json(final_fpath: str | Path, obj: Any) -> None:
    atomic_write_text(final_fpath, json.dumps(obj, indent=2, sort_keys=True) + "\n")
