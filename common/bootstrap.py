"""Run inside the project's .venv, creating or updating it first: `run.py` and every experiment script.

Standard library only: this runs under whatever Python the user typed, before .venv exists.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]
VENV_DPATH = REPO_DPATH / ".venv"


def install_stamp_fpath() -> Path:
    """Must match install.sh: .venv/.installed-<sha1 of pyproject.toml then install.sh, 12 hex digits>."""
    payload = (REPO_DPATH / "pyproject.toml").read_bytes() + (REPO_DPATH / "install.sh").read_bytes()
    return VENV_DPATH / (".installed-" + hashlib.sha1(payload).hexdigest()[:12])


def ensure_environment(script_fpath: str | Path, may_skip_install: bool = False) -> None:
    """Re-exec `script_fpath` (with this process's arguments) inside .venv, running install.sh first when
    the environment is missing or older than pyproject.toml / install.sh. GENIE_REDUX_NO_BOOTSTRAP=1 (set
    by the runner for the commands it starts) skips it all; `may_skip_install` is for the ROM import that
    install.sh itself runs."""
    if os.environ.get("GENIE_REDUX_NO_BOOTSTRAP") == "1":
        return
    in_venv = Path(sys.prefix).resolve() == VENV_DPATH.resolve()
    if not install_stamp_fpath().exists() and not (may_skip_install and in_venv):
        result = subprocess.run(["bash", str(REPO_DPATH / "install.sh")], check=False)
        if result.returncode != 0:
            sys.exit(f"error: install.sh failed (exit {result.returncode}); fix the message above and rerun")
    if not in_venv:
        python = str(VENV_DPATH / "bin" / "python")
        os.execv(python, [python, str(Path(script_fpath).resolve()), *sys.argv[1:]])
