"""How much of a game an agent sees: distinct screens and states per 10 k env steps, the trained agent
(with the data-generation settings) beside the random agent, same games, budget and episode seeds.

    python -m agents.coverage <agent run folder> [num_steps] [game ...] [--output-fpath rows.json]

One path for every agent (the CoinRun task agent, AutoExplore): each agent plays `num_steps` steps of
consecutive episodes seeded as the generator seeds them (agents/episodes.py), cut at the run's
`collection.max_episode_steps`. Counted per 10 k steps:
- screens: the frame area-resized to 16x16 and quantised to 3 bits per channel, hashed (CoinRun's camera
  follows the player, so distinct screens count the places reached, not pixel noise);
- the game's own state keys (`GameEnv.coverage_keys`): CoinRun's level; a stable-retro game's RAM,
  without its clock bytes (the bytes that change on more than half of a random agent's steps: frame
  counters and timers would make every step a new state; the raw count is reported beside it);
- steps with a positive game reward (CoinRun: the coin).
CoinRun plays the datasets' training levels (LEVEL_RANGES data_train). The rows are printed and, with
`--output-fpath`, written to that JSON file; `python run.py bench agent_coverage` records them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import load_policy
from agents.config import AgentTrainConfig, parse_config, upgrade_saved_config
from agents.episodes import play_episodes, seeds_like_generation
from agents.policy import Policy
from agents.random_policy import RandomPolicy
from agents.trained_policy import TrainedPolicy
from common.atomic import atomic_write_json
from envs import GameEnv, make_env
from envs.coinrun import LEVEL_RANGES
from envs.frames import square_and_resize
from envs.names import COINRUN

STEPS_PER_UNIT = 10_000
CLOCK_PROBE_STEPS = 400  # random-agent steps that find a game's clock bytes
CLOCK_CHANGE_SHARE = 0.5  # a byte that changes on more than this share of steps is a clock
DATA_RANDOM_ACTION_PROB, DATA_TEMPERATURE = 0.15, 1.0  # the data-generation settings (agent.gamma 0.15)


def screen_key(frame: np.ndarray) -> bytes:
    """uint8 [S, S, 3] -> a digest of its 16x16, 3-bit-per-channel thumbnail."""
    thumbnail = square_and_resize(frame, 16) >> 5  # [16, 16, 3], values 0..7
    return hashlib.blake2b(thumbnail.tobytes(), digest_size=8).digest()


def digest(payload: Any) -> bytes:
    data = payload if isinstance(payload, bytes) else repr(payload).encode()
    return hashlib.blake2b(data, digest_size=8).digest()


def coverage_env(game: str, image_size: int, frame_skip: int) -> GameEnv:
    levels = LEVEL_RANGES["data_train"] if game.lower() == COINRUN else None
    return make_env(game, image_size, frame_skip, levels=levels)


def clock_bytes(env: GameEnv, num_actions: int, seed: int) -> np.ndarray:
    """bool [RAM bytes]: the bytes that change on most steps of a random agent (counters and timers)."""
    seeds = seeds_like_generation(seed, "clock probe")
    rams = [
        np.frombuffer(env.coverage_keys()["ram"], dtype=np.uint8)
        for _ in play_episodes(env, RandomPolicy(num_actions), seeds, num_steps=CLOCK_PROBE_STEPS)
    ]
    changed = np.diff(np.stack(rams).astype(np.int16), axis=0) != 0  # [steps - 1, RAM bytes]
    return changed.mean(axis=0) > CLOCK_CHANGE_SHARE


# a coverage key's column: the RAM is "states" (without the clock bytes), CoinRun's level "levels"
COLUMNS = {"ram": "distinct_states_per_10k", "raw_ram": "distinct_raw_ram_per_10k", "level": "levels_per_10k"}


def measure(
    env: GameEnv,
    policy: Policy,
    game: str,
    num_steps: int,
    seed: int,
    max_episode_steps: int | None = None,
    clock: np.ndarray | None = None,
) -> dict[str, Any]:
    """One agent on one game for `num_steps` steps -> distinct screens, states and rewarded steps per 10 k."""
    screens: set[bytes] = set()
    keys: dict[str, set[bytes]] = defaultdict(set)
    rewarded, episodes = 0, 0
    seeds = seeds_like_generation(seed, game)
    for transition in play_episodes(env, policy, seeds, max_episode_steps, num_steps):
        screens.add(screen_key(transition.observation))
        for name, value in env.coverage_keys().items():
            if name == "ram" and clock is not None:
                keys["raw_ram"].add(digest(value))
                value = np.frombuffer(value, dtype=np.uint8)[~clock].tobytes()
            keys[name].add(digest(value))
        rewarded += transition.reward > 0
        episodes = transition.episode + 1
    units = num_steps / STEPS_PER_UNIT
    row = {"env_steps": num_steps, "episodes": episodes, "distinct_screens_per_10k": len(screens) / units}
    row |= {
        COLUMNS.get(name, f"distinct_{name}_per_10k"): len(values) / units for name, values in keys.items()
    }
    row["rewarded_steps_per_10k"] = rewarded / units
    if clock is not None:
        row["clock_bytes"] = int(clock.sum())
    return row


def run_config(run_dpath: Path) -> AgentTrainConfig:
    _, values = load_policy(run_dpath)
    return parse_config(upgrade_saved_config(values))


def coverage_rows(run_dpath: Path, games: list[str], num_steps: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows per (game, agent): the random agent, then the run's best policy with the data settings."""
    config = run_config(run_dpath)
    collection = config.collection
    max_steps = collection.max_episode_steps or 1000
    rows = []
    for game in games or collection.games:
        env = coverage_env(game, collection.image_size, collection.frame_skip)
        try:
            num_actions = int(env.action_space.n)
            trained = TrainedPolicy.from_options(
                num_actions, str(run_dpath), DATA_RANDOM_ACTION_PROB, DATA_TEMPERATURE
            )
            env.reset(seed=seed)  # the game's coverage keys exist once an episode runs
            clock = clock_bytes(env, num_actions, seed=1) if "ram" in env.coverage_keys() else None
            label = "auto_explore" if config.reward.type == "world_model" else "trained"
            agents = {"random": RandomPolicy(num_actions),
                      f"{label} (gamma {DATA_RANDOM_ACTION_PROB}, T {DATA_TEMPERATURE})": trained}  # fmt: skip
            rows += [{"game": game, "agent": name, **measure(env, policy, game, num_steps, seed, max_steps, clock)}
                     for name, policy in agents.items()]  # fmt: skip
        finally:
            env.close()
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.coverage", description=__doc__.split("\n")[0])
    parser.add_argument(
        "run_dpath", type=Path, help="an agent run folder (agent train or auto_explore train)"
    )
    parser.add_argument("num_steps", type=int, nargs="?", default=10_000, help="env steps per agent and game")
    parser.add_argument("games", nargs="*", help="default: the run's collection.games")
    parser.add_argument("--output-fpath", type=Path, help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    rows = coverage_rows(args.run_dpath, args.games, args.num_steps)
    if args.output_fpath is not None:
        atomic_write_json(args.output_fpath, {"rows": rows, "run": str(args.run_dpath)})
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
