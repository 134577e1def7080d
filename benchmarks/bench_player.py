"""How fast does the player generate? Frames/s of `WorldModelEnv.step` (MaskGIT + decode + uint8, what a
player tab waits for) per MaskGIT step count, and frame 1000's cost against frame 20's.

`python run.py bench player [preset=tiny] [image_size=32] [steps=1,2,4,8,25] [session_steps=2]
[frames=40] [threads=2] [model_dpath=] [dataset_dpath=]`  (session_steps=0: skip the 1004-frame session)

The defaults are the demo's model size (tiny at 32 px) with untrained weights: time per frame does not
depend on what is generated. With `model_dpath` and `dataset_dpath` (a trained checkpoint and its
episode store) each row also gets the quality side of the trade-off: PSNR of 10 frames generated from
real start clips with the real actions, against the real frames. The session-length columns (frame 1000 against frame
20) reuse bench_session_length's measurement, at `session_steps` MaskGIT steps only (1004 frames each).
"""

from __future__ import annotations

import os
import statistics
import time

from common.errors import UserError

OPTIONS = {
    "preset",
    "image_size",
    "steps",
    "session_steps",
    "frames",
    "threads",
    "model_dpath",
    "dataset_dpath",
}
QUALITY_CLIPS, QUALITY_FRAMES = 16, 10  # start clips and generated frames per PSNR figure


def parse_options(options: dict[str, str]) -> dict:
    unknown = set(options) - OPTIONS
    if unknown:
        raise UserError(f"unknown player option(s) {sorted(unknown)}; use {sorted(OPTIONS)}")
    if bool(options.get("model_dpath")) != bool(options.get("dataset_dpath")):
        raise UserError("give model_dpath and dataset_dpath together (a trained checkpoint and its store)")
    return {
        "preset": options.get("preset", "tiny"),
        "image_size": int(options.get("image_size", "32")),
        "steps": [int(v) for v in options.get("steps", "1,2,4,8,25").split(",")],
        "session_steps": int(options.get("session_steps", "2")),
        "frames": int(options.get("frames", "40")),
        "threads": int(options.get("threads", "2")),
        "model_dpath": options.get("model_dpath") or None,
        "dataset_dpath": options.get("dataset_dpath") or None,
    }


def env_frames_per_s(env, num_frames: int) -> float:  # noqa: ANN001
    """Median-based frames/s over `num_frames` steps after 5 warm-up steps, from a seeded reset."""
    import numpy as np

    env.reset(seed=0, options={"image": np.zeros((8, 8, 3), dtype=np.uint8)})
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(int(rng.integers(env.action_space.n)))
    seconds = []
    for _ in range(num_frames):
        start = time.perf_counter()
        env.step(int(rng.integers(env.action_space.n)))
        seconds.append(time.perf_counter() - start)
    return 1.0 / statistics.median(seconds)


def replication_psnr(world_model, dataset_dpath: str, steps: int) -> float:  # noqa: ANN001
    """Mean PSNR (dB) of QUALITY_FRAMES frames generated with the real actions from real 2-frame starts."""
    import numpy as np
    import torch

    from data.transforms import frames_to_model
    from envs.start_clips import StartPicker
    from training.evaluation.metrics import psnr

    picker = StartPicker(dataset_dpath, world_model.tokenizer.config.image_size, 2 + QUALITY_FRAMES)
    rng = np.random.default_rng(0)
    clips = [picker.pick(rng) for _ in range(QUALITY_CLIPS)]
    frames = frames_to_model(torch.from_numpy(np.stack([c.frames for c in clips])))  # [B, 12, 3, S, S]
    actions = torch.from_numpy(np.stack([c.actions for c in clips]))  # [B, 11]
    generated = world_model.rollout(
        frames[:, :2], actions[:, 1:], steps=steps, seed=0, prime_actions=actions[:, :1]
    )
    return psnr(generated, frames[:, 2:])


def main(**options: str) -> int:
    import torch

    from benchmarks.bench_session_length import step_times
    from benchmarks.results_md import publish
    from envs.world_model_env import WorldModelEnv
    from models.presets import build
    from models.world_model import WorldModel

    opts = parse_options(options)
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    if opts["model_dpath"]:
        world_model = WorldModel.from_checkpoint(opts["model_dpath"])
        source = f"trained checkpoint {opts['model_dpath']}"
    else:
        world_model = WorldModel(build("genie_redux_guided", opts["preset"], image_size=opts["image_size"]))
        source = f"untrained {opts['preset']} genie_redux_guided weights"
    env = WorldModelEnv(world_model)  # the player's path: action mapping, MaskGIT, decode, uint8
    rows = []
    for steps in opts["steps"]:
        env.sessions.set_options(steps, 1.0)
        fps = env_frames_per_s(env, opts["frames"])
        session = step_times(world_model, 1, steps, [20, 1000], 9) if steps == opts["session_steps"] else {}
        ms = {n: 1000 * session[n] if session else "" for n in (20, 1000)}
        rows.append(
            {
                "model": f"{opts['preset'] if not opts['model_dpath'] else 'checkpoint'} "
                f"{world_model.tokenizer.config.image_size}px",
                "maskgit_steps": steps,
                "frames_per_s": fps,
                "ms_frame_20": ms[20],
                "ms_frame_1000": ms[1000],
                "frame_1000_vs_20": session[1000] / session[20] if session else "",
                "psnr_db": replication_psnr(world_model, opts["dataset_dpath"], steps)
                if opts["dataset_dpath"]
                else "",
            }
        )
        print(rows[-1], flush=True)
    notes = (
        f"WorldModelEnv.step frames/s, batch 1 (one player tab): 1 / median of {opts['frames']} steps after 5 "
        f"warm-up; ms_frame_N: median WorldModel.step around frame N of one 1004-frame session "
        f"(bench_session_length). {source}, fp32, {opts['threads']} threads; load average at the end "
        f"{os.getloadavg()[0]:.1f} (the CPU is shared). psnr_db: only with a trained model_dpath."
    )
    name = "player" + ("_trained" if opts["model_dpath"] else "")
    publish(name, rows, notes)
    return 0
