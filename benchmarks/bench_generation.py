"""Generation speed vs the raw emulator, worker scaling, and bytes per frame on disk.

    python run.py bench generation [steps=1000] [games=Airstriker-Genesis,MontezumaRevenge-Atari2600,coinrun]

Per game, in this process: raw emulator frames/s (the bare stable-retro / procgen step, random
buttons, no preprocessing) and the recording loop that a worker runs (GameEnv with frame skip, pad +
area resize, random agent, EpisodeWriter compression and atomic write). The ratio compares
*emulator frames* per second (recorded frames x frame_skip), so 1.0 means generation costs nothing
beyond emulation. Scaling runs the real multi-process generator with 1 and 2 workers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.recording import record
from data.episode_store import EpisodeWriter
from data_generation.agents import build_agent
from data_generation.envs import make_env
from data_generation.generator import GenerationSpec, run_generation
from data_generation.recorder import record_episode

DEFAULT_GAMES = "Airstriker-Genesis,MontezumaRevenge-Atari2600,coinrun"


def raw_emulator_fps(game: str, num_frames: int) -> float:
    """Bare emulator frames/s: random buttons straight into stable-retro or procgen."""
    rng = np.random.default_rng(0)
    if game == "coinrun":
        from data_generation.envs.coinrun import _import_procgen

        env = _import_procgen()(num=1, env_name="coinrun", distribution_mode="easy", rand_seed=0)
        started = time.perf_counter()
        for _ in range(num_frames):
            env.act(rng.integers(15, size=1))
            env.observe()
        elapsed = time.perf_counter() - started
        env.close()
        return num_frames / elapsed
    import stable_retro

    from data_generation.names import resolve_retro_game

    env = stable_retro.make(
        resolve_retro_game(game), render_mode=None, use_restricted_actions=stable_retro.Actions.ALL
    )
    env.reset()
    started = time.perf_counter()
    for _ in range(num_frames):
        _, _, terminated, truncated, _ = env.step(rng.integers(2, size=env.num_buttons))
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - started
    env.close()
    return num_frames / elapsed


def recording_loop(game: str, image_size: int, num_steps: int, out_dpath: Path) -> tuple[float, float, float]:
    """(emulator frames/s, bytes per frame, raw bytes per frame) of the worker's record+write loop."""
    frame_skip = 1 if game == "coinrun" else 4
    env = make_env(game, image_size, frame_skip=frame_skip)
    agent = build_agent("random", env.action_space.n, {"repeat_prob": 0.0})
    num_frames, num_bytes, session = 0, 0, 0
    with EpisodeWriter(out_dpath, f"bench-{image_size}") as writer:
        started = time.perf_counter()
        while num_frames < num_steps:
            recording = record_episode(env, agent, seed=session, n_steps_max=min(500, num_steps - num_frames))
            num_bytes += writer.write(
                f"{game}__s{session:06d}", recording.frames, recording.actions, game, session, {}
            )
            num_frames += len(recording.frames)
            session += 1
        elapsed = time.perf_counter() - started
    env.close()
    return num_frames * frame_skip / elapsed, num_bytes / num_frames, float(image_size * image_size * 3)


def generator_fps(games: list[str], n_workers: int, steps: int, out_dpath: Path) -> float:
    spec = GenerationSpec(
        env_names=tuple(g for g in games if g != "coinrun"), output_dpath=out_dpath, n_sessions=4,
        n_steps_max=steps // 4, n_workers=n_workers, image_size=64, frame_skip=4, sticky_action_prob=0.0,
        seed=0, variant="random", agent_options={},
    )  # fmt: skip
    started = time.perf_counter()
    summary = run_generation(spec)
    return summary.frames / (time.perf_counter() - started)


def main(**options: str) -> int:
    steps = int(options.pop("steps", 1000))
    games = options.pop("games", DEFAULT_GAMES).split(",")
    if options:
        raise SystemExit(f"unknown options {sorted(options)}; known: steps, games")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for game in games:
            raw = raw_emulator_fps(game, steps * 4)
            for image_size in (64, 256):
                fps, bytes_per_frame, raw_bytes = recording_loop(game, image_size, steps, Path(tmp) / game)
                rows.append({
                    "game": game, "image_size": image_size, "raw_emulator_fps": raw, "generation_emulator_fps": fps,
                    "ratio_to_raw": fps / raw, "bytes_per_frame": bytes_per_frame, "compressed_over_raw": bytes_per_frame / raw_bytes,
                })  # fmt: skip
        one = generator_fps(games, 1, steps, Path(tmp) / "w1")
        two = generator_fps(games, 2, steps, Path(tmp) / "w2")
    notes = (
        f"Generator with process spawn, {len([g for g in games if g != 'coinrun'])} retro games x 4 sessions, 64 px: "
        f"1 worker {one:.0f} frames/s, 2 workers {two:.0f} frames/s, scaling {two / one:.2f}x "
        "(the machine's other tenants share its cores). ratio_to_raw compares emulator frames/s "
        "(recorded frames x frame_skip, 1 for CoinRun) of the record+resize+compress+write loop with the bare emulator."
    )
    print(notes)
    record("generation", rows, notes)
    return 0
