"""Where a recorded figure came from, and how a record is written: provenance, tables, results files.

Experiment scripts (experiments/) write experiments/results/<name>.json and .md through `write_results`;
benchmarks (benchmarks/results_md.py) write benchmarks/RESULTS.md blocks. Both stamp the same provenance
and may copy their table into a doc between `<!-- results:NAME -->` markers: only the script that owns
a record writes it (library code never writes docs/).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json, atomic_write_text

REPO_DPATH = Path(__file__).resolve().parents[1]
RESULTS_DPATH = REPO_DPATH / "experiments" / "results"


def git_commit(repo_dpath: Path = REPO_DPATH) -> str:
    """Short commit of a checkout, `+dirty` when tracked files differ from it; "unknown" without git."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(repo_dpath), *args], capture_output=True, text=True
            ).stdout
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")


def device_description(cuda: Any = None) -> str:
    """The GPU (or CPU) figures were measured on; `cuda`: torch.cuda, or a stand-in with its functions."""
    import torch

    cuda = cuda or torch.cuda
    if cuda.is_available():
        return f"{cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__})"


def run_stamp(argv: list[str], start: float, repo_dpath: Path = REPO_DPATH) -> dict[str, Any]:
    """The provenance head of a report; `start` is the run's time.perf_counter() at its beginning."""
    return {
        "argv": " ".join(argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(repo_dpath),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "minutes": (time.perf_counter() - start) / 60,
    }


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: the number, or a dash where nothing was measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def mean(values: list[float | None]) -> float | None:
    """The mean of what was measured (None entries skipped); None when nothing was."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as a markdown table; `columns` (default: every row's keys, in first-seen order) picks and orders
    them; a row without a column leaves its cell empty."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{row[c]:.4g}" if isinstance(row.get(c), float) else "" if row.get(c) is None else str(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_between_markers(doc_fpath: Path, name: str, body: str) -> None:
    """Put `body` between a doc's `<!-- results:NAME -->` markers (if it has them; a doc without keeps as is)."""
    if not doc_fpath.is_file():
        return
    text = doc_fpath.read_text()
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    if start in text and end in text:
        atomic_write_text(doc_fpath, text.split(start)[0] + start + "\n" + body + end + text.split(end)[1])


def write_results(
    name: str,
    report: dict[str, Any],
    text: str,
    doc_fpath: Path | None = None,
    results_dpath: Path = RESULTS_DPATH,
) -> Path:
    """<results_dpath>/<name>.json and .md (default experiments/results/); with `doc_fpath`, the markdown
    without its title also goes between that doc's `results:<name>` markers."""
    results_dpath.mkdir(parents=True, exist_ok=True)
    atomic_write_json(results_dpath / f"{name}.json", report)
    atomic_write_text(results_dpath / f"{name}.md", text)
    if doc_fpath is not None:
        replace_between_markers(doc_fpath, name, text.split("\n", 2)[2])
    print(text)
    return results_dpath / f"{name}.md"
