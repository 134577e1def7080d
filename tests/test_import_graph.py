"""The project's own modules import each other without cycles, and one module owns the checkpoint layout.

The import graph is read statically (an AST parse of every .py file), so it sees function-local imports
too: a cycle hidden inside a function still couples the two modules, and would fail as soon as either is
imported from the other's top level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common.import_graph import (
    FLOORS,
    ONLY_IMPORTS,
    PACKAGES,
    find_cycle,
    folder_edges,
    import_graph,
    imported_modules,
)

REPO_DPATH = Path(__file__).resolve().parents[1]


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
