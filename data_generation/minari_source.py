"""A Minari dataset (Farama's offline-RL format) on disk as episodes, for `python run.py import config=minari`.

A Minari episode holds T+1 observations and T actions; its observations must be frames (uint8 [H, W, 3],
[H, W, 4] or grey [H, W]) or a Dict holding them under `observation_key`, and its actions Discrete. The
actions are named like a gymnasium env's (envs/gymnasium_env.py): from the dataset's env and its action
meanings, or from `action_names`. Nothing is downloaded: a dataset id names one in Minari's local root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from data.actions import ACTION_VOCABULARY


def open_dataset(dataset_id: str | None, dataset_dpath: str | None) -> Any:
    """The MinariDataset that `dataset_id` (in Minari's local root) or `dataset_dpath` (a dataset folder,
    the one holding data/ and metadata.json) names; one UserError line if none or both, or unreadable."""
    try:
        import minari
    except ImportError:
        raise UserError(
            "reading Minari datasets needs the minari package: pip install 'minari[hdf5]'"
        ) from None
    if (dataset_id is None) == (dataset_dpath is None):
        raise UserError(
            "name one Minari dataset: dataset_id=<id in Minari's local root> or dataset_dpath=<its folder>"
        )
    if dataset_id is not None:
        try:
            return minari.load_dataset(str(dataset_id))
        except FileNotFoundError:
            local = ", ".join(sorted(minari.list_local_datasets())) or "none"
            raise UserError(
                f"no Minari dataset '{dataset_id}' on this machine (local datasets: {local}; their root is "
                "MINARI_DATASETS_PATH, default ~/.minari/datasets); or give its folder as dataset_dpath="
            ) from None
    dpath = Path(dataset_dpath)
    data_dpath = dpath / "data" if (dpath / "data").is_dir() else dpath
    try:
        return minari.MinariDataset(data_dpath)
    except Exception as error:  # minari raises assorted errors for a folder that is not a dataset
        raise UserError(
            f"dataset_dpath={dpath} is not a readable Minari dataset ({type(error).__name__}: {error}); "
            "point it at the folder holding data/ and metadata.json"
        ) from None


def check_frames(observations: Any, observation_key: str | None, what: str) -> np.ndarray:
    """Observations -> uint8 frames [T, H, W, 3]; UserError saying what they are when they are not frames."""
    if isinstance(observations, dict):
        if observation_key is None or observation_key not in observations:
            raise UserError(
                f"{what}: observations are a Dict of {sorted(observations)}; name the one holding frames "
                "with observation_key=..."
            )
        observations = observations[observation_key]
    observations = np.asarray(observations)
    shape = list(observations.shape[1:])
    is_frames = observations.dtype == np.uint8 and (
        observations.ndim == 3 or (observations.ndim == 4 and shape[-1] in (1, 3, 4))
    )
    if not is_frames:
        raise UserError(
            f"{what}: observations are {observations.dtype} {shape}, not frames (uint8 [H, W, 3]); import a "
            "dataset recorded with image observations"
        )
    if observations.ndim == 3:  # grey [T, H, W]
        observations = observations[..., None]
    if observations.shape[-1] == 1:
        observations = observations.repeat(3, axis=-1)
    return np.ascontiguousarray(observations[..., :3])  # [T, H, W, 3]


def dataset_action_names(dataset: Any, action_names: list[str] | None) -> tuple[str, ...]:
    """The vocabulary name of each of the dataset's Discrete actions."""
    import gymnasium

    space = dataset.action_space
    if not isinstance(space, gymnasium.spaces.Discrete):
        raise UserError(
            f"Minari dataset {dataset.id} has {type(space).__name__} actions; only Discrete ones map onto the vocabulary"
        )
    if action_names is not None:
        names = tuple(str(name).upper() for name in action_names)
        unknown = [name for name in names if name not in ACTION_VOCABULARY]
        if unknown or len(names) != int(space.n):
            raise UserError(
                f"action_names must name the dataset's {int(space.n)} actions in vocabulary names "
                f"(got {list(names)}; vocabulary: {', '.join(ACTION_VOCABULARY)})"
            )
        return names
    spec = dataset.env_spec
    if spec is None:
        raise UserError(
            f"Minari dataset {dataset.id} names no env to read action meanings from; give action_names=[...]"
        )
    from envs.gymnasium_env import env_action_names, make_gymnasium_env

    kwargs = {key: value for key, value in (spec.kwargs or {}).items() if key != "render_mode"}
    env = make_gymnasium_env(spec.id, kwargs)
    try:
        return env_action_names(env, spec.id)
    finally:
        env.close()


def dataset_game_name(dataset: Any) -> str:
    """The game's name in the store: its env's (as `generate` names it), else the dataset id's."""
    from envs.names import gymnasium_store_name

    if dataset.env_spec is not None:
        return gymnasium_store_name(dataset.env_spec.id)
    return "minari+" + str(dataset.id).replace("/", "+")
