"""Hydra composition for every stack: `config=<name>` picks the YAML, other overrides edit it.

Configs are struct (an unknown key is an error, not a silent no-op), and every `*_dpath` / `*_fpath`
value is made absolute against the directory the user ran from, so relative paths just work.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from common.errors import UserError

PATH_KEY_SUFFIXES = ("_dpath", "_fpath")


def split_config_override(overrides: list[str], default_name: str) -> tuple[str, list[str]]:
    """Pull `config=NAME` out of the overrides; NAME may carry a `.yaml` suffix."""
    name, rest = default_name, []
    for item in overrides:
        if item.startswith("config="):
            name = item.split("=", 1)[1].removesuffix(".yaml")
        else:
            rest.append(item)
    return name, rest


def available_configs(config_dpath: Path) -> list[str]:
    return sorted(str(p.relative_to(config_dpath).with_suffix("")) for p in config_dpath.rglob("*.yaml"))


def compose_config(config_dpath: Path, default_name: str, overrides: list[str]) -> DictConfig:
    """Compose `config=NAME` from `config_dpath` with Hydra overrides; errors become one-line UserErrors."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    name, rest = split_config_override(overrides, default_name)
    if not (config_dpath / f"{name}.yaml").is_file():
        choices = ", ".join(c for c in available_configs(config_dpath) if not c.startswith("_"))
        raise UserError(f"unknown config '{name}'; choose one of: {choices}")
    for item in rest:
        if "=" not in item:
            raise UserError(f"override '{item}' is not key=value (example: n_sessions=4)")
    try:
        # Compose from the file's own folder so its keys land at the top level (Hydra would otherwise nest
        # `retro_act/pretrain` under `retro_act:`); the root stays on the search path for shared groups.
        config_fpath = config_dpath / f"{name}.yaml"
        search_path = f"hydra.searchpath=[file://{config_dpath}]"
        with initialize_config_dir(config_dir=str(config_fpath.parent), version_base="1.3"):
            cfg = compose(config_name=config_fpath.stem, overrides=[*rest, search_path])
    except (HydraException, OmegaConfBaseException) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(
            f"{first_line} (see `python run.py --help`; add keys with +key=value only if intended)"
        ) from None
    resolve_relative_paths(cfg, Path(os.getcwd()))
    OmegaConf.set_struct(cfg, True)
    return cfg


def resolve_relative_paths(cfg: DictConfig, base_dpath: Path) -> None:
    """Make every `*_dpath`/`*_fpath` string absolute against `base_dpath` (the user's cwd), in place."""
    for key in list(cfg.keys()):
        value = cfg[key]
        if isinstance(value, DictConfig):
            resolve_relative_paths(value, base_dpath)
        elif isinstance(key, str) and key.endswith(PATH_KEY_SUFFIXES) and isinstance(value, str) and value:
            path = Path(value).expanduser()
            cfg[key] = str(path if path.is_absolute() else (base_dpath / path).resolve())
