"""Draw the house: the project's folders, their size and their imports, as a Mermaid diagram in
docs/ARCHITECTURE.md (GitHub renders it). The graph is read statically (common/import_graph.py).

    python docs/architecture_diagram.py                       # today's tree -> the `house_now` block
    python docs/architecture_diagram.py --ref 3a84214 --name house_before   # a commit, from git

An arrow A --> B means "some module of A imports B" (with the number of module edges); folders stand
on the floors of common/import_graph.py FLOORS (a folder it does not know is drawn on floor "?").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]
if str(REPO_DPATH) not in sys.path:
    sys.path.insert(0, str(REPO_DPATH))

from common.import_graph import FLOORS, folder_edges, import_graph  # noqa: E402
from common.results import replace_between_markers  # noqa: E402

DOC_FPATH = REPO_DPATH / "docs" / "ARCHITECTURE.md"


def folder_lines(repo_dpath: Path, folders: set[str]) -> dict[str, int]:
    """Lines of Python per folder (run: run.py), tests left out."""
    counts = {}
    for folder in folders:
        files = [repo_dpath / "run.py"] if folder == "run" else (repo_dpath / folder).rglob("*.py")
        counts[folder] = sum(len(f.read_text().splitlines()) for f in files if f.is_file())
    return counts


def mermaid(repo_dpath: Path) -> str:
    edges = folder_edges(import_graph(repo_dpath))
    folders = {folder for pair in edges for folder in pair}
    lines = folder_lines(repo_dpath, folders)
    floor = {folder: FLOORS.get(folder, "?") for folder in folders}
    out = ["```mermaid", "flowchart BT"]
    for level in sorted({f for f in floor.values() if f != "?"}) + (["?"] if "?" in floor.values() else []):
        members = sorted(f for f in folders if floor[f] == level)
        out.append(f'  subgraph floor{level}["floor {level}"]')
        out += [f'    {f}["{f}/ ({lines[f]} lines)"]' for f in members]
        out.append("  end")
    for (a, b), examples in sorted(edges.items()):
        is_up = floor[a] == "?" or floor[b] == "?" or floor[b] >= floor[a]
        out.append(f"  {a} {'-. up .->' if is_up else '-->'}|{len(examples)}| {b}")
    out.append("```")
    upward = [
        f"{a} -> {b}"
        for (a, b) in sorted(edges)
        if floor[a] == "?" or floor[b] == "?" or floor[b] >= floor[a]
    ]
    summary = (
        f"{len(folders)} folders, {sum(lines.values())} lines, {len(edges)} folder-to-folder arrows; "
        f"against today's floors {len(upward)} run sideways or up"
        + (f" ({', '.join(upward)})" if upward else "")
    )
    return "\n".join(out) + f"\n\n{summary}.\n"


def checkout(ref: str, dpath: Path) -> Path:
    """The tree of commit `ref` in `dpath` (git archive: no worktree, nothing of it installed)."""
    archive = subprocess.run(["git", "-C", str(REPO_DPATH), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dpath)], input=archive.stdout, check=True)
    return dpath


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="draw this commit instead of the working tree")
    parser.add_argument("--name", default="house_now", help="the block of docs/ARCHITECTURE.md to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo_dpath = checkout(args.ref, Path(tmp)) if args.ref else REPO_DPATH
        source = f"commit {args.ref}" if args.ref else "the working tree"
        body = (
            f"Drawn by `python docs/architecture_diagram.py {' '.join(argv)}`".rstrip()
            + f" from {source}:\n\n"
        )
        body += mermaid(repo_dpath)
    replace_between_markers(DOC_FPATH, args.name, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
