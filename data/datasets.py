"""Training datasets over the episode store: fixed-length windows, session splits, env balancing.

    dataset = WindowDataset("datasets/coinrun/random", "train", num_frames=16)
    sampler = balanced_sampler(dataset, num_samples=len(dataset), seed=0, epoch=0)
    loader = make_dataloader(dataset, batch_size=12, sampler=sampler, num_workers=4, seed=0)
    batch["frames"]  # uint8 [B, 16, H, W, 3] -> data.transforms.frames_to_model on the device

Reproducible data order: a sampler's order is a function of (seed, epoch) only. A resumed run makes the
sampler for the epoch it stopped in and skips the samples it already consumed (training/data_stream.py
does exactly this), so it sees the same samples as an uninterrupted run, whatever the worker count.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from common.errors import UserError
from common.seeds import SEED_STRIDE
from data.actions import ACTION_VOCABULARY, FIRST_VOCABULARY_SIZE
from data.episode_store import CorruptEpisodeError, EpisodeRecord, EpisodeStore
from data.store_splits import DEFAULT_SPLIT_FRACTIONS, SPLITS, check_fractions, sessions_in_split


def count_windows(num_frames_in_episode: int, num_frames: int, stride: int) -> int:
    """Windows of `num_frames` whose starts are `stride` apart: starts 0, stride, ... <= T - num_frames."""
    return max(0, (num_frames_in_episode - num_frames) // stride + 1)


class WindowDataset(Dataset):
    """Every window of `num_frames` consecutive frames (starts `stride` apart) in one split's episodes."""

    def __init__(
        self,
        root_dpath: str | Path,
        split: str,
        num_frames: int,
        stride: int = 1,
        env_names: list[str] | None = None,
        split_seed: int = 0,
        split_fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS,
        store_check: str = "stat",
    ) -> None:
        if split not in SPLITS:
            raise UserError(f"split '{split}' is not one of {', '.join(SPLITS)}")
        if num_frames < 1 or stride < 1:
            raise UserError(f"num_frames ({num_frames}) and stride ({stride}) must be >= 1")
        self.split, self.num_frames, self.stride = split, int(num_frames), int(stride)
        self.store = EpisodeStore(root_dpath, check=store_check)
        self.env_names = _select_envs(self.store, env_names)
        env_ids = {name: i for i, name in enumerate(self.env_names)}
        fractions = check_fractions(split_fractions)
        episodes = _episodes_in_split(self.store.episodes, self.env_names, split, fractions, split_seed)
        # Group by env so each env's windows form one contiguous index range (the sampler relies on it).
        episodes.sort(key=lambda r: (env_ids[r.env_name], r.session_index, r.episode_id))
        counts = [count_windows(r.num_frames, self.num_frames, self.stride) for r in episodes]
        self.episodes = [r for r, n in zip(episodes, counts) if n > 0]
        if not self.episodes:
            raise UserError(
                _empty_split_message(self.store, episodes, split, self.num_frames, split_fractions)
            )
        self.image_size = _single_image_size(self.episodes)
        self._env_ids = np.array([env_ids[r.env_name] for r in self.episodes], dtype=np.int64)
        self._env_episodes = [np.flatnonzero(self._env_ids == e) for e in range(len(self.env_names))]
        self._window_ends = np.cumsum([n for n in counts if n > 0]).astype(np.int64)  # [num_episodes]
        self._action_maps = _action_maps(self.episodes)
        self._unreadable: set[int] = set()  # per process: episodes that failed to read
        self.num_skipped_reads = 0

    @property
    def action_names(self) -> tuple[str, ...]:
        """The vocabulary the `actions` ids index (episodes with another vocabulary are remapped)."""
        return ACTION_VOCABULARY

    def env_episodes(self, env_id: int) -> list[EpisodeRecord]:
        """The episodes of one game (by env id) in this split."""
        return [self.episodes[int(position)] for position in self._env_episodes[env_id]]

    def env_action_ids(self) -> list[list[int]]:
        """Per env id, the vocabulary ids of that game's own actions (from an episode's `env_actions`).

        Evaluation draws "random actions" from these: an id the game never produces (e.g. NOOP in a
        retro game) was never trained and would measure nothing but its untrained embedding. Stores
        written before `env_actions` was recorded act within the vocabulary's first FIRST_VOCABULARY_SIZE
        names, as in `game_action_names`.
        """
        first_names = ACTION_VOCABULARY[:FIRST_VOCABULARY_SIZE]
        action_ids = []
        for positions in self._env_episodes:
            names = first_names
            if positions.size > 0:
                info = self.store.header(self.episodes[int(positions[0])].episode_id).info
                names = tuple(info.get("env_actions") or first_names)
            action_ids.append([ACTION_VOCABULARY.index(name) for name in names])
        return action_ids

    def __len__(self) -> int:
        return int(self._window_ends[-1])

    def window(self, index: int) -> tuple[int, int]:
        """(episode position in `self.episodes`, first frame) of window `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        episode = int(np.searchsorted(self._window_ends, index, side="right"))
        first_window = int(self._window_ends[episode - 1]) if episode else 0
        return episode, (index - first_window) * self.stride

    def env_window_ranges(self) -> list[tuple[int, int]]:
        """[start, stop) of each env's windows in index space, by env id (empty range if none)."""
        ranges = []
        for positions in self._env_episodes:
            if positions.size == 0:
                ranges.append((0, 0))
                continue
            lo, hi = positions[0], positions[-1]
            ranges.append((int(self._window_ends[lo - 1]) if lo else 0, int(self._window_ends[hi])))
        return ranges

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode, start = self.window(index)
        skipped = 0
        for candidate in self._same_env_candidates(episode):
            record = self.episodes[candidate]
            # A fallback episode may be shorter: keep the window inside it.
            first = min(start, record.num_frames - self.num_frames)
            try:
                # "skipped_reads": the damaged episodes met making this item, so a trainer reading through
                # DataLoader workers (each with its own copy of this dataset) can still count them
                return {**self._read_window(candidate, first), "skipped_reads": torch.tensor(skipped)}
            except (CorruptEpisodeError, OSError) as error:
                self._unreadable.add(candidate)
                self.num_skipped_reads += 1
                skipped += 1
                warnings.warn(f"skipping unreadable episode {record.episode_id}: {error}", stacklevel=2)
        env_name = self.env_names[self._env_ids[episode]]
        raise RuntimeError(
            f"every '{self.split}' episode of {env_name} is unreadable; see the warnings above"
        )

    def _same_env_candidates(self, episode: int) -> Iterator[int]:
        """The episode itself, then the env's other episodes in order, skipping known-bad ones."""
        same_env = self._env_episodes[self._env_ids[episode]]
        rotated = np.roll(same_env, -int(np.searchsorted(same_env, episode)))
        return (int(e) for e in rotated if int(e) not in self._unreadable)

    def read_episode(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        """A whole episode (by position in `self.episodes`): frames uint8 [T, H, W, 3] and the vocabulary
        ids of the T-1 actions between them."""
        record = self.episodes[episode]
        frames = self.store.read_frames(record.episode_id, 0, record.num_frames)
        actions = self.store.read_actions(record.episode_id, 0, record.num_frames - 1)
        return frames, self._action_maps[episode][actions] if episode in self._action_maps else actions

    def _read_window(self, episode: int, start: int) -> dict[str, torch.Tensor]:
        record = self.episodes[episode]
        stop = start + self.num_frames
        frames = self.store.read_frames(record.episode_id, start, stop)  # uint8 [T, H, W, 3]
        actions = self.store.read_actions(record.episode_id, start, stop - 1)  # int64 [T-1]
        if episode in self._action_maps:
            actions = self._action_maps[episode][actions]
        return {
            "frames": torch.from_numpy(frames),
            "actions": torch.from_numpy(actions),
            "env_id": torch.tensor(self._env_ids[episode], dtype=torch.int64),
        }


def game_action_names(store: EpisodeStore, env_names: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Per game of the store (or of `env_names`), its own actions as vocabulary names: the `env_actions` its
    first episode recorded. Episodes recorded without them (stores from before they were recorded, synthetic
    test stores) act within the vocabulary's first FIRST_VOCABULARY_SIZE names."""
    first_episodes: dict[str, EpisodeRecord] = {}
    for record in store.episodes:
        if env_names is None or record.env_name in env_names:
            first_episodes.setdefault(record.env_name, record)
    names = {}
    for env_name, record in sorted(first_episodes.items()):
        recorded = store.header(record.episode_id).info.get("env_actions")
        names[env_name] = tuple(recorded or ACTION_VOCABULARY[:FIRST_VOCABULARY_SIZE])
    return names


def _select_envs(store: EpisodeStore, env_names: list[str] | None) -> list[str]:
    available = sorted({r.env_name for r in store.episodes})
    if env_names is None:
        return available
    for name in env_names:
        if name not in available:
            close = difflib.get_close_matches(name, available, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"the store has {len(available)} envs"
            raise UserError(f"env '{name}' has no episodes in {store.root_dpath}; {hint}")
    return list(dict.fromkeys(env_names))


def _episodes_in_split(
    episodes: list[EpisodeRecord],
    env_names: list[str],
    split: str,
    fractions: tuple[float, float, float],
    split_seed: int,
) -> list[EpisodeRecord]:
    chosen = []
    for env_name in env_names:
        env_episodes = [r for r in episodes if r.env_name == env_name]
        keep = sessions_in_split(
            [r.session_index for r in env_episodes], env_name, split, fractions, split_seed
        )
        chosen.extend(r for r in env_episodes if r.session_index in keep)
    return chosen


def _empty_split_message(
    store: EpisodeStore, in_split: list[EpisodeRecord], split: str, num_frames: int, fractions: tuple
) -> str:
    where = f"split '{split}' of {store.root_dpath}"
    if not in_split:
        num_sessions = len({(r.env_name, r.session_index) for r in store.episodes})
        return f"{where} has no sessions ({num_sessions} in the store, split_fractions {list(fractions)}); generate more sessions or change split_fractions"
    longest = max(r.num_frames for r in in_split)
    return f"{where} has no window of {num_frames} frames (longest episode: {longest} frames); lower num_frames or generate longer episodes"


def _single_image_size(episodes: list[EpisodeRecord]) -> int:
    sizes = sorted({r.image_size for r in episodes})
    if len(sizes) > 1:
        raise UserError(
            f"episodes have image sizes {sizes} px, which cannot share a batch; pick envs of one size with env_names"
        )
    return sizes[0]


def _action_maps(episodes: list[EpisodeRecord]) -> dict[int, np.ndarray]:
    """Lookup tables for episodes stored under another action vocabulary (matched by name)."""
    maps = {}
    for position, record in enumerate(episodes):
        if record.action_names == ACTION_VOCABULARY:
            continue
        unknown = sorted(set(record.action_names) - set(ACTION_VOCABULARY))
        if unknown:
            raise UserError(
                f"episode {record.episode_id} uses actions {unknown} missing from data/actions.py's vocabulary; regenerate it"
            )
        maps[position] = np.array([ACTION_VOCABULARY.index(n) for n in record.action_names], dtype=np.int64)
    return maps


class BalancedSampler(Sampler[int]):
    """`num_samples` window indices; each draw picks an env uniformly, then a window of that env uniformly.

    The order is a function of (seed, epoch) only: call `set_epoch` (or pass `epoch`) to get the next one.
    """

    def __init__(
        self, env_window_ranges: list[tuple[int, int]], num_samples: int, seed: int, epoch: int = 0
    ) -> None:
        self.ranges = [
            (lo, hi) for lo, hi in env_window_ranges if hi > lo
        ]  # envs with no window in this split
        if not self.ranges or num_samples < 1:
            raise ValueError(f"balanced sampler needs windows and num_samples >= 1 (got {num_samples})")
        self.num_samples, self.seed, self.epoch = int(num_samples), int(seed), int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * SEED_STRIDE + self.epoch)
        starts = torch.tensor([lo for lo, _ in self.ranges], dtype=torch.float64)
        sizes = torch.tensor([hi - lo for lo, hi in self.ranges], dtype=torch.float64)
        envs = torch.randint(len(self.ranges), (self.num_samples,), generator=generator)  # [N]
        offsets = torch.rand(self.num_samples, generator=generator, dtype=torch.float64) * sizes[envs]
        return iter((starts[envs] + offsets.floor()).long().tolist())


def balanced_sampler(dataset: WindowDataset, num_samples: int, seed: int, epoch: int = 0) -> BalancedSampler:
    """Equal sampling weight per env of `dataset` (contract in docs/ARCHITECTURE.md)."""
    return BalancedSampler(dataset.env_window_ranges(), num_samples, seed, epoch)


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    *,
    sampler: Sampler | None = None,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of uint8 batches; worker seeds come from `seed` so reruns match bit for bit.

    `pin_memory`: page-locked batches, for a non_blocking copy to a GPU (pass True when feeding CUDA)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
