"""Fixtures shared by the tests: the torch thread count and a clean Accelerate state per test, a tiny
episode store for the player tests, the agent config builder."""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

# every test starts at up to two torch threads (the suite's thresholds were measured at two and at one); a
# test whose figures depend on the reduction order pins one thread in its own fixture, which runs after this
# one. `run.py test` runs one pytest-xdist worker per core (up to 4): each worker then gets its share of the
# cores, and the commands a test starts inherit it through OMP_NUM_THREADS, since two 2-thread processes on
# two cores run several times slower each than two 1-thread ones.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
SUITE_THREADS = max(1, min(2, (os.cpu_count() or 1) // WORKERS))
if WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(SUITE_THREADS)


@pytest.fixture(autouse=True)
def suite_threads():
    torch.set_num_threads(SUITE_THREADS)


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """Accelerate keeps one process-wide state whose mixed precision cannot change once set: a trainer
    run left behind by one test would make the next test's `train.mixed_precision=bf16` fail."""
    yield
    if "accelerate.state" in sys.modules:
        sys.modules["accelerate.state"].AcceleratorState._reset_state(reset_partial_state=True)


# one lock file for every pytest process on the machine (xdist's workers, a second suite run beside)
PROCESS_GROUP_LOCK_FPATH = Path(tempfile.gettempdir()) / "genie_redux_tests_process_group.lock"


@pytest.fixture
def one_process_group_at_a_time():
    """Held by a test that starts a multi-process (gloo) run: two such runs never overlap across the suite's
    workers. One such run failed once in a full parallel suite (rank 0 aborted, 'terminate called without an
    active exception') and has passed alone, paired and under load since; two process groups bootstrapping
    side by side on two busy cores is the one difference from those runs we could name, so it is ruled out."""
    with open(PROCESS_GROUP_LOCK_FPATH, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the other run's test has finished
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


TINY_GAMES = ("BlockGame", "SquareGame")  # two games: the player's game chooser has something to choose
TINY_GAME_ACTIONS = {
    "BlockGame": ["NOOP", "RIGHT", "LEFT", "UP", "DOWN"],
    "SquareGame": ["RIGHT", "LEFT", "ACTION_PRIMARY"],
}


def write_tiny_play_store(
    root_dpath: Path, image_size: int = 16, num_sessions: int = 2, num_frames: int = 12
) -> Path:
    """Moving-squares episodes of two games, each noting its own actions as the generator does."""
    import numpy as np

    from data.actions import action_ids
    from data.episode_store import EpisodeWriter, episode_id_for
    from data.store_synthetic import moving_squares

    with EpisodeWriter(root_dpath, "tiny") as writer:
        for game_index, game in enumerate(TINY_GAMES):
            ids = np.asarray(action_ids(TINY_GAME_ACTIONS[game]), dtype=np.int64)
            for session in range(num_sessions):
                seed = 100 * game_index + session
                actions = ids[np.random.default_rng(seed).integers(len(ids), size=num_frames - 1)]
                writer.write(
                    episode_id_for(game, session),
                    moving_squares(num_frames, image_size, seed),
                    actions,
                    env_name=game,
                    session_index=session,
                    info={"seed": seed, "env_actions": TINY_GAME_ACTIONS[game]},
                )
    return root_dpath


AGENT_CONFIG_FPATH = Path(__file__).resolve().parent.parent / "agents" / "configs" / "train" / "coinrun.yaml"


def agent_config(run_dpath: Path, values: dict) -> object:
    """The CoinRun agent config with `values` ({'dotted.key': value}) set, parsed (agents/config.py)."""
    import yaml

    from agents.config import parse_config

    tree = yaml.safe_load(AGENT_CONFIG_FPATH.read_text())
    for key, value in values.items():
        *sections, name = key.split(".")
        section = tree
        for part in sections:
            section = section[part]
        section[name] = value
    tree["run_dpath"] = str(run_dpath)
    return parse_config(tree)


@pytest.fixture(scope="session")
def tiny_play_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_play_store(tmp_path_factory.mktemp("play_store"))


@pytest.fixture(scope="session")
def tiny_world_model_dpath(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny GenieRedux-G at 16 px, saved as a checkpoint (what `run.py play` loads)."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.presets import build

    torch.manual_seed(0)
    return save_checkpoint(
        build("genie_redux_guided", "tiny"), tmp_path_factory.mktemp("model") / "best_model"
    )
