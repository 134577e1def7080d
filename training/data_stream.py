"""A deterministic, resumable stream of sample indices, sharded across processes.

The global order is a function of (seed, epoch) only, and the trainer's data position is
`step * samples_per_step`: a resumed run rebuilds the same stream and skips to that position, so it
sees exactly the samples an uninterrupted run would have seen. Each process takes every
`world_size`-th index of the global stream, so the union over processes is the global order whatever
the process count. (We shard ourselves instead of `accelerator.prepare(dataloader)` to keep this
property under resume.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from common.seeds import SEED_STRIDE

EpochOrder = Callable[[int], Sequence[int]]  # epoch -> the indices of that epoch, in order


def permutation_order(num_samples: int, seed: int) -> EpochOrder:
    """Uniform shuffle per epoch, from a generator seeded with (seed, epoch)."""

    def order(epoch: int) -> Sequence[int]:
        generator = torch.Generator().manual_seed(seed * SEED_STRIDE + epoch)
        return torch.randperm(num_samples, generator=generator).tolist()

    return order


def sampler_order(make_sampler: Callable[[int], Sampler]) -> EpochOrder:
    """Epoch order from a sampler factory seeded per epoch (e.g. `data.datasets.balanced_sampler`)."""
    return lambda epoch: list(iter(make_sampler(epoch)))


class ResumableShardSampler(Sampler[int]):
    """Endless indices: global stream from `start_position`, then this rank's every `world_size`-th."""

    def __init__(self, epoch_order: EpochOrder, start_position: int, rank: int, world_size: int) -> None:
        if start_position % world_size:
            raise ValueError(f"start_position {start_position} is not a multiple of world_size {world_size}")
        self.epoch_order = epoch_order
        self.start_position = start_position
        self.rank = rank
        self.world_size = world_size

    def global_stream(self) -> Iterator[int]:
        skipped, epoch = 0, 0
        while True:
            indices = self.epoch_order(epoch)
            if not indices:
                raise ValueError("an epoch of the data stream is empty")
            # Whole epochs before the resume position are skipped without materialising samples.
            if skipped + len(indices) <= self.start_position:
                skipped += len(indices)
            else:
                yield from indices[max(self.start_position - skipped, 0) :]
                skipped = self.start_position
            epoch += 1

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self.global_stream(), self.rank, None, self.world_size)


def build_train_loader(
    dataset: Dataset,
    epoch_order: EpochOrder,
    *,
    batch_size: int,
    start_position: int,
    rank: int,
    world_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """An endless DataLoader of this rank's batches; worker seeds come from `seed`, not the global RNG.

    `pin_memory`: page-locked batches, for a non_blocking copy to a GPU (the trainer sets it on CUDA)."""
    sampler = ResumableShardSampler(epoch_order, start_position, rank, world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
        # Without a generator, each new iterator draws the worker base seed from the global RNG,
        # which would make the training RNG depend on how often the loader was (re)created.
        generator=torch.Generator().manual_seed(seed),
    )
