"""Episode store: exact round trips, chunked window reads, crash safety, staleness, shards, corruption."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from data.actions import ACTION_VOCABULARY
from data.episode_store import EpisodeStore, EpisodeWriter, episode_id_for, rebuild_index
from data.store_format import CorruptEpisodeError
from data.store_index import INDEX_NAME
from data.store_synthetic import moving_squares, random_actions

REPO_DPATH = Path(__file__).resolve().parents[1]


def write_episode(
    writer: EpisodeWriter, env_name: str, session: int, num_frames: int, size: int = 16
) -> tuple:
    frames = moving_squares(num_frames, size, seed=session)
    actions = random_actions(num_frames, seed=session)
    episode_id = episode_id_for(env_name, session)
    writer.write(
        episode_id, frames, actions, env_name, session, {"score": np.float32(1.5), "session": session}
    )
    return episode_id, frames, actions


def shard_dpath(root: Path, shard: str = "a") -> Path:
    return root / "shards" / shard


@pytest.mark.parametrize("num_frames", [1, 7, 8, 9, 37])
def test_round_trip_is_bit_exact_with_metadata(tmp_path, num_frames):
    with EpisodeWriter(tmp_path, "a", chunk_frames=8) as writer:
        episode_id, frames, actions = write_episode(writer, "Pong-Atari2600", 3, num_frames)
    store = EpisodeStore(tmp_path)
    [record] = store.episodes
    assert (record.episode_id, record.env_name, record.session_index) == (
        "Pong-Atari2600__s000003",
        "Pong-Atari2600",
        3,
    )
    assert (record.num_frames, record.image_size, record.action_names) == (num_frames, 16, ACTION_VOCABULARY)
    decoded = store.read_frames(episode_id, 0, num_frames)
    assert decoded.dtype == np.uint8 and decoded.tobytes() == frames.tobytes()
    assert store.read_actions(episode_id, 0, num_frames - 1).tolist() == actions.tolist()
    assert store.read_actions(episode_id, 0, num_frames - 1).dtype == np.int64
    assert store.header(episode_id).info == {"score": 1.5, "session": 3}


def test_random_windows_equal_slices_and_decode_only_touched_chunks(tmp_path):
    with EpisodeWriter(tmp_path, "a", chunk_frames=8) as writer:
        episode_id, frames, actions = write_episode(writer, "game", 0, 101)
    store = EpisodeStore(tmp_path)
    store.read_frames(episode_id, 0, 1)  # creates the per-process decompressor
    calls = []
    real = store._decompressor

    class CountingDecompressor:
        def decompress(self, blob):
            calls.append(len(blob))
            return real.decompress(blob)

    store._decompressor = CountingDecompressor()
    rng = np.random.default_rng(0)
    for _ in range(50):
        start = int(rng.integers(0, 100))
        stop = int(rng.integers(start + 1, 102))
        calls.clear()
        assert np.array_equal(store.read_frames(episode_id, start, stop), frames[start:stop])
        # Frame chunks touched by [start, stop), plus nothing else.
        assert len(calls) == (stop - 1) // 8 - start // 8 + 1
        if stop <= 100:
            assert np.array_equal(store.read_actions(episode_id, start, stop), actions[start:stop])
    with pytest.raises(IndexError):
        store.read_frames(episode_id, 90, 102)


def test_bad_arrays_are_rejected_before_anything_is_written(tmp_path):
    writer = EpisodeWriter(tmp_path, "a")
    frames = moving_squares(4, 16, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        writer.write("g__s000000", frames.astype(np.float32), np.zeros(3, int), "g", 0, {})
    with pytest.raises(ValueError, match=r"\[T-1\]"):
        writer.write("g__s000000", frames, np.zeros(4, int), "g", 0, {})
    with pytest.raises(ValueError, match="vocabulary ids"):
        writer.write("g__s000000", frames, np.array([0, 1, 99]), "g", 0, {})
    with pytest.raises(ValueError, match="JSON"):
        writer.write("g__s000000", frames, np.zeros(3, int), "g", 0, {"bad": object()})
    assert not writer.has_episode("g__s000000")
    assert list(shard_dpath(tmp_path).glob("*.gre")) == []


def test_failed_write_leaves_no_partial_file_and_says_why(tmp_path, monkeypatch):
    writer = EpisodeWriter(tmp_path, "a")

    def disk_full(self, data):
        with open(self, "wb") as handle:
            handle.write(data[:100])  # a partial temp file, as a full disk would leave
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(UserError, match="No space left on device; free disk space"):
        write_episode(writer, "g", 0, 10)
    assert [p.name for p in shard_dpath(tmp_path).iterdir() if p.name != INDEX_NAME] == [".writer.lock"]


def test_unwritable_root_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError, match="choose a writable root_dpath"):
        EpisodeWriter(tmp_path / "file", "a")


def test_temp_file_from_a_crash_is_invisible_and_cleaned_by_the_next_writer(tmp_path):
    with EpisodeWriter(tmp_path, "a") as writer:
        write_episode(writer, "g", 0, 10)
    leftover = shard_dpath(tmp_path) / ".g__s000001.gre.abc123.tmp"
    leftover.write_bytes(b"GREPISO\x01 half an episode")
    assert [r.episode_id for r in EpisodeStore(tmp_path).episodes] == ["g__s000000"]
    with EpisodeWriter(tmp_path, "a") as writer:
        assert writer.has_episode("g__s000000") and not writer.has_episode("g__s000001")
    assert not leftover.exists()


@pytest.mark.slow
def test_killed_writer_loses_only_episodes_in_flight(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from data.episode_store import EpisodeWriter\n"
        "w = EpisodeWriter(sys.argv[1], 'a')\n"
        "frames = np.random.default_rng(0).integers(0, 256, (64, 64, 64, 3), dtype=np.uint8)\n"
        "i = 0\n"
        "while True:\n"
        "    w.write(f'g__s{i:06d}', frames, np.zeros(63, int), 'g', i, {}); i += 1\n"
        "    print(i, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_DPATH), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "1"  # at least one episode is complete
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EpisodeStore(tmp_path)
    assert len(store.episodes) >= 1
    for record in store.episodes:  # every visible episode is complete and readable
        assert store.read_frames(record.episode_id, 0, 64).shape == (64, 64, 64, 3)
    with EpisodeWriter(tmp_path, "a"):  # the lock died with the process; temp files are removed
        assert not list(shard_dpath(tmp_path).glob(".*.tmp"))


def test_staleness_is_detected_and_repaired(tmp_path):
    with EpisodeWriter(tmp_path, "a") as writer:
        for session in range(3):
            write_episode(writer, "g", session, 10)
    with EpisodeWriter(tmp_path, "b") as other:
        _, frames_b, _ = write_episode(other, "h", 0, 12)
    shard = shard_dpath(tmp_path)
    # Removed after indexing; added without an index line (a crash between rename and append);
    # rewritten with another length.
    (shard / "g__s000000.gre").unlink()
    (shard / "h__s000000.gre").write_bytes((shard_dpath(tmp_path, "b") / "h__s000000.gre").read_bytes())
    with EpisodeWriter(tmp_path, "c") as scratch:
        write_episode(scratch, "g", 1, 20)
    os.replace(shard_dpath(tmp_path, "c") / "g__s000001.gre", shard / "g__s000001.gre")
    (shard_dpath(tmp_path, "c") / INDEX_NAME).write_text("")
    with pytest.warns(UserWarning) as caught:
        store = EpisodeStore(tmp_path)
    assert [str(w.message)[:21] for w in caught] == ["stale episode index: ", "episode h__s000000 is"]
    report = store.reports[0]
    assert (report.missing, report.unindexed, report.changed) == (
        ["g__s000000"],
        ["h__s000000"],
        ["g__s000001"],
    )
    assert store.record("g__s000001").num_frames == 20
    assert [r.episode_id for r in store.episodes] == ["g__s000001", "g__s000002", "h__s000000"]
    assert np.array_equal(
        store.read_frames("h__s000000", 0, 12), frames_b
    )  # duplicate in 'b': first shard wins
    rebuild_index(tmp_path)
    with pytest.warns(UserWarning, match="in shards 'a' and 'b'; using 'a'"):
        assert all(r.is_clean for r in EpisodeStore(tmp_path).reports)


def test_torn_index_line_is_skipped_then_repaired(tmp_path):
    with EpisodeWriter(tmp_path, "a") as writer:
        write_episode(writer, "g", 0, 10)
        write_episode(writer, "g", 1, 10)
    index = shard_dpath(tmp_path) / INDEX_NAME
    index.write_text(index.read_text()[:-40])  # crash in the middle of appending the last line
    with pytest.warns(UserWarning, match="1 unindexed, 1 unreadable index lines"):
        assert len(EpisodeStore(tmp_path).episodes) == 2
    EpisodeWriter(tmp_path, "a").close()
    assert EpisodeStore(tmp_path).reports[0].is_clean


def test_two_writers_with_different_shards_share_one_root(tmp_path):
    writer_a, writer_b = EpisodeWriter(tmp_path, "machine0-w0"), EpisodeWriter(tmp_path, "machine1-w0")
    for session in range(4):  # interleaved, as concurrent processes would
        write_episode(writer_a if session % 2 else writer_b, "g", session, 9)
    with pytest.raises(UserError, match="being written by another process"):
        EpisodeWriter(tmp_path, "machine0-w0")
    writer_a.close(), writer_b.close()
    store = EpisodeStore(tmp_path)
    assert [(r.session_index, r.shard_name) for r in store.episodes] == [
        (0, "machine1-w0"),
        (1, "machine0-w0"),
        (2, "machine1-w0"),
        (3, "machine0-w0"),
    ]
    with pytest.raises(UserError, match="shard_name"):
        EpisodeWriter(tmp_path, "../escape")


def test_corrupt_episodes_raise_a_named_error_or_are_skipped_with_a_warning(tmp_path):
    with EpisodeWriter(tmp_path, "a", chunk_frames=4) as writer:
        for session in range(3):
            write_episode(writer, "g", session, 16)
    shard = shard_dpath(tmp_path)
    flipped = bytearray((shard / "g__s000000.gre").read_bytes())
    flipped[-20] ^= 0xFF  # inside the last compressed blob (actions): zstd's checksum catches it
    (shard / "g__s000000.gre").write_bytes(bytes(flipped))
    header_hit = bytearray((shard / "g__s000001.gre").read_bytes())
    header_hit[30] ^= 0x01
    (shard / "g__s000001.gre").write_bytes(bytes(header_hit))
    with open(shard / "g__s000002.gre", "r+b") as handle:
        handle.truncate(200)
    with pytest.warns(UserWarning, match="corrupt"):
        store = EpisodeStore(tmp_path)
    assert store.corrupt_episode_ids == {"g__s000002"}  # the size change made the scan re-read it
    with pytest.raises(CorruptEpisodeError, match="damaged"):
        store.read_actions("g__s000000", 0, 15)
    assert np.array_equal(store.read_frames("g__s000000", 0, 4), moving_squares(16, 16, seed=0)[:4])
    with pytest.raises(CorruptEpisodeError, match="header checksum"):
        store.read_frames("g__s000001", 0, 4)
