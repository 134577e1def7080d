"""ROM import: bundled ROMs into a temporary stable-retro data dir (RETRO_DATA_PATH), idempotent, CLI errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from external.roms import ale_rom_dpath, main

REPO_DPATH = Path(__file__).resolve().parents[1]
GAMES = ("Pong-Atari2600-v0", "Breakout-Atari2600-v0", "Airstriker-Genesis-v0")


def make_data_dir(root: Path) -> Path:
    """A stable-retro data dir holding just three integrations (copied from the installed package)."""
    import stable_retro

    source = Path(stable_retro.__file__).parent / "data"
    for sub in ("stable", "contrib", "experimental"):
        (root / sub).mkdir(parents=True)
    for game in GAMES:
        # without imported Atari ROMs (the real data dir may already hold them); Airstriker's ships
        shutil.copytree(
            source / "stable" / game, root / "stable" / game, ignore=shutil.ignore_patterns("rom.a26")
        )
    return root


def run_roms(data_dpath: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "RETRO_DATA_PATH": str(data_dpath)}
    return subprocess.run([sys.executable, str(REPO_DPATH / "run.py"), "roms", *args], env=env, capture_output=True, text=True, cwd=REPO_DPATH)  # fmt: skip


def test_ale_roms_are_found_inside_the_package():
    assert ale_rom_dpath() is not None and (ale_rom_dpath() / "pong.bin").is_file()


def test_import_bundled_roms_is_idempotent(tmp_path):
    data_dpath = make_data_dir(tmp_path / "retro_data")
    first = run_roms(data_dpath, "import")
    assert first.returncode == 0, first.stderr
    assert "imported 2 ROM(s)" in first.stdout  # Pong and Breakout match by SHA-1
    assert (data_dpath / "stable" / "Pong-Atari2600-v0" / "rom.a26").is_file()
    pong_bytes = (data_dpath / "stable" / "Pong-Atari2600-v0" / "rom.a26").read_bytes()
    second = run_roms(data_dpath, "import")
    assert second.returncode == 0 and "3 stable-retro games are playable" in second.stdout
    assert (data_dpath / "stable" / "Pong-Atari2600-v0" / "rom.a26").read_bytes() == pong_bytes


def test_import_user_folder_and_list(tmp_path):
    data_dpath = make_data_dir(tmp_path / "retro_data")
    user_roms = tmp_path / "my_roms"
    user_roms.mkdir()
    shutil.copy(ale_rom_dpath() / "breakout.bin", user_roms / "breakout.bin")
    result = run_roms(data_dpath, "import", str(user_roms))
    assert result.returncode == 0 and "imported 1 ROM(s)" in result.stdout
    listing = run_roms(data_dpath, "list", "playable=true")
    rows = [line.split()[0] for line in listing.stdout.splitlines()[1:-1]]
    assert rows == ["Airstriker-Genesis", "Breakout-Atari2600"]
    assert "2 RetroAct games listed, 2 playable here" in listing.stdout


def test_missing_path_and_bad_list_filter_are_one_line_errors():
    from common.errors import UserError

    with pytest.raises(UserError, match="does not exist"):
        main("import", ["/nonexistent/roms"])
    with pytest.raises(UserError, match="genre, view"):
        main("list", ["colour=red"])
