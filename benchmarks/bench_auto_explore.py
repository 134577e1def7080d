"""AutoExplore's step cost: env steps/s of N retro envs including the world-model reward, one batched
world-model call for all envs vs one call per env, and the share of step time in the world model.

`python run.py bench auto_explore [preset=tiny] [game=MontezumaRevenge-Atari2600] [num_envs=8]
[num_steps=40] [context_frames=5] [n_preds=1] [threads=1]`

The envs (ProcessVecEnv, one emulator process each, random actions) are stepped once and their
steps recorded; the reward is then timed on the same steps batched (one `WorldModelUncertaintyReward`
of N envs) and per env (N sources of one env). Untrained weights: the cost does not depend on them.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from common.errors import UserError

OPTIONS = {"preset", "game", "num_envs", "num_steps", "context_frames", "n_preds", "threads"}


def parse_options(options: dict[str, str]) -> dict:
    unknown = set(options) - OPTIONS
    if unknown:
        raise UserError(f"unknown auto_explore option(s) {sorted(unknown)}; use {sorted(OPTIONS)}")
    return {
        "preset": options.get("preset", "tiny"),
        "game": options.get("game", "MontezumaRevenge-Atari2600"),
        "num_envs": int(options.get("num_envs", "8")),
        "num_steps": int(options.get("num_steps", "40")),
        "context_frames": int(options.get("context_frames", "5")),
        "n_preds": int(options.get("n_preds", "1")),
        "threads": int(options.get("threads", "1")),
    }


def time_rewards(sources: list, steps: list, actions: np.ndarray, first_frames: np.ndarray) -> float:
    """Seconds the sources take over the recorded steps; source i scores envs slices[i] of every step."""
    from envs.vector import VecStep

    per_source = actions.shape[1] // len(sources)
    slices = [slice(i * per_source, (i + 1) * per_source) for i in range(len(sources))]
    for source, part in zip(sources, slices, strict=True):
        source.reset(first_frames[part])
    started = time.perf_counter()
    for t, step in enumerate(steps):
        for source, part in zip(sources, slices, strict=True):
            source(actions[t, part], VecStep(step.observations[part], step.rewards[part], step.dones[part]))
    return time.perf_counter() - started


def main(**options: str) -> int:
    import torch

    from agents.rewards import WorldModelRewardSettings, WorldModelUncertaintyReward
    from benchmarks.results_md import publish
    from data.actions import action_ids
    from envs import make_vec_env
    from models.checkpoint import save_checkpoint
    from models.presets import build

    opts = parse_options(options)
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    model = build("genie_redux_guided", opts["preset"])
    image_size, n = model.tokenizer.config.image_size, opts["num_envs"]
    vec_env = make_vec_env(opts["game"], n, image_size, seed=0, frame_skip=4)
    rng = np.random.default_rng(0)
    try:
        first_frames = vec_env.reset()
        actions = rng.integers(0, len(vec_env.action_names), (opts["num_steps"], n))
        started = time.perf_counter()
        steps = [vec_env.step(actions[t]) for t in range(opts["num_steps"])]
        env_s = time.perf_counter() - started
        ids = action_ids(vec_env.action_names)
    finally:
        vec_env.close()
    with tempfile.TemporaryDirectory() as tmp_dpath:
        dpath = save_checkpoint(model, f"{tmp_dpath}/model")
        settings = WorldModelRewardSettings(str(dpath), opts["n_preds"], opts["context_frames"], "cpu")

        def source() -> WorldModelUncertaintyReward:
            return WorldModelUncertaintyReward(settings, ids, image_size)

        time_rewards([source()], steps[:3], actions, first_frames)  # warm-up
        batched_s = time_rewards([source()], steps, actions, first_frames)
        per_env_s = time_rewards([source() for _ in range(n)], steps, actions, first_frames)
    env_steps = n * opts["num_steps"]
    rows = [
        {"reward_calls": "one batched call", "envs": n, "env_steps_per_s": env_steps / (env_s + batched_s),
         "reward_ms_per_step": 1000 * batched_s / opts["num_steps"], "world_model_share": batched_s / (env_s + batched_s)},
        {"reward_calls": "one call per env", "envs": n, "env_steps_per_s": env_steps / (env_s + per_env_s),
         "reward_ms_per_step": 1000 * per_env_s / opts["num_steps"], "world_model_share": per_env_s / (env_s + per_env_s)},
        {"reward_calls": "none (env only)", "envs": n, "env_steps_per_s": env_steps / env_s,
         "reward_ms_per_step": 0.0, "world_model_share": 0.0},
    ]  # fmt: skip
    params = sum(p.numel() for p in model.parameters())
    notes = (
        f"{opts['game']}, frame skip 4, random actions, {n} envs in worker processes, {opts['num_steps']} steps; "
        f"world model: untrained genie_redux_guided preset {opts['preset']} ({params / 1e6:.2f} M params, "
        f"{image_size} px), context {opts['context_frames']} frames, n_preds {opts['n_preds']}, 1 MaskGIT step, "
        f"{opts['threads']} torch thread(s). Batched reward is {per_env_s / batched_s:.2f}x faster than one call "
        f"per env (the world model's time per step, same recorded steps)."
    )
    publish("auto_explore", rows, notes)
    return 0
