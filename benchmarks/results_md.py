"""Record benchmark figures: JSON under benchmarks/results/ and a row block in benchmarks/RESULTS.md.

Every benchmark prints its table and calls `publish(...)`, which stamps device, commit and date, so a
number in RESULTS.md always says where and when it was measured.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json, atomic_write_text
from common.results import device_description, git_commit, markdown_table, replace_between_markers

BENCH_DPATH = Path(__file__).resolve().parent
RESULTS_MD_FPATH = BENCH_DPATH / "RESULTS.md"
DOCS_DPATH = BENCH_DPATH.parent / "docs"  # a benchmark that owns a doc's results block copies it there


def render_block(record: dict[str, Any]) -> str:
    """A results JSON (what `publish` wrote) -> its RESULTS.md block: the block is always regenerable."""
    name, notes = record["benchmark"], record.get("notes", "")
    return (
        f"<!-- bench:{name} -->\n## {name}\n\n"
        f"device: {record['device']} · commit {record['commit']} · {record['date']}\n\n"
        f"{markdown_table(record['rows'], record.get('columns'))}"
        + (f"\n{notes.strip()}\n" if notes.strip() else "")
        + f"<!-- /bench:{name} -->\n"
    )


def publish(name: str, rows: list[dict[str, Any]], notes: str = "") -> str:
    """Print and persist one benchmark's rows; replaces that benchmark's previous block in RESULTS.md."""
    stamp = {
        "benchmark": name,
        "device": device_description(),
        "commit": git_commit(),
        "date": dt.date.today().isoformat(),
    }
    # the JSON keeps keys sorted: the table's column order is recorded beside the rows
    columns = list(dict.fromkeys(key for row in rows for key in row))  # rows may add columns (a mode's)
    record = {**stamp, "columns": columns, "rows": rows, "notes": notes}
    atomic_write_json(BENCH_DPATH / "results" / f"{name}.json", record)
    block = render_block(record)
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


def mirror_body(name: str, block: str) -> str:
    """What a doc shows of a block: it without its markers and heading."""
    return block.split("\n", 1)[1].rsplit("<!--", 1)[0].replace(f"## {name}\n", "")


def mirror_into_doc(doc_fpath: Path, name: str, block: str) -> None:
    """Copy a block `publish` returned into a doc, between `<!-- results:NAME -->` markers (if it has them)."""
    replace_between_markers(doc_fpath, name, mirror_body(name, block))


__all__ = ["device_description", "markdown_table", "mirror_into_doc", "publish"]
