#!/usr/bin/env python3
"""GenieRedux launcher: `python run.py <stack> [mode] key=value ...` (Hydra overrides).

Works from any Python >= 3.11: on first use it runs install.sh (virtual environment, packages,
ROM import) and re-executes itself inside .venv. Everything past the bootstrap lives in the stacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parent
VENV_PYTHON = REPO_DPATH / ".venv" / "bin" / "python"


def _install_stamp_name() -> str:
    """Must match install.sh: sha1 of pyproject.toml followed by install.sh, first 12 hex digits."""
    import hashlib

    payload = (REPO_DPATH / "pyproject.toml").read_bytes() + (REPO_DPATH / "install.sh").read_bytes()
    return ".installed-" + hashlib.sha1(payload).hexdigest()[:12]


def _ensure_environment() -> None:
    """Re-exec inside .venv, creating or updating it first when needed."""
    if os.environ.get("GENIE_REDUX_NO_BOOTSTRAP") == "1":
        return
    in_venv = Path(sys.prefix).resolve() == (REPO_DPATH / ".venv").resolve()
    is_roms_import = sys.argv[1:3] == ["roms", "import"] and in_venv
    stamp_fpath = REPO_DPATH / ".venv" / _install_stamp_name()
    if not stamp_fpath.exists() and not is_roms_import:
        result = subprocess.run(["bash", str(REPO_DPATH / "install.sh")], check=False)
        if result.returncode != 0:
            sys.exit(f"error: install.sh failed (exit {result.returncode}); fix the message above and rerun")
    if not in_venv:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _ensure_environment()
    sys.path.insert(0, str(REPO_DPATH))
    from common.launcher import main

    sys.exit(main(sys.argv[1:]))
