"""`python run.py bench <name> [key=value ...]`: run one benchmark script from benchmarks/."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

from common.config import HELP_FLAGS
from common.errors import UserError

BENCH_DPATH = Path(__file__).resolve().parent
# benchmark names that changed: the old name still runs the benchmark, with a notice
RENAMED = {"generation": "recording"}  # recording speed, not the world model's (generation_speed)


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DPATH.glob("bench_*.py"))


def description(name: str) -> str:
    """The benchmark script's docstring, read without importing it (imports take seconds)."""
    source = (BENCH_DPATH / f"bench_{name}.py").read_text()
    return ast.get_docstring(ast.parse(source)) or "(no description)"


def first_sentence(text: str) -> str:
    paragraph = " ".join(text.split("\n\n")[0].split())
    return re.split(r"(?<=[.?!])\s", paragraph)[0]


def overview() -> str:
    """What `python run.py bench --help` prints: each benchmark with the first line of its docstring."""
    lines = [
        "usage: python run.py bench NAME [key=value ...]  (python run.py bench NAME --help: its keys)",
        "",
    ]
    lines += [f"  {name:<18} {first_sentence(description(name))}" for name in available()]
    return "\n".join(lines)


def main(mode: str | None, args: list[str]) -> int:
    names = available()
    if args and args[0] in RENAMED:
        print(f"warning: bench {args[0]} is now bench {RENAMED[args[0]]}", file=sys.stderr)
        args = [RENAMED[args[0]], *args[1:]]
    if args and args[0] in HELP_FLAGS:
        raise SystemExit(print(overview()) or 0)
    if len(args) > 1 and args[0] in names and any(arg in HELP_FLAGS for arg in args[1:]):
        raise SystemExit(print(description(args[0])) or 0)
    if not args or args[0] not in names:
        raise UserError(
            f"name a benchmark: one of {', '.join(names) or '(none yet)'} (python run.py bench --help)"
        )
    module = importlib.import_module(f"benchmarks.bench_{args[0]}")
    options = dict(item.split("=", 1) for item in args[1:] if "=" in item)
    return int(module.main(**options) or 0)
