"""The project's import graph, read statically: which module imports which, and the floors folders stand on.

An AST parse of every .py file of the project's packages, so it sees function-local imports too (a cycle
hidden inside a function still couples two modules). tests/test_import_graph.py holds the house to it
(no cycle, no folder importing a folder on its floor or above); docs/architecture_diagram.py draws it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_DPATH = Path(__file__).resolve().parents[1]
PACKAGES = (
    "common", "data", "models", "envs", "training", "agents", "data_generation", "play", "auto_explore",
    "external", "pipelines", "experiments", "benchmarks",
)  # fmt: skip


# The house's floors (docs/ARCHITECTURE.md): a folder imports only folders on floors below its own. The
# ground is common/; the world-model parts (data, models) stand on it; the env layer and the world-model
# trainer above them; the agent stack above the envs; then what uses agents (recording, the player,
# AutoExplore), the ROM glue, the runner, and the scripts (experiments, benchmarks) at the top.
FLOORS = {
    "common": 0,
    "data": 1, "models": 1,
    "envs": 2, "training": 2,
    "agents": 3,
    "data_generation": 4, "play": 4, "auto_explore": 4,
    "external": 5,
    "pipelines": 6,
    "experiments": 7, "benchmarks": 7,
    "run": 8,
}  # fmt: skip
# the runner chains launcher commands: it imports no stack, whatever floor it stands on
ONLY_IMPORTS = {"pipelines": {"common"}}


def folder_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """(importing folder, imported folder) -> the module edges behind it, between different folders."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            pair = (module.split(".")[0], target.split(".")[0])
            if pair[0] != pair[1]:
                edges.setdefault(pair, []).append(f"{module} -> {target}")
    return edges


def module_name(fpath: Path, repo_dpath: Path = REPO_DPATH) -> str:
    parts = list(fpath.relative_to(repo_dpath).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(repo_dpath: Path = REPO_DPATH) -> dict[str, Path]:
    packages = sorted(
        {*PACKAGES, *(p.name for p in repo_dpath.iterdir() if (p / "__init__.py").is_file())} - {"tests"}
    )
    modules = {
        module_name(p, repo_dpath): p for package in packages for p in (repo_dpath / package).rglob("*.py")
    }
    modules["run"] = repo_dpath / "run.py"
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to: itself, or the nearest enclosing package that is one."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_modules(module: str, fpath: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in `fpath` (top level, functions, TYPE_CHECKING excluded)."""
    tree = ast.parse(fpath.read_text(), filename=str(fpath))
    type_checking_nodes = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for child in ast.walk(node)
    }
    package = module if fpath.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_checking_nodes:
            continue  # annotations only: never executed, so no runtime cycle
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import submodule` imports the submodule; `from module import name` the module
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = resolve(name, modules)
            if target is not None and target != module:
                targets.add(target)
    return targets


def import_graph(repo_dpath: Path = REPO_DPATH) -> dict[str, set[str]]:
    modules = project_modules(repo_dpath)
    return {name: imported_modules(name, fpath, modules) for name, fpath in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None. Iterative DFS with colours."""
    colour = dict.fromkeys(graph, 0)  # 0 unvisited, 1 on the stack, 2 done
    for root in sorted(graph):
        if colour[root]:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child, 2) == 1:
                return [*path[path.index(child) :], child]
            elif colour.get(child) == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None
