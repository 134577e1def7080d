"""The project's own modules import each other without cycles, and one module owns the checkpoint layout.

The import graph is read statically (an AST parse of every .py file), so it sees function-local imports
too: a cycle hidden inside a function still couples the two modules, and would fail as soon as either is
imported from the other's top level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_DPATH = Path(__file__).resolve().parents[1]
PACKAGES = (
    "common",
    "data",
    "data_generation",
    "envs",
    "models",
    "training",
    "agents",
    "auto_explore",
    "play",
    "external",
    "benchmarks",
    "pipelines",
    "experiments",
)


def module_name(fpath: Path) -> str:
    parts = list(fpath.relative_to(REPO_DPATH).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {module_name(p): p for package in PACKAGES for p in (REPO_DPATH / package).rglob("*.py")}
    modules["run"] = REPO_DPATH / "run.py"
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


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
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


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imported_modules_sees_function_local_and_relative_imports(tmp_path):
    modules = {"pkg": tmp_path / "__init__.py", "pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    modules["pkg.a"].write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from .b import thing\n"
    )
    # the TYPE_CHECKING import of pkg.c is skipped; the parent package's __init__ is not an edge
    modules["pkg.c"] = tmp_path / "c.py"
    assert imported_modules("pkg.a", modules["pkg.a"], modules) == {"pkg.b"}


def test_project_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"models.checkpoint", "models.presets", "training.trainer"} <= set(graph)
    assert "models.presets" in graph["models.checkpoint"]  # the walk sees real edges
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


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


def test_no_folder_imports_a_folder_on_its_own_floor_or_above():
    edges = folder_edges(import_graph())
    assert {folder for pair in edges for folder in pair} <= set(FLOORS), "a folder without a floor: add it"
    upward = {
        f"{a} -> {b}": examples[:3]
        for (a, b), examples in sorted(edges.items())
        if FLOORS[b] >= FLOORS[a] or (a in ONLY_IMPORTS and b not in ONLY_IMPORTS[a])
    }
    assert not upward, f"imports that run sideways or up a floor: {upward}"
    assert ("agents", "envs") in edges and ("experiments", "pipelines") in edges  # the walk sees real edges


def test_the_floor_check_catches_an_import_up_a_floor():
    graph = {
        "envs.vector": {"agents.policy"},
        "agents.policy": set(),
        "pipelines.demo": {"models.checkpoint"},
    }
    edges = folder_edges(graph)
    assert FLOORS["agents"] > FLOORS["envs"] and ("envs", "agents") in edges
    assert "models" not in ONLY_IMPORTS["pipelines"] and ("pipelines", "models") in edges


# The checkpoint layout: the file names inside a checkpoint (flagged in any string but a docstring), and
# the directories a run or a training step keeps one in (flagged where code builds a path: `x / "model"`).
LAYOUT_FNAMES = ("model.safetensors", "config.yaml")
LAYOUT_DNAMES = ("best_model", "final_model", "model")
LAYOUT_OWNER = "models/checkpoint.py"
# a run directory's own config.yaml (the resolved Hydra config) is the run's, not a checkpoint's
LAYOUT_EXCEPTIONS = {("common/paths.py", "config.yaml"), ("training/cli.py", "config.yaml")}


def layout_spellings(relative: str, source: str) -> list[str]:
    """`file:line 'string'` for each checkpoint layout string the source spells out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [(node.lineno, text) for text in LAYOUT_FNAMES if text in node.value]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            found += [
                (node.lineno, operand.value)
                for operand in (node.left, node.right)
                if isinstance(operand, ast.Constant) and operand.value in LAYOUT_DNAMES
            ]
    return [
        f"{relative}:{line} {text!r}" for line, text in found if (relative, text) not in LAYOUT_EXCEPTIONS
    ]


def test_layout_spellings_finds_file_names_and_path_components():
    source = (
        '"""A checkpoint: config.yaml and model.safetensors."""\n'
        'a = run / "best_model"\n'
        'b = f"{dpath}/model.safetensors"\n'
        'c = summary["best_model"]\n'
    )
    assert layout_spellings("x.py", source) == ["x.py:2 'best_model'", "x.py:3 'model.safetensors'"]


@pytest.mark.parametrize("package", PACKAGES)
def test_checkpoint_layout_strings_live_in_models_checkpoint_only(package):
    offenders = [
        spelling
        for fpath in sorted((REPO_DPATH / package).rglob("*.py"))
        if fpath.relative_to(REPO_DPATH).as_posix() != LAYOUT_OWNER
        for spelling in layout_spellings(fpath.relative_to(REPO_DPATH).as_posix(), fpath.read_text())
    ]
    assert not offenders, f"checkpoint layout spelled outside {LAYOUT_OWNER}: {offenders}"
