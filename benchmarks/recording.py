"""Record benchmark figures: JSON under benchmarks/results/ and a row block in benchmarks/RESULTS.md.

Every benchmark prints its table and calls `record(...)`, which stamps device, commit and date, so a
number in RESULTS.md always says where and when it was measured.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json, atomic_write_text

BENCH_DPATH = Path(__file__).resolve().parent
RESULTS_MD_FPATH = BENCH_DPATH / "RESULTS.md"
DOCS_DPATH = BENCH_DPATH.parent / "docs"  # a benchmark that owns a doc's results block copies it there


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    import os

    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__})"


def current_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DPATH, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def record(name: str, rows: list[dict[str, Any]], notes: str = "") -> str:
    """Print and persist one benchmark's rows; replaces that benchmark's previous block in RESULTS.md."""
    stamp = {
        "benchmark": name,
        "device": device_description(),
        "commit": current_commit(),
        "date": dt.date.today().isoformat(),
    }
    atomic_write_json(BENCH_DPATH / "results" / f"{name}.json", {**stamp, "rows": rows, "notes": notes})
    block = (
        f"<!-- bench:{name} -->\n## {name}\n\n"
        f"device: {stamp['device']} · commit {stamp['commit']} · {stamp['date']}\n\n"
        f"{markdown_table(rows)}"
        + (f"\n{notes.strip()}\n" if notes.strip() else "")
        + f"<!-- /bench:{name} -->\n"
    )
    text = (
        RESULTS_MD_FPATH.read_text()
        if RESULTS_MD_FPATH.exists()
        else "# Benchmark results\n\nWritten by `python run.py bench <name>`; each block says where and when it was measured.\n\n"
    )
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->\n"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_text(RESULTS_MD_FPATH, text)
    print(markdown_table(rows))
    return block


def replace_between_markers(doc_fpath: Path, name: str, body: str) -> None:
    """Put `body` between a doc's `<!-- results:NAME -->` markers (if it has them; a doc without keeps as is)."""
    if not doc_fpath.is_file():
        return
    text = doc_fpath.read_text()
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    if start in text and end in text:
        atomic_write_text(doc_fpath, text.split(start)[0] + start + "\n" + body + end + text.split(end)[1])


def mirror_into_doc(doc_fpath: Path, name: str, block: str) -> None:
    """Copy a block `record` returned into a doc, between `<!-- results:NAME -->` markers (if it has them)."""
    body = block.split("\n", 1)[1].rsplit("<!--", 1)[0].replace(f"## {name}\n", "")
    replace_between_markers(doc_fpath, name, body)
