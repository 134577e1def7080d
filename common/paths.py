"""Output folders: made (with parents) and checked writable up front, so a bad path is one line, not a
traceback halfway through a run; and the one name every run folder gives its resolved config."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError

RUN_CONFIG_FNAME = "config.yaml"  # a run folder's resolved config (world-model and agent runs alike)


def run_config_fpath(run_dpath: str | Path) -> Path:
    return Path(run_dpath) / RUN_CONFIG_FNAME


def ensure_writable_dpath(dpath: str | Path, key: str) -> Path:
    """Create `dpath` if needed and check it is a writable folder; UserError naming config `key` if not."""
    dpath = Path(dpath)
    try:
        dpath.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"cannot create {key}={dpath}: {reason}; choose a writable folder ({key}=...)"
        ) from None
    if not os.access(dpath, os.W_OK | os.X_OK):
        raise UserError(f"{key}={dpath} is not writable; choose a writable folder ({key}=...)")
    return dpath
