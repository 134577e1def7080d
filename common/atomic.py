"""Atomic file and directory writes: a reader sees either the old one or the complete new one, never a torn one."""

from __future__ import annotations

import json
import os
import shutil
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


def old_dpath_of(final_dpath: Path) -> Path:
    """Where `replace_dpath` puts the directory it replaces for an instant."""
    return final_dpath.with_name(f".{final_dpath.name}.old")


def restore_interrupted(final_dpath: str | Path) -> Path:
    """Undo a swap a kill interrupted: `final_dpath` missing and its `.old` there -> put it back."""
    final_dpath = Path(final_dpath)
    old_dpath = old_dpath_of(final_dpath)
    if not final_dpath.exists() and old_dpath.is_dir():
        os.replace(old_dpath, final_dpath)
    return final_dpath


def replace_dpath(
    new_dpath: str | Path, final_dpath: str | Path, previous_dpath: str | Path | None = None
) -> None:
    """Move the complete directory `new_dpath` onto `final_dpath` (same filesystem).

    An existing `final_dpath` is first renamed aside, so a reader finds the old complete directory, the new
    complete one, or (for an instant) none, never a mix; a kill in between leaves a hidden `.<name>.old`
    that `restore_interrupted` puts back. With `previous_dpath` the replaced directory is kept there (a
    checkpoint to fall back to when the new one turns out damaged) instead of being deleted.
    """
    new_dpath, final_dpath = Path(new_dpath), Path(final_dpath)
    old_dpath = old_dpath_of(final_dpath)
    restore_interrupted(final_dpath)
    if final_dpath.exists():
        shutil.rmtree(old_dpath, ignore_errors=True)
        os.replace(final_dpath, old_dpath)
    os.replace(new_dpath, final_dpath)
    if previous_dpath is not None and old_dpath.is_dir():
        shutil.rmtree(previous_dpath, ignore_errors=True)
        os.replace(old_dpath, previous_dpath)
    shutil.rmtree(old_dpath, ignore_errors=True)


@contextmanager
def atomic_dpath(final_dpath: str | Path, previous_dpath: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside `final_dpath`; on success fsync its files and swap it into place
    (`previous_dpath`: where the directory it replaces is kept, see `replace_dpath`)."""
    final_dpath = Path(final_dpath)
    final_dpath.parent.mkdir(parents=True, exist_ok=True)
    tmp_dpath = Path(tempfile.mkdtemp(prefix=f".{final_dpath.name}.", suffix=".tmp", dir=final_dpath.parent))
    try:
        yield tmp_dpath
        for fpath in tmp_dpath.rglob("*"):
            if fpath.is_file():
                with open(fpath, "rb") as handle:
                    os.fsync(handle.fileno())
        replace_dpath(tmp_dpath, final_dpath, previous_dpath)
    finally:
        shutil.rmtree(tmp_dpath, ignore_errors=True)
