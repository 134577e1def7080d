"""Generator: seeds, sharding, same bytes whatever the worker count, resume after kill -9, end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from data.episode_store import EpisodeStore
from data_generation.agents import build_agent
from data_generation.generator import GenerationSpec, run_generation
from data_generation.work import build_work_list, episode_seed, split_for_workers

REPO_DPATH = Path(__file__).resolve().parents[1]
GAMES = ("Pong-Atari2600-v0", "Breakout-Atari2600-v0")


def spec_for(output_dpath: Path, n_workers: int, **changes) -> GenerationSpec:
    values = dict(
        env_names=GAMES, output_dpath=output_dpath, n_sessions=2, n_steps_max=40, n_workers=n_workers,
        image_size=32, frame_skip=4, sticky_action_prob=0.25, seed=3, variant="random", agent_options={"repeat_prob": 0.5},
    )  # fmt: skip
    return GenerationSpec(**{**values, **changes})


def store_contents(root: Path) -> dict[str, tuple[bytes, bytes]]:
    store = EpisodeStore(root)
    return {
        r.episode_id: (
            store.read_frames(r.episode_id, 0, r.num_frames).tobytes(),
            store.read_actions(r.episode_id, 0, r.num_frames - 1).tobytes(),
        )
        for r in store.episodes
    }


def episode_file_bytes(root: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(root.glob("shards/*/*.gre"))}


def test_episode_seed_depends_on_all_three_parts():
    base = episode_seed(0, "Pong-Atari2600-v0", 1)
    assert base == episode_seed(0, "Pong-Atari2600-v0", 1)
    assert (
        len(
            {
                base,
                episode_seed(1, "Pong-Atari2600-v0", 1),
                episode_seed(0, "Pong", 1),
                episode_seed(0, "Pong-Atari2600-v0", 2),
            }
        )
        == 4
    )


def test_shards_partition_the_work_list():
    full = build_work_list(list(GAMES), 5, 0, 1)
    shards = [build_work_list(list(GAMES), 5, i, 3) for i in range(3)]
    assert sorted(item for shard in shards for item in shard) == full
    assert [len(w) for w in split_for_workers(full, 4)] == [3, 3, 2, 2]
    with pytest.raises(UserError, match="shard_index"):
        build_work_list(list(GAMES), 5, 3, 3)


def test_random_agent_is_seeded_and_repeats_with_probability():
    agent = build_agent("random", 5, {"repeat_prob": 0.9})
    agent.act(None, np.random.default_rng(0))  # leaves a previous action behind; reset() must forget it
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    agent.reset()
    seq_a = [agent.act(None, rng_a) for _ in range(200)]
    agent.reset()
    seq_b = [agent.act(None, rng_b) for _ in range(200)]
    assert seq_a == seq_b
    repeats = np.mean(np.diff(seq_a) == 0)
    assert 0.85 < repeats < 0.98  # 0.9 + 0.1 / 5 expected
    with pytest.raises(UserError, match="unknown variant"):
        build_agent("agent57", 5, {})
    with pytest.raises(UserError, match="bad agent options"):
        build_agent("random", 5, {"temperature": 1.0})


@pytest.mark.slow
def test_same_bytes_with_one_or_two_workers(tmp_path):
    one = run_generation(spec_for(tmp_path / "one", n_workers=1))
    two = run_generation(spec_for(tmp_path / "two", n_workers=2))
    assert one.episodes == two.episodes == 4 and not one.failed and not two.failed
    assert store_contents(tmp_path / "one") == store_contents(tmp_path / "two")
    assert episode_file_bytes(tmp_path / "one") == episode_file_bytes(tmp_path / "two")
    again = run_generation(spec_for(tmp_path / "one", n_workers=2))  # rerun: nothing left to do
    assert again.episodes == 0 and again.already_done == 4


def generate_command(output_dpath: Path) -> list[str]:
    return [
        sys.executable, str(REPO_DPATH / "run.py"), "generate", "game=[Pong-Atari2600,Breakout-Atari2600]",
        "n_sessions=4", "n_steps_max=150", "n_workers=1", "image_size=32", "seed=5", f"output_dpath={output_dpath}",
    ]  # fmt: skip


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    killed_dpath, clean_dpath = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(generate_command(killed_dpath), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(killed_dpath.glob("shards/*/*.gre")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the generator and its workers die at once, like a crash
    process.wait()
    num_before = len(list(killed_dpath.glob("shards/*/*.gre")))
    assert 1 <= num_before < 8
    resumed = subprocess.run(generate_command(killed_dpath), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{num_before} were already done" in resumed.stdout
    clean = subprocess.run(generate_command(clean_dpath), env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert store_contents(killed_dpath) == store_contents(clean_dpath)
    assert len(store_contents(clean_dpath)) == 8


@pytest.mark.slow
def test_end_to_end_retro_and_coinrun_read_back(tmp_path):
    root = tmp_path / "mixed"
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    common = ["n_sessions=3", "n_steps_max=30", "image_size=64", f"output_dpath={root}"]
    for args in (
        ["game=[Airstriker-Genesis,Pong-Atari2600]", "n_workers=2"],
        ["config=coinrun/random", "n_workers=1"],
    ):
        result = subprocess.run([sys.executable, str(REPO_DPATH / "run.py"), "generate", *args, *common], env=env, capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "recorded 6 episodes" in result.stdout or "recorded 3 episodes" in result.stdout
    store = EpisodeStore(root)
    assert sorted({r.env_name for r in store.episodes}) == [
        "Airstriker-Genesis-v0",
        "Pong-Atari2600-v0",
        "coinrun",
    ]
    assert len(store.episodes) == 9
    for record in store.episodes:
        frames = store.read_frames(record.episode_id, 0, record.num_frames)
        actions = store.read_actions(record.episode_id, 0, record.num_frames - 1)
        assert frames.shape == (record.num_frames, 64, 64, 3) and frames.dtype == np.uint8
        assert 2 <= record.num_frames <= 31 and frames.std() > 0  # real game pixels, not a blank canvas
        allowed = {1, 2, 3, 4, 5} if record.env_name != "coinrun" else {0, 1, 2, 3, 4, 6, 7}
        assert set(actions.tolist()) <= allowed
    from data.datasets import WindowDataset

    dataset = WindowDataset(root, "train", num_frames=8, split_fractions=(1.0, 0.0, 0.0))
    sample = dataset[0]
    assert sample["frames"].shape == (8, 64, 64, 3) and sample["actions"].shape == (7,)
