"""The fidelity-per-minute benchmark (experiments/fidelity.py) and its upstream arm
(benchmarks/upstream_fidelity.py), at a tiny budget: ours through the launcher, upstream through a fake
checkout whose sampler copies the last prime frame, so our protocol must score it exactly as the copy
baseline."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks.upstream_fidelity import UpstreamRun, finished_report, run_upstream, write_training_windows
from data.datasets import WindowDataset, balanced_sampler
from data.store_synthetic import write_synthetic_store
from experiments.fidelity import Budget, parse_args, run_experiment
from tests.test_bench_upstream import write_fake_upstream
from training.data_stream import build_train_loader, sampler_order

# the fake's guided model learns nothing and samples "the last prime frame, again" (a copying model)
COPYING_SAMPLER = """
def _copying_sample(self, prime_frames=None, actions=None, num_frames=None, inference_steps=1,
                    sample_temperature=1.0, **kwargs):
    log(f"sample prime={tuple(prime_frames.shape)} actions={tuple(actions.shape)} frames={num_frames}")
    return prime_frames[:, :, -1:].repeat(1, 1, num_frames, 1, 1)


GenieReduxGuided.sample = _copying_sample
"""


@pytest.fixture
def tiny_stores(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    write_synthetic_store(root / "squares", ["envA", "envB"], num_sessions=20, num_frames=30, image_size=16)
    return root


def test_the_upstream_windows_are_the_ones_our_trainer_draws_in_its_order(tiny_stores, tmp_path):
    run = UpstreamRun(Path("."), tiny_stores / "squares", tiny_stores / "squares", "test", tmp_path, seed=3,
                      num_frames=4, batch_size=2)  # fmt: skip
    write_training_windows(run, tmp_path)
    frames, starts = np.load(tmp_path / "frames.npy"), np.load(tmp_path / "starts.npy")
    dataset = WindowDataset(tiny_stores / "squares", "train", num_frames=4)
    order = sampler_order(lambda epoch: balanced_sampler(dataset, len(dataset), 3, epoch=epoch))
    loader = build_train_loader(dataset, order, batch_size=2, start_position=0, rank=0, world_size=1,
                                num_workers=0, seed=3)  # fmt: skip
    batches = iter(loader)
    for step in range(5):
        ours = next(batches)["frames"].numpy()  # [2, 4, H, W, 3]
        theirs = np.stack([frames[s : s + 4] for s in starts[2 * step : 2 * step + 2]])
        assert np.array_equal(ours, theirs), step


@pytest.mark.slow
def test_a_copying_upstream_scores_exactly_the_copy_baseline_through_our_protocol(tiny_stores, tmp_path):
    root = write_fake_upstream(tmp_path / "upstream", tmp_path / "fake.log")
    genie = root / "models" / "genie_redux.py"
    genie.write_text(genie.read_text() + textwrap.dedent(COPYING_SAMPLER))
    run = UpstreamRun(root, tiny_stores / "squares", tiny_stores / "squares", "test", tmp_path / "run",
                      tokenizer_min=0.01, dynamics_min=0.01, image_size=16, num_frames=12, num_sequences=4,
                      inference_steps=2)  # fmt: skip
    report = run_upstream(run)
    assert report["tokenizer"]["steps"] >= 23 and report["genie_redux_guided"]["steps"] >= 23  # calibration
    result = json.loads((tmp_path / "run" / "eval_one_go_t1" / "results.json").read_text())
    metrics = result["metrics"]
    assert metrics["psnr"] == pytest.approx(metrics["psnr_copy_last"], abs=1e-4)
    assert metrics["delta_psnr_genie"] == pytest.approx(0.0, abs=1e-6)  # a copy ignores its actions
    log = (tmp_path / "fake.log").read_text()
    assert "sample prime=(4, 3, 2, 16, 16) actions=(4, 11) frames=10" in log  # [B, C, T0, H, W], T0 + N - 1
    # a finished run is reused only under the same settings: the same call trains nothing again ...
    assert run_upstream(run) == report and (tmp_path / "fake.log").read_text() == log
    # ... and under another learning rate the folder holds no finished run: it would train again
    assert finished_report(run) == report and finished_report(dataclasses.replace(run, lr_max=2e-3)) is None


@pytest.mark.slow
def test_the_quick_benchmark_trains_evaluates_and_says_upstream_was_not_measured(tmp_path):
    budget = Budget(quick=True, datasets=("demo",), arms=("baseline",), seeds=(0,))
    report = run_experiment(
        budget, tmp_path / "out", name="fidelity_test", results_dpath=tmp_path / "results"
    )
    (row,) = report["summary"]
    assert row["arm"] == "baseline" and row["seeds"] == 1 and row["dyn. steps"] >= 3
    assert np.isfinite(row["autoreg. PSNR"]) and np.isfinite(row["one_go PSNR"]) and row["copy PSNR"] > 0
    run = report["runs"]["demo/baseline/seed0"]
    assert run["tokenizer_curve"] and run["dynamics_curve"][-1]["train_min"] > 0
    text = (tmp_path / "results" / "fidelity_test.md").read_text()
    assert "upstream not measured" in text and "Quick mode" in text
    assert any("time_budget_min=0.05" in c for c in report["commands"])


def test_unknown_arms_and_datasets_are_one_line(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--arms", "baseline,nope"])
    assert "unknown arm(s) ['nope']" in capsys.readouterr().err
    budget, *_ = parse_args(["--datasets", "coinrun", "--seeds", "3"])
    assert budget.datasets == ("coinrun",) and budget.seeds == (3,)


def test_sampling_only_arms_evaluate_the_run_they_share(tmp_path):
    """lr1e-2_greedy / _anneal / _steps100 differ from lr1e-2 only in how they sample: one training run,
    each arm's evaluations in their own folder with their own sampling overrides."""
    from experiments.fidelity import DATASETS, dynamics_chains

    arms = ("lr1e-2", "lr1e-2_greedy", "lr1e-2_anneal", "lr1e-2_steps100")
    chains = dynamics_chains(
        tmp_path, DATASETS["coinrun"], 0, Budget(arms=arms, datasets=("coinrun",), seeds=(0,))
    )
    commands = [command for chain in chains.values() for command in chain]
    trainings = [c for c in commands if c[:2] == ["genie_redux", "train"]]
    assert len(trainings) == 1  # the three sampling arms reuse lr1e-2's run
    evals = {next(a.split("=", 1)[1] for a in c if a.startswith("eval.output_dpath=")): c for c in commands
             if c[:2] == ["genie_redux", "eval"]}  # fmt: skip
    assert sorted(Path(p).name for p in evals) == sorted(
        f"eval_{m}_{s}" for m in ("one_go", "autoregressive")
        for s in ("t1", "t0", "t1_anneal", "t1_steps100")
    )  # fmt: skip
    for dpath, command in evals.items():
        assert ("eval.anneal_temperature=true" in command) == dpath.endswith("_anneal")
        assert ("eval.temperature=0.0" in command) == dpath.endswith("_t0")
        assert ("eval.inference_steps=100" in command) == dpath.endswith("_steps100")


def test_an_upstream_checkout_that_cannot_run_fails_before_any_training(tmp_path):
    from common.errors import UserError

    not_upstream = tmp_path / "not_upstream"
    not_upstream.mkdir()
    budget = Budget(datasets=("demo",), arms=("lr1e-2",), seeds=(0,), upstream_dpath=str(not_upstream))
    with pytest.raises(UserError, match="did not import as upstream GenieRedux"):
        run_experiment(budget, tmp_path / "out", results_dpath=tmp_path / "results")
    assert not (tmp_path / "out" / "datasets").exists()  # nothing was recorded or trained
