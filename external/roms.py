"""`python run.py roms import [PATH]` and `python run.py roms list [genre=pl] [playable=true] ...`.

`import` with no PATH imports every ROM that ships inside installed packages: stable-retro bundles
Airstriker-Genesis, and ale-py keeps 100+ Atari 2600 ROMs in its package, 32 of which have the exact
SHA-1 a stable-retro integration expects. The matching and copying is stable-retro's own importer
(`python -m stable_retro.import`); rerunning rewrites the same bytes, so it is idempotent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path

from common.errors import UserError

LIST_FILTERS = ("genre", "view", "motion", "platform", "playable")


def ale_rom_dpath() -> Path | None:
    """The folder of ROMs inside the installed ale-py package (found without importing ale-py)."""
    spec = importlib.util.find_spec("ale_py")
    if spec is None or not spec.submodule_search_locations:
        return None
    roms_dpath = Path(next(iter(spec.submodule_search_locations))) / "roms"
    return roms_dpath if roms_dpath.is_dir() else None


def retro_data_dpath() -> Path:
    import stable_retro.data

    return Path(stable_retro.data.path())


def import_rom_folders(folders: list[Path]) -> list[str]:
    """Run stable-retro's importer over `folders` (zips included); returns the games it imported."""
    from stable_retro.scripts import import_path

    data_dpath = retro_data_dpath()
    if not os.access(data_dpath / "stable", os.W_OK):
        raise UserError(
            f"stable-retro's data folder {data_dpath} is not writable; fix its permissions or set RETRO_DATA_PATH"
        )
    captured = io.StringIO()
    saved_argv = sys.argv
    sys.argv = ["stable_retro.import", *map(str, folders)]  # the importer reads its folders from argv
    try:
        with contextlib.redirect_stdout(captured):
            import_path.main()
    finally:
        sys.argv = saved_argv
    prefix = "Importing "
    return sorted(
        {line[len(prefix) :].strip() for line in captured.getvalue().splitlines() if line.startswith(prefix)}
    )


def playable_games() -> list[str]:
    """stable-retro integrations whose ROM is present."""
    from data_generation.selection import rom_available
    from envs.names import retro_integrations

    return sorted(name for name in retro_integrations().values() if rom_available(name))


def run_import(args: list[str]) -> int:
    if len(args) > 1:
        raise UserError("roms import takes at most one PATH (a folder or zip of ROMs)")
    if args:
        folder = Path(args[0]).expanduser()
        if not folder.exists():
            raise UserError(
                f"ROM path '{folder}' does not exist; pass a folder (or .zip) holding your ROM files"
            )
        folders = [folder.resolve()]
    else:
        ale_dpath = ale_rom_dpath()
        folders = [ale_dpath] if ale_dpath else []
        if not folders:
            print("ale-py is not installed: only stable-retro's bundled Airstriker-Genesis is available")
    imported = import_rom_folders(folders) if folders else []
    playable = playable_games()
    print(f"imported {len(imported)} ROM(s) from {', '.join(map(str, folders)) or 'nothing'}")
    print(f"{len(playable)} stable-retro games are playable (data: {retro_data_dpath()})")
    return 0


def parse_list_args(args: list[str]) -> dict[str, str]:
    options = {}
    for item in args:
        key, sep, value = item.partition("=")
        if not sep or key not in LIST_FILTERS:
            raise UserError(
                f"roms list takes key=value filters among {', '.join(LIST_FILTERS)} (got '{item}')"
            )
        options[key] = value
    if options.get("playable", "true").lower() not in ("true", "false"):
        raise UserError(f"playable must be true or false (got '{options['playable']}')")
    return options


def run_list(args: list[str]) -> int:
    from data_generation.retroact import load_annotations
    from data_generation.selection import rom_available
    from envs.names import retro_integrations

    options = parse_list_args(args)
    integrations = retro_integrations()
    rows = []
    for a in sorted(load_annotations(), key=lambda a: a.key):
        is_playable = a.key in integrations and rom_available(integrations[a.key])
        fields = {
            "genre": a.genre,
            "view": a.view,
            "motion": a.motion,
            "platform": a.platform,
            "playable": str(is_playable).lower(),
        }
        if all(fields[k] == v.lower() if k == "playable" else fields[k] == v for k, v in options.items()):
            rows.append((a, is_playable))
    print(
        f"{'game':<44} {'playable':<8} {'genre':<14} {'view':<5} {'motion':<6} controls (RIGHT/LEFT/UP/DOWN/ACTION_PRIMARY)"
    )
    for a, is_playable in rows:
        controls = "/".join(a.controls.values())
        print(
            f"{a.name:<44} {'yes' if is_playable else 'no':<8} {a.genre:<14} {a.view:<5} {a.motion:<6} {controls}"
        )
    num_playable = sum(is_playable for _, is_playable in rows)
    print(
        f"{len(rows)} RetroAct games listed, {num_playable} playable here; import more with `python run.py roms import PATH`"
    )
    return 0


MODE_HELP = {
    "import": "usage: python run.py roms import [PATH]\n  no PATH: the ROMs that ship inside installed "
    "packages (ale-py's Atari 2600 ROMs); PATH: a folder or .zip of your own ROMs (stable-retro matches "
    "them by SHA-1)",
    "list": f"usage: python run.py roms list [key=value ...]\n  filters: {', '.join(LIST_FILTERS)} "
    "(e.g. genre=pl playable=true); prints each RetroAct game, whether its ROM is here, and its controls",
}


def main(mode: str | None, args: list[str]) -> int:
    from common.config import HELP_FLAGS

    if mode in MODE_HELP and any(arg in HELP_FLAGS for arg in args):
        raise SystemExit(print(MODE_HELP[mode]) or 0)
    if mode == "import":
        return run_import(args)
    if mode == "list":
        return run_list(args)
    raise UserError(f"roms needs a mode: import or list (got {mode!r})")
