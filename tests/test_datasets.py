"""Window datasets: window arithmetic, session splits, balanced sampling, workers, bad episodes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from common.errors import UserError
from data.datasets import WindowDataset, balanced_sampler, count_windows, make_dataloader
from data.store_splits import split_counts
from data.store_synthetic import moving_squares, random_actions, write_synthetic_store
from data.transforms import frames_to_model, frames_to_uint8

ENVS = ["Airstriker-Genesis-v0", "Pong-Atari2600", "coinrun"]
ALL_SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def store_dpath(tmp_path_factory):
    """3 envs × 10 sessions of 20-30 frames, 8 px (tiny, but enough for every split)."""
    root = tmp_path_factory.mktemp("store")
    write_synthetic_store(root, ENVS, num_sessions=10, num_frames=[20 + s for s in range(10)], image_size=8)
    return root


def test_windows_follow_the_count_formula_and_equal_episode_slices(store_dpath):
    dataset = WindowDataset(store_dpath, "train", num_frames=6, stride=4, split_fractions=(1.0, 0.0, 0.0))
    assert len(dataset) == sum(count_windows(20 + s, 6, 4) for s in range(10)) * len(ENVS)
    assert count_windows(20, 6, 4) == 4 and count_windows(5, 6, 1) == 0 and count_windows(6, 6, 3) == 1
    starts = [dataset.window(i)[1] for i in range(count_windows(20, 6, 4))]
    assert starts == [0, 4, 8, 12]  # the first episode: Airstriker session 0, 20 frames
    for index in [0, 3, 17, len(dataset) - 1]:
        sample = dataset[index]
        position, start = dataset.window(index)
        record = dataset.episodes[position]
        seed = ENVS.index(record.env_name) * 100_003 + record.session_index
        assert sample["frames"].dtype == torch.uint8 and sample["frames"].shape == (6, 8, 8, 3)
        assert np.array_equal(
            sample["frames"].numpy(), moving_squares(record.num_frames, 8, seed)[start : start + 6]
        )
        assert (
            sample["actions"].tolist() == random_actions(record.num_frames, seed)[start : start + 5].tolist()
        )
        assert (
            sample["env_id"].dtype == torch.int64
            and dataset.env_names[int(sample["env_id"])] == record.env_name
        )


def test_splits_partition_sessions_deterministically(store_dpath):
    sessions = {}
    for split in ALL_SPLITS:
        dataset = WindowDataset(
            store_dpath, split, num_frames=4, split_seed=7, split_fractions=(0.6, 0.2, 0.2)
        )
        sessions[split] = {(r.env_name, r.session_index) for r in dataset.episodes}
        assert {r.env_name for r in dataset.episodes} == set(ENVS)  # every env in every split
    assert [len(sessions[s]) for s in ALL_SPLITS] == [18, 6, 6]
    assert not (
        sessions["train"] & sessions["val"]
        or sessions["train"] & sessions["test"]
        or sessions["val"] & sessions["test"]
    )
    whole = WindowDataset(store_dpath, "all", num_frames=4, split_seed=7, split_fractions=(0.6, 0.2, 0.2))
    assert {(r.env_name, r.session_index) for r in whole.episodes} == set().union(*sessions.values())
    again = WindowDataset(store_dpath, "val", num_frames=4, split_seed=7, split_fractions=(0.6, 0.2, 0.2))
    assert {(r.env_name, r.session_index) for r in again.episodes} == sessions["val"]
    other_seed = WindowDataset(
        store_dpath, "val", num_frames=4, split_seed=8, split_fractions=(0.6, 0.2, 0.2)
    )
    assert {(r.env_name, r.session_index) for r in other_seed.episodes} != sessions["val"]


def test_small_datasets_still_fill_every_split_and_empty_ones_explain_why(tmp_path):
    assert split_counts(3, (0.9, 0.05, 0.05)) == (1, 1, 1)
    assert split_counts(2, (0.9, 0.05, 0.05)) == (1, 1, 0)
    assert split_counts(100, (0.9, 0.05, 0.05)) == (90, 5, 5)
    write_synthetic_store(tmp_path, ["g"], num_sessions=2, num_frames=10, image_size=8)
    assert len(WindowDataset(tmp_path, "val", num_frames=4)) == 7
    with pytest.raises(UserError, match="split 'test' .* has no sessions .* generate more sessions"):
        WindowDataset(tmp_path, "test", num_frames=4)
    with pytest.raises(UserError, match="no window of 11 frames .* lower num_frames"):
        WindowDataset(tmp_path, "train", num_frames=11)
    with pytest.raises(UserError, match="did you mean g"):
        WindowDataset(tmp_path, "train", num_frames=4, env_names=["gg"])
    with pytest.raises(UserError, match="split_fractions"):
        WindowDataset(tmp_path, "train", num_frames=4, split_fractions=(0.5, 0.2, 0.2))


def test_balanced_sampler_gives_each_env_equal_probability_and_depends_on_seed_and_epoch(tmp_path):
    # Env sizes 1 : 4 : 16 sessions; uniform sampling over windows would give 1/21 to the first env.
    for env_name, num_sessions in [("a", 1), ("b", 4), ("c", 16)]:
        write_synthetic_store(
            tmp_path, [env_name], num_sessions, num_frames=12, image_size=8, shard_name=env_name
        )
    dataset = WindowDataset(tmp_path, "train", num_frames=4, split_fractions=(1.0, 0.0, 0.0))
    sampler = balanced_sampler(dataset, num_samples=6000, seed=3)
    indices = list(sampler)
    env_counts = Counter(int(dataset._env_ids[dataset.window(i)[0]]) for i in indices)
    assert all(abs(env_counts[e] / 6000 - 1 / 3) < 0.03 for e in range(3))
    windows_of_c = Counter(i for i in indices if env_counts and dataset.window(i)[0] >= 5)
    assert len(windows_of_c) > 0.9 * 16 * 9  # covers (nearly) all of the big env's 144 windows
    assert indices == list(balanced_sampler(dataset, num_samples=6000, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != indices
    assert list(sampler) == list(balanced_sampler(dataset, num_samples=6000, seed=3, epoch=1))


@pytest.mark.slow
def test_dataloader_with_two_workers_returns_the_right_batches(store_dpath):
    dataset = WindowDataset(store_dpath, "train", num_frames=5, stride=3)
    sampler = balanced_sampler(dataset, num_samples=24, seed=0)
    loader = make_dataloader(dataset, batch_size=6, sampler=sampler, num_workers=2)
    batches = list(loader)
    assert len(batches) == 4
    for batch, indices in zip(batches, np.array_split(list(sampler), 4)):
        assert batch["frames"].shape == (6, 5, 8, 8, 3) and batch["frames"].dtype == torch.uint8
        assert batch["actions"].shape == (6, 4) and batch["env_id"].shape == (6,)
        expected = [dataset[int(i)] for i in indices]
        assert torch.equal(batch["frames"], torch.stack([e["frames"] for e in expected]))
        assert torch.equal(batch["actions"], torch.stack([e["actions"] for e in expected]))
        assert batch["env_id"].tolist() == [int(e["env_id"]) for e in expected]


def test_corrupt_or_missing_episode_is_skipped_with_a_warning(tmp_path):
    write_synthetic_store(tmp_path, ["g"], num_sessions=3, num_frames=10, image_size=8)
    dataset = WindowDataset(tmp_path, "train", num_frames=4, split_fractions=(1.0, 0.0, 0.0))
    shard = tmp_path / "shards" / "synthetic"
    damaged = bytearray((shard / "g__s000000.gre").read_bytes())
    damaged[-30] ^= 0xFF
    (shard / "g__s000000.gre").write_bytes(bytes(damaged))
    (shard / "g__s000001.gre").unlink()  # deleted after the dataset was built
    with pytest.warns(UserWarning) as caught:
        sample = dataset[2]  # a window of session 0, served from session 2 instead
    assert [str(w.message).split(":")[0] for w in caught] == [
        "skipping unreadable episode g__s000000",
        "skipping unreadable episode g__s000001",
    ]
    assert np.array_equal(sample["frames"].numpy(), moving_squares(10, 8, seed=2)[2:6])
    assert dataset.num_skipped_reads == 2
    assert np.array_equal(dataset[8]["frames"].numpy(), moving_squares(10, 8, seed=2)[1:5])  # no new warning
    with open(shard / "g__s000002.gre", "r+b") as handle:  # damaged in place while open in this process
        size = handle.seek(0, 2)
        handle.seek(size - 100)
        handle.write(bytes(100))  # zeroes the last frame chunk and the actions
    with (
        pytest.warns(UserWarning),
        pytest.raises(RuntimeError, match="every 'train' episode of g is unreadable"),
    ):
        dataset[15]


def test_frames_to_model_and_back():
    frames = torch.randint(0, 256, (2, 3, 8, 8, 3), dtype=torch.uint8)
    model_frames = frames_to_model(frames)
    assert model_frames.shape == (2, 3, 3, 8, 8) and model_frames.dtype == torch.float32
    assert model_frames.min() >= 0 and model_frames.max() <= 1
    assert torch.equal(model_frames[1, 2, 0], frames[1, 2, :, :, 0].float() / 255)
    assert torch.equal(frames_to_uint8(model_frames), frames)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_model(model_frames)
