"""Inference speed on one device for bench_gpu: cached generation, the player's env and the
AutoExplore reward, each through the one WorldModel API at its default precision ("auto": bf16
autocast on CUDA, fp32 on CPU). Untrained weights: the time per frame does not depend on them.

Every function appends its rows to `rows` as it measures, so a part stopped at its time limit keeps
what it had.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import numpy as np
import torch

from benchmarks.devices import synchronize
from benchmarks.train_step_speed import Deadline


def guided_model(preset: str, device: torch.device) -> torch.nn.Module:
    from models.presets import build

    torch.manual_seed(0)
    return build("genie_redux_guided", preset).to(device).eval()


def generation(rows: list[dict[str, Any]], preset: str, device: torch.device, maskgit_steps: list[int],
               batches: list[int], repeats: int, deadline: Deadline) -> None:  # fmt: skip
    """Frames/s of `WorldModel.step` after a full window of prime frames (priming untimed), per
    MaskGIT step count and batch; frames/s = batch / median seconds per step."""
    from models.world_model import WorldModel

    model = guided_model(preset, device)
    world_model = WorldModel(model)
    size, context = model.image_size, model.dynamics.config.num_frames - 1
    for batch in batches:
        frames = torch.rand(batch, context, 3, size, size, device=device)  # [B, T0, 3, H, W]
        actions = torch.randint(0, model.num_actions, (batch, context - 1), device=device)  # [B, T0-1]
        for steps in maskgit_steps:
            if deadline.passed():
                return
            generator = torch.Generator(device=device)
            times = []
            for repeat in range(repeats + 1):  # the first is a warm-up
                world_model.reset(frames, actions)
                generator.manual_seed(repeat)
                synchronize(device)
                start = time.perf_counter()
                world_model.step(
                    torch.zeros(batch, dtype=torch.long, device=device), steps, generator=generator
                )
                synchronize(device)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times[1:])
            rows.append({"part": "generation", "preset": preset, "batch": batch, "maskgit_steps": steps,
                         "frames_per_s": batch / seconds, "ms_per_step": 1000 * seconds,
                         "note": f"cached, {context} prime frames, median of {repeats}"})  # fmt: skip


def player(rows: list[dict[str, Any]], preset: str, device: torch.device, maskgit_steps: list[int],
           num_frames: int, deadline: Deadline) -> None:  # fmt: skip
    """Frames/s of the player's env (`WorldModelEnv.step`: MaskGIT, decode, uint8 to the host), batch 1."""
    from benchmarks.bench_player import env_frames_per_s
    from envs.world_model_env import WorldModelEnv
    from models.world_model import WorldModel

    env = WorldModelEnv(WorldModel(guided_model(preset, device)))
    for steps in maskgit_steps:
        if deadline.passed():
            return
        env.sessions.set_options(steps, 1.0)
        fps = env_frames_per_s(env, num_frames)
        rows.append({"part": "player", "preset": preset, "batch": 1, "maskgit_steps": steps, "frames_per_s": fps,
                     "ms_per_step": 1000 / fps, "note": f"WorldModelEnv.step, median of {num_frames}"})  # fmt: skip


def auto_explore_reward(rows: list[dict[str, Any]], preset: str, device: torch.device, game: str,
                        num_envs: int, num_steps: int, deadline: Deadline) -> None:  # fmt: skip
    """The AutoExplore reward for `num_envs` envs in one batched world-model call per step, on steps of
    `game` recorded first (random actions); env steps/s counts the envs' own time too."""
    from agents.rewards import WorldModelRewardSettings, WorldModelUncertaintyReward
    from benchmarks.bench_auto_explore import time_rewards
    from data.actions import action_ids
    from envs import make_vec_env
    from envs.coinrun import LEVEL_RANGES
    from models.checkpoint import save_checkpoint

    model = guided_model(preset, torch.device("cpu"))
    image_size = model.image_size
    is_coinrun = game == "coinrun"  # its native step, on the agents' training levels
    vec_env = make_vec_env(game, num_envs, image_size, seed=0, frame_skip=1 if is_coinrun else 4,
                           levels=LEVEL_RANGES["agent_train"] if is_coinrun else None)  # fmt: skip
    rng = np.random.default_rng(0)
    try:
        first_frames = vec_env.reset()
        actions = rng.integers(0, len(vec_env.action_names), (num_steps, num_envs))
        started = time.perf_counter()
        steps = [vec_env.step(actions[t]) for t in range(num_steps)]
        env_s = time.perf_counter() - started
        ids = action_ids(vec_env.action_names)
    finally:
        vec_env.close()
    if deadline.passed():
        return
    with tempfile.TemporaryDirectory() as tmp_dpath:
        dpath = save_checkpoint(model, f"{tmp_dpath}/model")
        settings = WorldModelRewardSettings(str(dpath), n_preds=1, context_frames=5, device=str(device))
        source = WorldModelUncertaintyReward(settings, ids, image_size)
        time_rewards([source], steps[:3], actions, first_frames)  # warm-up
        reward_s = time_rewards([source], steps, actions, first_frames)
    env_steps = num_envs * num_steps
    rows.append({"part": "auto_explore_reward", "preset": preset, "batch": num_envs, "maskgit_steps": 1,
                 "frames_per_s": env_steps / reward_s, "ms_per_step": 1000 * reward_s / num_steps,
                 "note": f"{game}, {num_envs} envs, context 5, one batched call per step; with the envs' "
                         f"own stepping {env_steps / (env_s + reward_s):.0f} env steps/s"})  # fmt: skip
