"""What every experiment's results file carries (when, where, which commit, how long) and how it is written."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from experiments.before_after import git_commit

REPO_DPATH = Path(__file__).resolve().parents[1]
RESULTS_DPATH = REPO_DPATH / "experiments" / "results"


def run_stamp(argv: list[str], start: float) -> dict[str, Any]:
    """The provenance head of a report; `start` is the run's time.perf_counter() at its beginning."""
    return {
        "argv": " ".join(argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(REPO_DPATH),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "minutes": (time.perf_counter() - start) / 60,
    }


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: the number, or a dash where nothing was measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def write_results(
    name: str,
    report: dict[str, Any],
    text: str,
    doc_fpath: Path | None = None,
    results_dpath: Path = RESULTS_DPATH,
) -> Path:
    """<results_dpath>/<name>.json and .md (default experiments/results/); with `doc_fpath`, the markdown
    without its title also goes between that doc's `results:<name>` markers."""
    from benchmarks.recording import replace_between_markers
    from common.atomic import atomic_write_json, atomic_write_text

    results_dpath.mkdir(parents=True, exist_ok=True)
    atomic_write_json(results_dpath / f"{name}.json", report)
    atomic_write_text(results_dpath / f"{name}.md", text)
    if doc_fpath is not None:
        replace_between_markers(doc_fpath, name, text.split("\n", 2)[2])
    print(text)
    return results_dpath / f"{name}.md"
