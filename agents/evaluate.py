"""How good is the CoinRun task agent: mean return on levels it never trained on, beside the random
agent on the same levels. Figures go to <run>/eval_<checkpoint>.json and, when recorded, to
benchmarks/results/agent_coinrun.json, benchmarks/RESULTS.md and docs/agents.md (never typed by hand).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.actor_critic import sample_actions
from agents.checkpoint import load_policy, resolve_checkpoint
from common.atomic import atomic_write_json
from common.errors import UserError
from envs import make_env
from envs.coinrun import LEVEL_RANGES

DOCS_FPATH = Path(__file__).resolve().parent.parent / "docs" / "agents.md"
PUBLISHED_PPO_EASY = "~8-9 of 10 on easy test levels after 25 M steps (Cobbe et al. 2020, procgen)"
PUBLISHED_ENV_STEPS = 25_000_000

# (frames uint8 [B, S, S, 3], firsts bool [B]) -> actions int64 [B]
ChooseActions = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalConfig:
    run_dpath: str | None
    checkpoint: str
    num_levels: int
    num_parallel: int
    temperature: float
    seed: int
    num_threads: int
    is_recorded: bool


@dataclass
class Episodes:
    returns: np.ndarray  # float [E], the game's reward summed (10 for the coin)
    lengths: np.ndarray  # int [E]

    def summary(self, agent: str) -> dict:
        n = len(self.returns)
        return {
            "agent": agent, "levels": n, "mean_return": float(self.returns.mean()),
            "stderr": float(self.returns.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "success_pct": float(100.0 * (self.returns > 0).mean()), "mean_length": float(self.lengths.mean()),
        }  # fmt: skip


def play_test_levels(choose: ChooseActions, num_levels: int, num_parallel: int, image_size: int) -> Episodes:
    """Level i of LEVEL_RANGES agent_test (i < num_levels) played once, `num_parallel` at a time."""
    start, count = LEVEL_RANGES["agent_test"]
    if not 1 <= num_levels <= count:
        raise UserError(f"num_levels must be in [1, {count}] (got {num_levels})")
    slots = min(num_parallel, num_levels)
    envs = [make_env("coinrun", image_size, frame_skip=1, levels=(start, count)) for _ in range(slots)]
    returns, lengths = np.zeros(num_levels), np.zeros(num_levels, dtype=np.int64)
    playing = list(range(slots))  # level index each slot plays (-1: idle)
    frames = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])  # [B, S, S, 3]
    firsts = np.ones(slots, dtype=bool)
    next_level = slots
    while any(level >= 0 for level in playing):
        actions = choose(frames, firsts)
        firsts = np.zeros(slots, dtype=bool)
        for slot, env in enumerate(envs):
            level = playing[slot]
            if level < 0:
                continue
            frame, reward, terminated, _, _ = env.step(int(actions[slot]))
            returns[level] += reward
            lengths[level] += 1
            frames[slot] = frame
            if terminated:
                playing[slot] = next_level if next_level < num_levels else -1
                if playing[slot] >= 0:
                    frames[slot], firsts[slot] = env.reset(seed=next_level)[0], True
                    next_level += 1
    for env in envs:
        env.close()
    return Episodes(returns, lengths)


def policy_chooser(model: torch.nn.Module, temperature: float, generator: torch.Generator) -> ChooseActions:
    state = None

    @torch.no_grad()
    def choose(frames: np.ndarray, firsts: np.ndarray) -> np.ndarray:
        nonlocal state
        if state is None:
            state = model.initial_state(len(frames))
        logits, _, state = model.step(torch.from_numpy(frames), state, torch.from_numpy(firsts))
        uniforms = torch.rand(len(frames), generator=generator)  # [B]
        return sample_actions(logits, temperature, 0.0, uniforms)[0].numpy()

    return choose


def random_chooser(num_actions: int, rng: np.random.Generator) -> ChooseActions:
    return lambda frames, firsts: rng.integers(num_actions, size=len(frames))


def run_evaluation(config: EvalConfig) -> dict:
    if not config.run_dpath:
        raise UserError("agent eval needs run_dpath=<the agent's run folder>")
    run_dpath = Path(config.run_dpath)
    checkpoint_dpath = resolve_checkpoint(run_dpath / "checkpoints", config.checkpoint)
    if checkpoint_dpath is None:
        raise UserError(f"no checkpoint '{config.checkpoint}' in {run_dpath}/checkpoints (train first, or "
                        f"checkpoint=last)")  # fmt: skip
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    model, train_config = load_policy(checkpoint_dpath)
    if train_config["env"]["game"] != "coinrun":
        raise UserError(
            f"agent eval scores CoinRun agents; this one was trained on {train_config['env']['game']}"
        )
    state = json.loads((checkpoint_dpath / "trainer_state.json").read_text())
    image_size = int(train_config["env"]["image_size"])
    generator = torch.Generator().manual_seed(config.seed)
    trained = play_test_levels(policy_chooser(model, config.temperature, generator), config.num_levels,
                               config.num_parallel, image_size)  # fmt: skip
    random = play_test_levels(random_chooser(model.config.num_actions, np.random.default_rng(config.seed)),
                              config.num_levels, config.num_parallel, image_size)  # fmt: skip
    rows = [trained.summary("trained"), random.summary("random")]
    budget = {
        "checkpoint": config.checkpoint, "epochs": state["epoch"], "env_steps": state["env_steps"],
        "train_wall_s": round(state["wall_s"]), "algorithm": train_config["training"]["algorithm"],
        "agent_size": train_config["agent"]["size"], "parameters": sum(p.numel() for p in model.parameters()),
        "image_size": image_size, "num_envs": train_config["env"]["num_envs"],
        "train_levels": train_config["env"]["levels"], "test_levels": [LEVEL_RANGES["agent_test"][0], config.num_levels],
        "temperature": config.temperature,
    }  # fmt: skip
    result = {"rows": rows, "budget": budget, "published": PUBLISHED_PPO_EASY}
    atomic_write_json(run_dpath / f"eval_{config.checkpoint}.json", result)
    for row in rows:
        print(f"{row['agent']:>8}: mean return {row['mean_return']:.2f} ± {row['stderr']:.2f} over {row['levels']} "
              f"unseen levels, {row['success_pct']:.1f}% coins, mean length {row['mean_length']:.0f}")  # fmt: skip
    if config.is_recorded:
        record(rows, budget, run_dpath)
    return result


def record(rows: list[dict], budget: dict, run_dpath: Path) -> None:

    from benchmarks.recording import mirror_into_doc
    from benchmarks.recording import record as record_bench

    steps_per_s = budget["env_steps"] / max(budget["train_wall_s"], 1)

    notes = (
        f"CoinRun easy, original 7 actions, one episode on each of {rows[0]['levels']} unseen levels "
        f"(levels {budget['test_levels'][0]}..{budget['test_levels'][0] + rows[0]['levels'] - 1}; training levels "
        f"{budget['train_levels'][0]}..{budget['train_levels'][0] + budget['train_levels'][1] - 1}). Trained agent: "
        f"{budget['algorithm']}, {budget['agent_size']} actor-critic ({budget['parameters']} params, {budget['image_size']} px), "
        f"{budget['env_steps']} env steps in {budget['epochs']} epochs, {budget['train_wall_s']} s wall ({budget['num_envs']} "
        f"envs), checkpoint {budget['checkpoint']}, sampled at temperature {budget['temperature']}. "
        f"Published PPO: {PUBLISHED_PPO_EASY}; that budget is {PUBLISHED_ENV_STEPS / budget['env_steps']:.0f}x this "
        f"run's, {PUBLISHED_ENV_STEPS / steps_per_s / 3600:.0f} h at this run's {steps_per_s:.0f} env steps/s. "
        f"Run folder: {run_dpath.name}."
    )
    import shutil

    from agents.plot import plot_training_curve

    curve = plot_training_curve(run_dpath / "metrics.jsonl", run_dpath / "training_curve.png")
    shutil.copyfile(curve, DOCS_FPATH.parent / "agents_coinrun_curve.png")
    mirror_into_doc(DOCS_FPATH, "agent_coinrun", record_bench("agent_coinrun", rows, notes))
