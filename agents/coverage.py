"""How much of CoinRun each agent sees: distinct screens and levels per 10 k env steps, random agent vs
the trained agent with the data-generation settings, on the datasets' training levels.

A "screen" is the frame area-resized to 16x16 and quantised to 3 bits per channel, hashed: CoinRun's
camera follows the player, so distinct screens count the distinct places reached (and the levels'
looks), not pixel noise. Figures go to benchmarks/RESULTS.md (block `agent_coverage`), its JSON and
docs/agents.md.

    python -m agents.coverage outputs/agents/coinrun/run_001 [num_steps]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from agents.evaluate import DOCS_FPATH
from common.seeds import episode_seed
from data_generation.drivers import Driver, build_driver
from envs import make_env
from envs.coinrun import LEVEL_RANGES
from envs.frames import square_and_resize

STEPS_PER_UNIT = 10_000


def screen_key(frame: np.ndarray) -> bytes:
    """uint8 [S, S, 3] -> a digest of its 16x16, 3-bit-per-channel thumbnail."""
    thumbnail = square_and_resize(frame, 16) >> 5  # [16, 16, 3], values 0..7
    return hashlib.blake2b(thumbnail.tobytes(), digest_size=8).digest()


def measure(driver: Driver, num_steps: int, seed: int) -> dict:
    """Play `num_steps` steps of consecutive episodes (each on its own data_train level)."""
    env = make_env("coinrun", 64, frame_skip=1, levels=LEVEL_RANGES["data_train"])
    screens, levels, episode = set(), set(), 0
    steps, coins = 0, 0
    while steps < num_steps:
        episode_seed_ = episode_seed(seed, "coinrun", episode)
        rng = np.random.default_rng(episode_seed_)
        observation, _ = env.reset(seed=episode_seed_)
        driver.reset()
        levels.add(env.level)
        episode += 1
        terminated = False
        while not terminated and steps < num_steps:
            screens.add(screen_key(observation))
            observation, reward, terminated, _, _ = env.step(driver.act(observation, rng))
            coins += reward > 0
            steps += 1
    env.close()
    units = num_steps / STEPS_PER_UNIT
    return {
        "env_steps": num_steps,
        "distinct_screens_per_10k": len(screens) / units,
        "levels_per_10k": len(levels) / units,
        "coins_per_10k": coins / units,
    }


def main(argv: list[str]) -> int:
    from benchmarks.recording import mirror_into_doc, record

    run_dpath, num_steps = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 20_000
    policy_options = {"checkpoint_dpath": str(run_dpath), "gamma": 0.15, "temperature": 1.0}
    agents = {
        "random": build_driver("random", 7, {}),
        "trained (gamma 0.15, T 1.0)": build_driver("policy", 7, policy_options),
    }
    rows = [{"agent": name, **measure(agent, num_steps, seed=0)} for name, agent in agents.items()]
    notes = (f"CoinRun easy, the datasets' training levels (LEVEL_RANGES data_train), {num_steps} env steps per agent, "
             f"consecutive episodes seeded as the generator seeds them; screen = 16x16 thumbnail at 3 bits per "
             f"channel; trained agent = {run_dpath.name} best checkpoint with the trained_agent data settings.")  # fmt: skip
    mirror_into_doc(DOCS_FPATH, "agent_coverage", record("agent_coverage", rows, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
