"""Hydra composition for every stack: `config=<name>` picks the YAML, other overrides edit it.

Configs are struct (an unknown key is an error, not a silent no-op), and every `*_dpath` / `*_fpath`
value is made absolute against the directory the user ran from, so relative paths just work.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from common.errors import UserError
from common.yaml_files import YAML_READ_ERRORS, yaml_error_fpath, yaml_problem

PATH_KEY_SUFFIXES = ("_dpath", "_fpath")
# Old spellings of renamed keys, still accepted on the command line with a one-line notice.
RENAMED_KEYS = {
    "tokenizer_fpath": "tokenizer_dpath",  # these hold checkpoint directories, not files
    "model_fpath": "model_dpath",
    "eval.model_fpath": "eval.model_dpath",
}
HELP_FLAGS = ("-h", "--help", "help")
HYDRA_HELP = (
    "Hydra's conventions: -m key=a,b sweeps (one job per combination; hydra/launcher=submitit_slurm or "
    "submitit_local runs them as array jobs), --cfg job prints the composed config."
)
# Set while `composed_config` asks a stack for its config: compose_config then stops the stack there.
_STOP_AFTER_COMPOSE = contextvars.ContextVar("stop_after_compose", default=False)


class ComposedConfig(BaseException):  # noqa: N818 (not an error: it carries the config out of the stack)
    """Raised by compose_config under `composed_config`, carrying the config out before the stack uses it.
    A BaseException, so that a stack's `except Exception` cannot swallow it."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__("composed")
        self.cfg = cfg


def composed_config(run_stack: Callable[[list[str]], object], args: list[str]) -> DictConfig | None:
    """The config `run_stack(args)` would compose, without running the stack past that point (every stack
    composes its config before it does anything); None for a stack that composes none."""
    token = _STOP_AFTER_COMPOSE.set(True)
    try:
        run_stack(args)
    except ComposedConfig as composed:
        return composed.cfg
    finally:
        _STOP_AFTER_COMPOSE.reset(token)
    return None


def config_help(config_dpath: Path, name: str) -> str:
    """What `python run.py <stack> --help` prints: the configs to choose from and the chosen one's keys."""
    lines = [f"configs (config=NAME): {', '.join(selectable_configs(config_dpath))}"]
    config_fpath = config_dpath / f"{name}.yaml"
    if config_fpath.is_file():
        lines += [
            f"keys of config={name} ({config_fpath}), each settable as key=value; included files add more:",
            "",
            config_fpath.read_text().rstrip(),
        ]
    for partial in sorted(config_dpath.glob("_*.yaml")):
        lines += ["", f"# --- {partial.name} (shared keys) ---", partial.read_text().rstrip()]
    return "\n".join([*lines, "", HYDRA_HELP])


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
    """Every YAML under `config_dpath` as a `config=` name (including `_partials` and group options)."""
    return sorted(str(p.relative_to(config_dpath).with_suffix("")) for p in config_dpath.rglob("*.yaml"))


def group_names(config_dpath: Path) -> set[str]:
    """Folders that the root configs pull in as Hydra groups (`- optional eval: default`): not choices."""
    names = set()
    for fpath in config_dpath.glob("*.yaml"):
        try:
            loaded = OmegaConf.load(fpath)
        except YAML_READ_ERRORS:
            continue  # a broken file names no group; choosing it reports why (broken_config_error)
        defaults = (loaded.get("defaults") if isinstance(loaded, DictConfig) else None) or []
        for entry in defaults:
            if isinstance(entry, DictConfig | dict):
                names |= {str(key).removeprefix("optional ").split("@")[0].strip("/") for key in entry}
    return names


def selectable_configs(config_dpath: Path) -> list[str]:
    """The names `config=` is meant for: no `_partials`, no options of a Hydra group."""
    groups = group_names(config_dpath)
    return [
        name
        for name in available_configs(config_dpath)
        if not Path(name).name.startswith("_") and name.split("/")[0] not in groups
    ]


def rename_deprecated_keys(overrides: list[str], renamed_keys: dict[str, str] | None = None) -> list[str]:
    """Overrides with every old key spelling (RENAMED_KEYS, and the stack's own `renamed_keys`) replaced by
    the new one, noticed on stderr."""
    names = {**RENAMED_KEYS, **(renamed_keys or {})}
    renamed = []
    for item in overrides:
        key, sep, value = item.partition("=")
        prefix = key[: len(key) - len(key.lstrip("+~"))]
        new_key = names.get(key.lstrip("+~"))
        if sep and new_key is not None:
            print(f"warning: {key.lstrip('+~')} is deprecated, use {new_key}", file=sys.stderr)
            item = f"{prefix}{new_key}={value}"
        renamed.append(item)
    return renamed


