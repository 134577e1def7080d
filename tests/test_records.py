"""Every recorded figure regenerates from its JSON: a results block or table is never typed by hand.

Benchmarks write benchmarks/results/<name>.json and the RESULTS.md block rendered from it (some copy it
into a doc); experiments write experiments/results/<name>.json and the .md their script's `markdown`
renders from it. Rendering each JSON again must give the text on disk, byte for byte.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

REPO_DPATH = Path(__file__).resolve().parents[1]
BENCH_RESULTS = sorted((REPO_DPATH / "benchmarks" / "results").glob("*.json"))
EXPERIMENT_RESULTS = sorted((REPO_DPATH / "experiments" / "results").glob("*.json"))
# which experiment script wrote a results file (its `markdown(report)` renders it)
OWNERS = {
    "agent_data": "agent_data", "auto_explore_data": "auto_explore_data", "auto_explore_data_first": "auto_explore_data", "uncertainty_novelty": "uncertainty_novelty", "uncertainty_novelty_first": "uncertainty_novelty",
    "controllability": "controllability", "controllability_genie_redux": "controllability",
    "exploration_game": "exploration_game", "exploration_game_first": "exploration_game", "coinrun_after": "before_after", "coinrun_before": "before_after",
    "demo_after": "before_after", "demo_before": "before_after", "demo_after_refactor": "before_after",
    "fidelity": "fidelity", "fidelity_batch1": "fidelity", "fidelity_batch2": "fidelity", "fidelity_lr3e-3": "fidelity", "fidelity_batch3": "fidelity", "fidelity_batch4": "fidelity", "fidelity_batch5": "fidelity", "fidelity_batch6": "fidelity", "fidelity_demo": "fidelity", "fidelity_batch7": "fidelity", "fidelity_batch8": "fidelity", "fidelity_15min": "fidelity", "play_quality": "play_quality", "play_quality_clone": "play_quality", "play_quality_seed1": "play_quality", "demo_recipe": "demo_recipe", "demo_recipe_tdce_skip": "demo_recipe",
    "block_recipe_lr7e-3_seed0": "controllability", "block_recipe_lr7e-3_seed1": "controllability",
    "block_recipe_equal_time_seed0": "controllability", "block_recipe_equal_time_seed1": "controllability",
    "block_recipe_lr1e-3_seed0": "controllability", "block_recipe_lr1e-3_seed1": "controllability",
    "block_recipe_lr3e-3_seed0": "controllability", "block_recipe_lr3e-3_seed1": "controllability",
    "coinrun_after_recipe": "before_after", "agent_data_recipe": "agent_data", "fidelity_upstream_recipe": "fidelity",
}  # fmt: skip
# written before benchmarks stamped their records: a doc table without device, commit or date
UNSTAMPED = {"agent_algorithm_choice.json"}


@pytest.mark.parametrize("fpath", BENCH_RESULTS, ids=lambda p: p.stem)
def test_a_benchmark_block_regenerates_from_its_json(fpath):
    from benchmarks.results_md import RESULTS_MD_FPATH, mirror_body, render_block

    if fpath.name in UNSTAMPED:
        pytest.skip("an unstamped legacy record")
    record = json.loads(fpath.read_text())
    block = render_block(record)
    assert block in RESULTS_MD_FPATH.read_text()
    for doc in (REPO_DPATH / "docs").glob("*.md"):  # a doc that shows the block shows it as rendered
        match = re.search(
            rf"<!-- results:{record['benchmark']} -->\n(.*?)<!-- /results:", doc.read_text(), re.S
        )
        if match:
            assert match.group(1) == mirror_body(record["benchmark"], block), doc.name


@pytest.mark.parametrize("fpath", EXPERIMENT_RESULTS, ids=lambda p: p.stem)
def test_an_experiment_record_regenerates_from_its_json(fpath):
    module = importlib.import_module(f"experiments.{OWNERS[fpath.stem]}")
    assert module.markdown(json.loads(fpath.read_text())) == fpath.with_suffix(".md").read_text()


def test_every_results_file_has_an_owner():
    assert {p.stem for p in EXPERIMENT_RESULTS} <= set(OWNERS)
    assert len(BENCH_RESULTS) - len(UNSTAMPED) >= 15
