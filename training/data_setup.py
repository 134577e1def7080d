"""Training and validation data from the episode store named by the config."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset

from common.errors import UserError
from data.datasets import WindowDataset, balanced_sampler, game_action_names
from data.episode_store import EpisodeStore
from training.data_stream import EpochOrder, permutation_order, sampler_order


def store_dpath(train_cfg: DictConfig) -> Path:
    dpath = Path(train_cfg.dataset_root_dpath) / train_cfg.dataset_name
    if not dpath.is_dir():
        raise UserError(
            f"no episode store at {dpath}; generate one (python run.py generate ...) or set "
            "train.dataset_root_dpath / train.dataset_name"
        )
    return dpath


def select_env_names(dpath: Path, train_cfg: DictConfig) -> list[str]:
    """The envs to train on: train.env_names (or all in the store), then the first train.n_envs."""
    available = sorted({record.env_name for record in EpisodeStore(dpath).episodes})
    names = available if train_cfg.env_names is None else list(train_cfg.env_names)
    missing = sorted(set(names) - set(available))
    if missing:
        raise UserError(f"train.env_names {missing} not in {dpath}; it has: {', '.join(available)}")
    if train_cfg.n_envs is not None:
        if train_cfg.n_envs < 1:
            raise UserError(f"train.n_envs must be >= 1 or null, got {train_cfg.n_envs}")
        names = names[: train_cfg.n_envs]
    return names


def training_action_names(train_cfg: DictConfig) -> set[str]:
    """Every vocabulary name an action of the games to train on has (what GenieRedux-G must embed)."""
    dpath = store_dpath(train_cfg)
    per_game = game_action_names(EpisodeStore(dpath), select_env_names(dpath, train_cfg))
    return {name for names in per_game.values() for name in names}


def build_datasets(train_cfg: DictConfig) -> tuple[WindowDataset, WindowDataset | None]:
    """The training windows, and the validation windows when validation runs (`validation.every_steps` > 0):
    a store without validation sessions trains fine with validation off."""
    dpath = store_dpath(train_cfg)
    common = {
        "num_frames": train_cfg.num_frames,
        "stride": train_cfg.frame_stride,
        "env_names": select_env_names(dpath, train_cfg),
        "split_seed": train_cfg.split_seed,
    }
    train_set = WindowDataset(dpath, "train", **common)  # no windows at all is a UserError there
    val_set = WindowDataset(dpath, "val", **common) if train_cfg.validation.every_steps > 0 else None
    return train_set, val_set


def train_epoch_order(train_set: WindowDataset, train_cfg: DictConfig) -> EpochOrder:
    if not train_cfg.balanced:
        return permutation_order(len(train_set), train_cfg.seed)
    return sampler_order(
        lambda epoch: balanced_sampler(train_set, len(train_set), train_cfg.seed, epoch=epoch)
    )


def build_val_loader(val_set: WindowDataset, validation_cfg: DictConfig) -> DataLoader | None:
    """A fixed subset (evenly spaced windows) so validation numbers are comparable across steps."""
    num_samples = min(len(val_set), validation_cfg.num_batches * validation_cfg.batch_size)
    if num_samples == 0:
        return None
    indices = torch.linspace(0, len(val_set) - 1, num_samples).round().long().unique().tolist()
    return DataLoader(Subset(val_set, indices), batch_size=validation_cfg.batch_size, shuffle=False)
