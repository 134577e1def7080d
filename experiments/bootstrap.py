"""Experiments run inside the project's .venv (set up by install.sh when missing), as `run.py` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]


def ensure_project_environment(script_fpath: str) -> None:
    """Re-exec `script_fpath` with the .venv's python unless already there (or GENIE_REDUX_NO_BOOTSTRAP=1)."""
    venv_dpath = REPO_DPATH / ".venv"
    if (
        Path(sys.prefix).resolve() == venv_dpath.resolve()
        or os.environ.get("GENIE_REDUX_NO_BOOTSTRAP") == "1"
    ):
        return
    if subprocess.call(["bash", str(REPO_DPATH / "install.sh")]) != 0:
        sys.exit("error: install.sh failed; fix the message above and rerun")
    python = str(venv_dpath / "bin" / "python")
    os.execv(python, [python, str(Path(script_fpath).resolve()), *sys.argv[1:]])
