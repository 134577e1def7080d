"""The comparison experiments compare like with like: the arms' commands differ only where they should.

experiments/agent_data.py (random vs trained-agent data, NeurIPS case study) and
experiments/auto_explore_data.py (random vs AutoExplore data, CVPR paper) are judged by a table; these
tests pin what makes that table fair, on the command plans the scripts run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.atomic import atomic_write_json
from experiments import agent_data, auto_explore_data, before_after

OUT = Path("/tmp/plan")


def differing_items(first: list[str], second: list[str]) -> set[tuple[str, str]]:
    return set(first) ^ set(second)


def keyed(argv: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in argv if "=" in item)


def test_agent_data_training_sets_differ_only_in_who_plays():
    random, trained, random_test, trained_test = agent_data.generate_commands(
        OUT, agent_data.Budget(), Path("/agent")
    )
    # same sessions, steps, frame size (and, through the configs, seeds and levels): only the player differs
    assert {k: v for k, v in keyed(random).items() if k not in ("config", "output_dpath")} == {
        k: v
        for k, v in keyed(trained).items()
        if k not in ("config", "output_dpath", "agent.checkpoint_dpath")
    }
    assert keyed(trained)["agent.checkpoint_dpath"] == "/agent" and "agent.checkpoint_dpath" not in keyed(
        random
    )
    assert keyed(random_test)["config"] == "coinrun/random_test"
    assert keyed(trained_test)["agent.checkpoint_dpath"] == "/agent"


def test_agent_data_models_train_alike_and_meet_both_test_sets_whole():
    budget = agent_data.Budget(genie_redux=True)
    plans = {name: agent_data.train_commands(OUT, budget, name) for name in agent_data.TRAIN_SETS}
    for ours, theirs in zip(plans["random"], plans["trained_agent"], strict=True):
        renamed = [item.replace("/trained_agent", "/random") for item in theirs]
        assert renamed == ours  # same models, steps and settings; only the data (and run folders) differ
    evals = agent_data.eval_commands(OUT, budget, "random", fid_weights=None)
    seen = {
        (keyed(e)["config"], keyed(e)["train.dataset_name"], keyed(e)["eval.inference_method"]) for e in evals
    }
    assert seen == {
        (kind, f"coinrun/{test}", method)
        for kind in ("genie_redux_guided", "genie_redux")
        for test in agent_data.TEST_SETS
        for method in agent_data.METHODS
    }
    assert all(keyed(e)["eval.split"] == "all" for e in evals)  # a test store is a test set as a whole


def test_agent_data_table_reports_the_difference_per_test_set():
    rows = [
        {"model": "genie_redux_guided", "train_data": train, "test_data": test, "method": method,
         "psnr": psnr + (1.5 if train == "trained_agent" else 0.0), "ssim": 0.8, "delta_psnr_genie": 0.1,
         "psnr_copy_last": 30.0, "fid": None}
        for train in agent_data.TRAIN_SETS for test, psnr in (("random_test", 20.0), ("trained_agent_test", 18.0))
        for method in agent_data.METHODS
    ]  # fmt: skip
    table = agent_data.results_table(rows)
    assert table.count("\n") == 2 + 4  # header, rule, one line per train x test set
    assert "| genie_redux_guided | trained_agent | diverse (trained agent) | 19.50 |" in table
    assert agent_data.differences(rows).count("+1.50 dB") == 4


def test_auto_explore_data_stores_differ_only_in_the_player_and_never_reuse_training_seeds():
    budget = auto_explore_data.Budget()
    agent = auto_explore_data.agent_dpath(OUT, "auto_explore_neutral", 1)
    random, explore, test = auto_explore_data.generate_commands(OUT, budget, 32, agent)
    shared = ("game", "n_steps_max", "image_size", "n_sessions", "seed")
    assert [keyed(random)[k] for k in shared] == [keyed(explore)[k] for k in shared]
    assert keyed(explore)["agent.checkpoint_dpath"] == str(OUT / "agents" / "auto_explore_neutral_s1")
    # the demo's world model trained on seed 0; the test set's policy and seed are neither store's
    assert len({keyed(random)["seed"], keyed(test)["seed"], "0"}) == 3
    assert keyed(test)["agent.repeat_prob"] == "0.75" and "agent.repeat_prob" not in keyed(random)


def test_auto_explore_data_fine_tunes_alike_in_two_stages():
    budget = auto_explore_data.Budget()
    plans = {
        train_set: auto_explore_data.pending_finetune(OUT, budget, Path("/wm"), train_set)
        for train_set in ("random", "auto_explore")
    }
    (random_tokenizer, random), (explore_tokenizer, explore) = plans["random"], plans["auto_explore"]
    assert differing_items(random_tokenizer, explore_tokenizer) == {
        "train.dataset_name=retro_act/random",
        "train.dataset_name=retro_act/auto_explore",
        f"run_dpath={OUT / 'finetune_random_tokenizer'}",
        f"run_dpath={OUT / 'finetune_auto_explore_tokenizer'}",
    }
    assert differing_items(random, explore) == {
        "train.dataset_name=retro_act/random",
        "train.dataset_name=retro_act/auto_explore",
        f"tokenizer_dpath={OUT / 'finetune_random_tokenizer' / 'best_model'}",
        f"tokenizer_dpath={OUT / 'finetune_auto_explore_tokenizer' / 'best_model'}",
        f"run_dpath={OUT / 'finetune_random'}",
        f"run_dpath={OUT / 'finetune_auto_explore'}",
    }
    # stage 1 starts from the world model (its embedded tokenizer); stage 2 reads stage 1's tokenizer
    assert keyed(random_tokenizer)["model_dpath"] == keyed(random)["model_dpath"] == "/wm"
    assert keyed(random_tokenizer)["config"] == "tokenizer_explore_ft"
    frozen = auto_explore_data.Budget(tokenizer_finetune_steps=0)
    (only_dynamics,) = auto_explore_data.pending_finetune(OUT, frozen, Path("/wm"), "random")
    assert keyed(only_dynamics)["tokenizer_dpath"] == "null"


def test_auto_explore_data_agents_differ_only_in_their_reward_variant_and_seed():
    from experiments.explore_variants import VARIANTS

    budget = auto_explore_data.Budget()
    paper, neutral = (
        auto_explore_data.explore_train_command(OUT, budget, Path("/wm"), v, 0)
        for v in ("auto_explore", "auto_explore_neutral")
    )
    assert differing_items(paper, neutral) == {
        f"run_dpath={OUT / 'agents' / 'auto_explore_s0'}",
        f"run_dpath={OUT / 'agents' / 'auto_explore_neutral_s0'}",
        *(set(VARIANTS["auto_explore"]) ^ set(VARIANTS["auto_explore_neutral"])),  # the returns' switches
    }
    assert "reward.center=true" in neutral and "reward.center=false" in paper
    other_seed = auto_explore_data.explore_train_command(OUT, budget, Path("/wm"), "auto_explore", 1)
    assert differing_items(paper, other_seed) == {
        f"run_dpath={OUT / 'agents' / 'auto_explore_s0'}", f"run_dpath={OUT / 'agents' / 'auto_explore_s1'}",
        "common.seed=0", "common.seed=1",
    }  # fmt: skip


def test_auto_explore_data_records_with_the_autoexplore_variant_that_reached_most_states(tmp_path):
    budget = auto_explore_data.Budget(
        games=("A", "B"), variants=("auto_explore", "auto_explore_neutral", "rnd")
    )
    # states per (variant, seed) on games A, B; the random agent reaches 110 on each
    reach = {
        ("auto_explore", 0): (100, 90), ("auto_explore", 1): (100, 90),
        ("auto_explore_neutral", 0): (120, 95), ("auto_explore_neutral", 1): (130, 100),
        ("rnd", 0): (500, 500), ("rnd", 1): (500, 500),
    }  # fmt: skip
    for (variant, seed), (a, b) in reach.items():
        rows = [
            {"game": game, "agent": agent, "distinct_states_per_10k": states, "distinct_screens_per_10k": states / 2,
             "episodes": 3}
            for game, states in (("A", a), ("B", b))
            for agent, states in (("random", 110), (f"{variant} (gamma 0.15, T 1.0)", states))
        ]  # fmt: skip
        atomic_write_json(auto_explore_data.coverage_fpath(tmp_path, variant, seed), {"rows": rows})
    table = auto_explore_data.coverage_table(tmp_path, budget)
    assert [(r["game"], r["agent"]) for r in table] == [
        (g, a) for g in ("A", "B") for a in ("random", "auto_explore", "auto_explore_neutral", "rnd")
    ]  # the random agent once per game, each variant by its name, over its seeds
    neutral_a = next(r for r in table if r["game"] == "A" and r["agent"] == "auto_explore_neutral")
    assert neutral_a["distinct_states_per_10k"] == 125 and neutral_a["distinct_states_per_10k_per_seed"] == [
        120,
        130,
    ]
    # neutral: 222.5 > 190 states on average; its seed 1 reached more; RND is no AutoExplore
    assert auto_explore_data.data_agent(table, budget) == ("auto_explore_neutral", 1)
    assert "| A | auto_explore_neutral | 125 (120 / 130) | 1.14x |" in "\n".join(
        auto_explore_data.coverage_lines(table)
    )
    with pytest.raises(SystemExit, match="at least one AutoExplore variant"):
        auto_explore_data.data_agent(table, auto_explore_data.Budget(variants=("rnd",)))


def test_an_exploration_store_is_never_filled_by_two_agents(tmp_path):
    from experiments.explore_variants import claim_data_source

    marker = tmp_path / "source.json"
    claim_data_source(marker, {"variant": "auto_explore"}, tmp_path / "store")
    claim_data_source(marker, {"variant": "auto_explore"}, tmp_path / "store")  # a rerun, same agent
    with pytest.raises(SystemExit, match="remove it"):
        claim_data_source(marker, {"variant": "auto_explore_neutral"}, tmp_path / "store")


def test_auto_explore_data_refuses_a_world_model_that_is_not_one(tmp_path):
    with pytest.raises(SystemExit, match="world-model-dpath"):
        auto_explore_data.world_model_run(tmp_path)


def test_agent_data_keeps_finished_runs_and_reuses_only_finished_ones(tmp_path):
    budget = agent_data.Budget()
    (tmp_path / "random" / "tokenizer" / "final_model").mkdir(parents=True)
    kinds = [keyed(c)["config"] for c in agent_data.train_commands(tmp_path, budget, "random")]
    assert kinds == ["genie_redux_guided"]  # the finished tokenizer is not trained again
    with pytest.raises(SystemExit, match="not a finished run"):
        agent_data.reuse_random_arm(tmp_path / "out", tmp_path / "random")  # no store, no final dynamics


def test_roc_auc_of_a_novelty_signal():
    from agents.novelty import roc_auc

    novel = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), novel) == 1.0  # every novel frame above every familiar one
    assert roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), novel) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), novel) == 0.5  # ties count half: no signal
    assert roc_auc(np.array([0.9, 0.3, 0.5, 0.1]), novel) == 0.75  # 3 of the 4 pairs ordered
    assert roc_auc(np.array([0.1, 0.2]), np.array([True, True])) is None  # one class: undefined


@pytest.mark.slow
def test_uncertainty_novelty_scores_every_step_after_the_context(tiny_world_model_dpath):
    pytest.importorskip("stable_retro")
    from agents.novelty import measure_novelty
    from agents.rewards import WorldModelRewardSettings

    settings = WorldModelRewardSettings(
        str(tiny_world_model_dpath), n_preds=1, context_frames=5, device="cpu"
    )
    row = measure_novelty(
        "MontezumaRevenge-Atari2600", settings, 16, 4, max_episode_steps=20, num_steps=30, seed=0
    )
    assert row["episodes"] == 2 and row["scored_steps"] == (20 - 4) + (10 - 4)  # C - 1 unscored steps each
    assert 0.0 < row["novel_share"] < 1.0 and 0.0 <= row["reward_auc"] <= 1.0
    assert 0.0 < row["reward_novel"] < 1.0  # the reward is an entropy share in [0, 1]


def trainings(commands: list[list[str]]) -> dict[str, dict[str, str]]:
    return {keyed(c)["config"]: keyed(c) for c in commands if c[:2] == ["genie_redux", "train"]}


def test_world_models_of_the_coinrun_records_learn_at_the_cpu_recipe_rate():
    """GenieRedux-G trains at the measured CPU recipe's rate (1e-2 -> 1e-3) in the CoinRun flow and in both
    arms of agent_data; the tokenizer and GenieRedux's LAM keep 1e-3; the older records' rate stays reachable."""
    flow = trainings(before_after.coinrun_commands(OUT, Path.cwd(), (1e-2, 1e-3)))
    assert (
        flow["genie_redux_guided"]["train.optimizer.lr_max"],
        flow["genie_redux_guided"]["train.optimizer.lr_min"],
    ) == ("0.01", "0.001")
    assert flow["tokenizer"]["train.optimizer.lr_max"] == "0.001"
    older = trainings(before_after.coinrun_commands(OUT, Path.cwd(), (1e-3, 1e-4)))
    assert older["genie_redux_guided"]["train.optimizer.lr_max"] == "0.001"
    budget = agent_data.Budget(genie_redux=True)
    for train_set in agent_data.TRAIN_SETS:
        runs = trainings(agent_data.train_commands(OUT, budget, train_set))
        assert runs["genie_redux_guided"]["train.optimizer.lr_max"] == "0.01"
        assert runs["genie_redux_guided"]["train.optimizer.lr_min"] == "0.001"
        assert (
            runs["tokenizer"]["train.optimizer.lr_max"]
            == runs["genie_redux"]["train.optimizer.lr_max"]
            == "0.001"
        )
    # the random arm of agent_data is the CoinRun flow's dynamics run, so a finished flow can stand in for it
    flow_dynamics = {k: v for k, v in flow["genie_redux_guided"].items() if "optimizer" in k or "steps" in k}
    arm = trainings(agent_data.train_commands(OUT, agent_data.Budget(), "random"))
    assert flow_dynamics == {k: v for k, v in arm["genie_redux_guided"].items() if k in flow_dynamics}


def test_agent_data_one_arm_trains_alone_and_the_report_waits_for_its_partner(tmp_path, monkeypatch, capsys):
    agent = tmp_path / "agent"
    (agent / "checkpoints").mkdir(parents=True)
    ran: dict[str, list[list[str]]] = {"data": [], "chains": []}
    monkeypatch.setattr(
        agent_data.CommandRunner, "run", lambda self, args, tag="main", module=None: ran["data"].append(args)
    )
    monkeypatch.setattr(
        agent_data.CommandRunner,
        "run_chains",
        lambda self, chains, jobs: ran["chains"].append(sorted(chains)),
    )
    monkeypatch.setattr(
        agent_data,
        "write_results",
        lambda *a, **k: pytest.fail("results written before both arms were evaluated"),
    )
    code = agent_data.main(
        ["--agent-dpath", str(agent), "--output-dpath", str(tmp_path / "out"), "--arms", "trained_agent"]
    )
    assert code == 0
    stores = [keyed(c)["config"] for c in ran["data"]]
    assert stores == [
        "coinrun/trained_agent",
        "coinrun/random_test",
        "coinrun/trained_agent_test",
    ]  # no random store
    assert ran["chains"] == [["trained_agent"]]
    assert "not written yet: random, trained_agent" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--arms"):
        agent_data.main(
            ["--agent-dpath", str(agent), "--output-dpath", str(tmp_path / "out"), "--arms", "expert"]
        )