def compose_config(
    config_dpath: Path, default_name: str, overrides: list[str], renamed_keys: dict[str, str] | None = None
) -> DictConfig:
    """Compose `config=NAME` from `config_dpath` with Hydra overrides; errors become one-line UserErrors.
    `renamed_keys`: the stack's old key spellings -> today's (accepted with a notice)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    name, rest = split_config_override(rename_deprecated_keys(overrides, renamed_keys), default_name)
    if any(item in HELP_FLAGS for item in rest):
        raise SystemExit(print(config_help(config_dpath, name)) or 0)
    if not (config_dpath / f"{name}.yaml").is_file():
        choices = selectable_configs(config_dpath)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"unknown config '{name}'{hint}; choose one of: {', '.join(choices)}")
    for item in rest:
        if "=" not in item:
            raise UserError(f"override '{item}' is not key=value (example: n_sessions=4)")
    unparsable = unparsable_override(rest)
    if unparsable:
        raise UserError(unparsable)
    try:
        cfg = _compose(config_dpath, name, rest)
    except YAML_READ_ERRORS as error:
        raise broken_config_error(config_dpath, name, error) from None
    except (HydraException, OmegaConfBaseException) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(
            _unknown_keys(config_dpath, name, rest) or f"{first_line} (see `python run.py --help`)"
        ) from None
    if rest:
        check_override_types(_compose(config_dpath, name, []), cfg, rest)
    resolve_relative_paths(cfg, Path(os.getcwd()))
    OmegaConf.set_struct(cfg, True)
    if _STOP_AFTER_COMPOSE.get():
        raise ComposedConfig(cfg)
    return cfg


def broken_config_error(config_dpath: Path, name: str, error: Exception) -> UserError:
    """'<file> is not valid YAML (line 2, column 4: ...); fix that file' for the file that broke."""
    config_fpath = config_dpath / f"{name}.yaml"
    fpath = yaml_error_fpath(error)
    if fpath is None:  # a decoding error names no file: find the one that is not UTF-8 text
        candidates = [config_fpath, *sorted(config_dpath.rglob("*.yaml"))]
        fpath = next((str(f) for f in candidates if not _is_utf8(f)), str(config_fpath))
    used_by = "" if Path(fpath) == config_fpath else f", used by config={name}"
    return UserError(f"{fpath} is not valid YAML ({yaml_problem(error)}{used_by}); fix that file")


def _is_utf8(fpath: Path) -> bool:
    try:
        fpath.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_override_types(defaults: DictConfig, cfg: DictConfig, overrides: list[str]) -> None:
    """An override must keep a number a number and a boolean a boolean (`n_sessions=abc` is a typo)."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        default = OmegaConf.select(defaults, key, throw_on_missing=False)
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        if (
            default is None
            or value is None
            or isinstance(default, DictConfig | list)
            or OmegaConf.is_list(default)
        ):
            continue
        expected = (
            bool if isinstance(default, bool) else float if isinstance(default, float) else type(default)
        )
        is_ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float:
            is_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if expected in (int, float, bool) and not is_ok:
            raise UserError(f"{key}={value!r} should be {expected.__name__} like its default ({default!r})")


def unparsable_override(overrides: list[str]) -> str:
    """'override ... does not parse (...)' for the first override Hydra's grammar refuses; '' if all parse.
    Checked one by one first: Hydra's own error does not say which override broke."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for item in overrides:
        try:
            parser.parse_override(item)
        except HydraException as error:
            reason = str(error).strip().splitlines()[0]
            return (
                f"override '{item}' does not parse ({reason}): quote a value holding '=', spaces or brackets, "
                f"e.g. 'key=\"a=b\"', or leave those characters out of paths"
            )
    return ""


def _compose(config_dpath: Path, name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    # Compose from the file's own folder so its keys land at the top level (Hydra would otherwise nest
    # `retro_act/pretrain` under `retro_act:`); the root stays on the search path for shared groups.
    config_fpath = config_dpath / f"{name}.yaml"
    search_path = f"hydra.searchpath=[file://{config_dpath}]"
    with initialize_config_dir(config_dir=str(config_fpath.parent), version_base="1.3"):
        return compose(config_name=config_fpath.stem, overrides=[*overrides, search_path])


def dotted_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, DictConfig):
            keys += dotted_keys(value, f"{dotted}.")
    return keys


def _unknown_keys(config_dpath: Path, name: str, overrides: list[str]) -> str:
    """'unknown key ... (did you mean ...?)' for override keys the config lacks; '' if none is unknown."""
    try:
        known = dotted_keys(_compose(config_dpath, name, []))
    except Exception:  # the config itself is broken: the error already says why
        return ""
    hints = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key not in known and not key.startswith("hydra"):
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hints.append(f"unknown key '{key}'" + (f" (did you mean: {', '.join(close)}?)" if close else ""))
    if hints:
        return "; ".join(hints) + f" in config '{name}' (add a new key with +key=value only if intended)"
    return ""


def resolve_relative_paths(cfg: DictConfig, base_dpath: Path) -> None:
    """Make every `*_dpath`/`*_fpath` string absolute against `base_dpath` (the user's cwd), in place."""
    for key in list(cfg.keys()):
        value = cfg[key]
        if isinstance(value, DictConfig):
            resolve_relative_paths(value, base_dpath)
        elif isinstance(key, str) and key.endswith(PATH_KEY_SUFFIXES) and isinstance(value, str) and value:
            path = Path(value).expanduser()
            cfg[key] = str(path if path.is_absolute() else (base_dpath / path).resolve())
