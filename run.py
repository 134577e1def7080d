#!/usr/bin/env python3
"""GenieRedux launcher: `python run.py <stack> [mode] key=value ...` (Hydra overrides).

Works from any Python >= 3.11: on first use it runs install.sh (virtual environment, packages,
ROM import) and re-executes itself inside .venv (common/bootstrap.py). Everything past the bootstrap
lives in the stacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(REPO_DPATH))
    from common.bootstrap import ensure_environment

    ensure_environment(__file__, may_skip_install=sys.argv[1:3] == ["roms", "import"])
    from common.launcher import main

    sys.exit(main(sys.argv[1:]))
