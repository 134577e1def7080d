"""`python run.py bench <name> [key=value ...]`: run one benchmark script from benchmarks/."""

from __future__ import annotations

import importlib
from pathlib import Path

from common.errors import UserError

BENCH_DPATH = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DPATH.glob("bench_*.py"))


def main(mode: str | None, args: list[str]) -> int:
    names = available()
    if not args or args[0] not in names:
        raise UserError(
            f"name a benchmark: one of {', '.join(names) or '(none yet)'} (python run.py bench NAME)"
        )
    module = importlib.import_module(f"benchmarks.bench_{args[0]}")
    options = dict(item.split("=", 1) for item in args[1:] if "=" in item)
    return int(module.main(**options) or 0)
