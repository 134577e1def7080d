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

from agents.random_policy import RandomPolicy
from common.errors import UserError
from common.seeds import episode_seed
from data.episode_store import EpisodeStore, EpisodeWriter
from data_generation.generator import GenerationSpec, run_generation
from data_generation.recorder import Recording, frame_buffer, record_episode, record_screens
from data_generation.recording_pipeline import EpisodeWriteQueue, writer_gets_a_core
from data_generation.variants import build_policy
from data_generation.work import WorkItem, build_work_list, split_for_workers
from envs import make_env
from envs.frames import FrameResizer

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
    agent = build_policy("random", 5, {"repeat_prob": 0.9})
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
        build_policy("agent57", 5, {})
    with pytest.raises(UserError, match="bad agent options"):
        build_policy("random", 5, {"temperature": 1.0})


class ObservingRandomAgent(RandomPolicy):
    uses_observation = True  # forces the resize-as-you-play path


def test_deferred_resize_and_reused_buffers_record_the_same_episode():
    env = make_env("Pong-Atari2600", image_size=24, frame_skip=3, sticky_action_prob=0.3)
    try:
        fresh = record_episode(env, ObservingRandomAgent(5, repeat_prob=0.4), seed=9, n_steps_max=25)
        buffer = frame_buffer(26, (24, 24, 3))
        buffer[:] = 77  # whatever a previous episode left behind
        reused = record_episode(env, ObservingRandomAgent(5, repeat_prob=0.4), 9, 25, frames_out=buffer)
        screens = record_screens(
            env, RandomPolicy(5, repeat_prob=0.4), 9, 25, frame_buffer(26, env.screen_shape)
        )
        deferred = screens.resized(FrameResizer(24), frame_buffer(26, (24, 24, 3)))
        with pytest.raises(ValueError, match="looks at observations"):
            record_screens(env, ObservingRandomAgent(5), 9, 25, frame_buffer(26, env.screen_shape))
        with pytest.raises(ValueError, match="cannot hold"):
            record_episode(env, RandomPolicy(5), 9, 25, frames_out=frame_buffer(10, (24, 24, 3)))
    finally:
        env.close()
    assert fresh.frames.shape == (26, 24, 24, 3) and screens.screens.shape == (26, 210, 160, 3)
    assert len(set(fresh.actions.tolist())) > 1 and fresh.frames.std() > 0
    for other in (reused, deferred):
        np.testing.assert_array_equal(other.frames, fresh.frames)
        np.testing.assert_array_equal(other.actions, fresh.actions)
        assert other.info == fresh.info


class FlakyWriter:
    """Fails the episode named 'bad', writes the others into a real shard."""

    def __init__(self, writer: EpisodeWriter) -> None:
        self.writer = writer

    def write(self, episode_id: str, *args) -> int:
        if episode_id.startswith("bad"):
            raise OSError("disk full\nsecond line")
        return self.writer.write(episode_id, *args)


@pytest.mark.parametrize("in_background", [True, False])
def test_episode_writes_report_each_episode_and_survive_a_failure(tmp_path, in_background):
    frames = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    reports = []
    queue = type("Queue", (), {"put": staticmethod(reports.append)})
    with EpisodeWriter(tmp_path, "w") as writer:
        writes = EpisodeWriteQueue(FlakyWriter(writer), queue, in_background=in_background)
        for env_name in ("good", "bad", "fine"):
            recording = Recording(frames.copy(), np.ones(4, dtype=np.int64), {"seed": 1})
            writes.submit(WorkItem(env_name, 0), lambda recording=recording: recording, {"variant": "random"})
        writes.close()
    assert [(r.status, r.episode_id) for r in reports] == [
        ("done", "good__s000000"),
        ("failed", "bad__s000000"),
        ("done", "fine__s000000"),
    ]
    assert reports[1].reason == "OSError: disk full"  # one line for the summary
    assert (reports[0].num_frames, reports[0].raw_bytes) == (5, frames.nbytes) and reports[
        0
    ].bytes_on_disk > 0
    store = EpisodeStore(tmp_path)
    np.testing.assert_array_equal(store.read_frames("fine__s000000", 0, 5), frames)
    assert store.header("good__s000000").info == {"seed": 1, "variant": "random"}


def test_resize_moves_to_the_writer_only_with_two_cores_per_worker(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert writer_gets_a_core(1) and writer_gets_a_core(2)
    assert not writer_gets_a_core(3)


@pytest.mark.slow
def test_generator_files_equal_a_plain_recording_pipeline_loop(tmp_path):
    """Workers (deferred resize, background writes) write exactly what the simplest loop writes."""
    spec = spec_for(tmp_path / "gen", n_workers=1, env_names=GAMES[:1], n_sessions=2)
    assert run_generation(spec).episodes == 2
    env = make_env(GAMES[0], spec.image_size, spec.frame_skip, spec.sticky_action_prob)
    with EpisodeWriter(tmp_path / "plain", "shard000-w000") as writer:
        for session in range(2):
            seed = episode_seed(spec.seed, GAMES[0], session)
            recording = record_episode(
                env, ObservingRandomAgent(env.action_space.n, **spec.agent_options), seed, spec.n_steps_max
            )
            info = {**recording.info, "variant": "random", "sticky_action_prob": spec.sticky_action_prob}
            writer.write(
                f"{GAMES[0]}__s{session:06d}", recording.frames, recording.actions, GAMES[0], session, info
            )
    env.close()
    assert episode_file_bytes(tmp_path / "gen") == episode_file_bytes(tmp_path / "plain")


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
    by_env = dict(zip(dataset.env_names, dataset.env_action_ids()))  # each game's own actions, recorded
    assert set(by_env["Pong-Atari2600-v0"]) == {1, 2, 3, 4, 5}
    assert set(by_env["coinrun"]) == {0, 1, 2, 3, 4, 6, 7}
    sample = dataset[0]
    assert sample["frames"].shape == (8, 64, 64, 3) and sample["actions"].shape == (7,)
