"""Does it explore? Distinct states per 10 k env steps, AutoExplore vs the random agent, same budget.

    python -m auto_explore.coverage <auto_explore run folder> [num_steps] [game ...] \
        [--output-fpath rows.json] [--no-benchmark]

For each game (default: the run's `collection.games`), each agent plays `num_steps` steps of
consecutive episodes seeded as the generator seeds them, cut at the run's `max_episode_steps`.
A state is the emulator's RAM without its clock bytes, hashed: the bytes that change on more than
half of a random agent's steps (frame counters, timers) are left out, or every step would be a new
"state" (with them, both agents score ~10 k per 10 k steps; that raw count is reported too). A screen is
the 16x16, 3-bit thumbnail of the frame (agents/coverage.py). AutoExplore plays with the data-generation settings
(gamma 0.15, temperature 1). Rows go to benchmarks/RESULTS.md (block `auto_explore_coverage`) and
docs/auto_explore.md, and with `--output-fpath` also to that JSON file (an experiment's own copy);
`--no-benchmark` leaves the benchmark files alone (a test's or a quick look's count).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from agents.checkpoint import load_policy
from agents.coverage import STEPS_PER_UNIT, screen_key
from common.seeds import episode_seed
from data_generation.drivers import Driver, build_driver
from envs import make_env

DOCS_FPATH = Path(__file__).resolve().parents[1] / "docs" / "auto_explore.md"
CLOCK_PROBE_STEPS = 400  # random-agent steps that find a game's clock bytes
CLOCK_CHANGE_SHARE = 0.5  # a byte that changes on more than this share of steps is a clock


def clock_bytes(game: str, image_size: int, frame_skip: int, seed: int) -> np.ndarray:
    """bool [RAM bytes]: the bytes that change on most steps of a random agent (counters and timers)."""
    env, driver = make_env(game, image_size, frame_skip), build_driver("random", 5, {})
    rng = np.random.default_rng(seed)
    try:
        observation, _ = env.reset(seed=seed)
        rams = [env.ram().copy()]
        for _ in range(CLOCK_PROBE_STEPS):
            observation, _, terminated, _, _ = env.step(driver.act(observation, rng))
            rams.append(env.ram().copy())
            if terminated:
                observation, _ = env.reset(seed=seed + len(rams))
    finally:
        env.close()
    changed = np.diff(np.stack(rams).astype(np.int16), axis=0) != 0  # [steps, RAM bytes]
    return changed.mean(axis=0) > CLOCK_CHANGE_SHARE


def measure_game(driver: Driver, game: str, image_size: int, frame_skip: int, max_episode_steps: int,
                 num_steps: int, seed: int, clock: np.ndarray) -> dict:  # fmt: skip
    """One agent on one game for num_steps steps -> distinct RAM states (without the `clock` bytes), raw
    RAM contents and screens per 10 k steps."""
    env = make_env(game, image_size, frame_skip)
    states, raw, screens, steps, episode = set(), set(), set(), 0, 0
    try:
        while steps < num_steps:
            seed_ = episode_seed(seed, game, episode)
            rng = np.random.default_rng(seed_)
            observation, _ = env.reset(seed=seed_)
            driver.reset()
            episode += 1
            terminated, length = False, 0
            while not terminated and length < max_episode_steps and steps < num_steps:
                ram = env.ram()
                states.add(hashlib.blake2b(ram[~clock].tobytes(), digest_size=8).digest())
                raw.add(hashlib.blake2b(ram.tobytes(), digest_size=8).digest())
                screens.add(screen_key(observation))
                observation, _, terminated, _, _ = env.step(driver.act(observation, rng))
                steps, length = steps + 1, length + 1
    finally:
        env.close()
    units = num_steps / STEPS_PER_UNIT
    return {"episodes": episode, "distinct_states_per_10k": len(states) / units,
            "distinct_raw_ram_per_10k": len(raw) / units, "distinct_screens_per_10k": len(screens) / units,
            "clock_bytes": int(clock.sum())}  # fmt: skip


def coverage_rows(run_dpath: Path, games: list[str], num_steps: int) -> list[dict]:
    _, config = load_policy(run_dpath)
    env = config["env"]
    games = games or ([env["game"]] if isinstance(env["game"], str) else list(env["game"]))
    num_actions = 5  # RetroAct's [RIGHT, LEFT, UP, DOWN, ACTION_PRIMARY]
    agents = {
        "random": build_driver("random", num_actions, {}),
        "auto_explore (gamma 0.15, T 1.0)": build_driver(
            "auto_explore",
            num_actions,
            {"checkpoint_dpath": str(run_dpath), "gamma": 0.15, "temperature": 1.0},
        ),
    }
    max_steps = env["max_episode_steps"] or 1000
    rows = []
    for game in games:
        clock = clock_bytes(
            game, env["image_size"], env["frame_skip"], seed=1
        )  # not an episode seed measured
        rows += [
            {"game": game, "agent": name, "env_steps": num_steps,
             **measure_game(agent, game, env["image_size"], env["frame_skip"], max_steps, num_steps, 0, clock)}
            for name, agent in agents.items()
        ]  # fmt: skip
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m auto_explore.coverage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run_dpath", type=Path, help="an auto_explore run folder")
    parser.add_argument("num_steps", type=int, nargs="?", default=10_000, help="env steps per agent and game")
    parser.add_argument("games", nargs="*", help="default: the run's collection.games")
    parser.add_argument("--output-fpath", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--no-benchmark", action="store_true", help="leave benchmarks/ and docs/ alone")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    from benchmarks.recording import mirror_into_doc, record
    from common.atomic import atomic_write_json

    args = parse_args(argv)
    rows = coverage_rows(args.run_dpath, args.games, args.num_steps)
    notes = (f"{args.num_steps} env steps per agent and game, consecutive episodes seeded as the generator seeds "
             f"them; state = hash of the emulator RAM without its clock bytes (those changing on > half of "
             f"{CLOCK_PROBE_STEPS} random steps; raw RAM beside it), screen = 16x16 thumbnail at 3 bits per channel; "
             f"AutoExplore = {args.run_dpath.name} best checkpoint with the data settings.")  # fmt: skip
    if args.output_fpath is not None:
        atomic_write_json(args.output_fpath, {"rows": rows, "notes": notes})
    if not args.no_benchmark:
        mirror_into_doc(DOCS_FPATH, "auto_explore_coverage", record("auto_explore_coverage", rows, notes))
    else:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
