"""`python run.py play` input checks, the demo's play command, and the upload guard."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from play.images import UploadError, decode_upload

REPO_DPATH = Path(__file__).resolve().parents[1]


def run_play(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    command = [sys.executable, str(REPO_DPATH / "run.py"), "play", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def first_line_of_play(cwd: Path, *args: str) -> str:
    """Start the player, read the line it prints once it listens, stop it."""
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, str(REPO_DPATH / "run.py"), "play", *args], cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        return server.stdout.readline()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_without_the_demo_play_serves_the_bundled_model_and_then_the_demos(tmp_path, tiny_world_model_dpath,
                                                                           tiny_play_store):  # fmt: skip
    from models.checkpoint import read_config
    from play.cli import BUNDLED_DPATH

    line = first_line_of_play(tmp_path)  # no outputs/demo under this folder
    assert line.startswith("player: http://127.0.0.1:") and "the bundled model" in line
    assert (
        str(BUNDLED_DPATH / "world_model") in line
        and read_config(BUNDLED_DPATH / "world_model")["kind"] == "genie_redux_guided"
    )
    card = (BUNDLED_DPATH / "world_model" / "README.md").read_text()
    assert (
        "| made by | `python run.py genie_redux train config=genie_redux_guided" in card
    )  # its exact command
    assert "python run.py demo" in (BUNDLED_DPATH / "README.md").read_text()  # ... and the demo's that ran it
    # once the demo has run, its model is the one played
    (tmp_path / "outputs" / "demo" / "genie_redux_guided").mkdir(parents=True)
    (tmp_path / "outputs" / "demo" / "genie_redux_guided" / "best_model").symlink_to(tiny_world_model_dpath)
    (tmp_path / "outputs" / "demo" / "datasets" / "retro_act").mkdir(parents=True)
    (tmp_path / "outputs" / "demo" / "datasets" / "retro_act" / "pretrain").symlink_to(tiny_play_store)
    assert "(the demo's: outputs/demo/genie_redux_guided/best_model" in first_line_of_play(tmp_path)


def test_a_missing_model_names_the_demo(tmp_path, tiny_play_store):
    result = run_play(f"model_dpath={tmp_path / 'none'}", f"dataset_dpath={tiny_play_store}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no world model at" in lines[0] and "python run.py demo" in lines[0]


def test_a_missing_dataset_or_a_tokenizer_checkpoint_is_one_line(tmp_path, tiny_world_model_dpath):
    result = run_play(
        f"model_dpath={tiny_world_model_dpath}", f"dataset_dpath={tmp_path / 'none'}", cwd=tmp_path
    )
    assert result.returncode == 2 and "no episode store at" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_play("prot=8000", cwd=tmp_path)
    assert result.returncode == 2 and "did you mean: port" in result.stderr


def test_demo_prints_the_play_command_for_its_outputs(tmp_path, monkeypatch):
    from common.config import compose_config
    from pipelines.demo import CONFIG_DPATH, play_command

    monkeypatch.chdir(tmp_path)
    assert play_command(compose_config(CONFIG_DPATH, "demo", [])) == "python run.py play"
    other = compose_config(CONFIG_DPATH, "demo", ["output_dpath=elsewhere"])
    assert (
        play_command(other)
        == (
            f"python run.py play model_dpath={tmp_path}/elsewhere/genie_redux_guided "  # a run: play takes its best_model/
            f"dataset_dpath={tmp_path}/elsewhere/datasets/retro_act/pretrain"
        )
    )


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_are_bounded_and_decoded_safely():
    rgba = Image.fromarray(np.full((30, 50, 4), 120, dtype=np.uint8))
    decoded = decode_upload(png_bytes(rgba))
    assert decoded.dtype == np.uint8 and decoded.shape == (30, 50, 3)
    bomb = png_bytes(Image.new("1", (5000, 5000)))  # a few KB on disk, 25 M pixels decoded
    assert len(bomb) < 100_000
    with pytest.raises(UploadError, match="5000x5000 pixels; the limit is"):
        decode_upload(bomb)
    with pytest.raises(UploadError, match="limit is 0.0 MB"):
        decode_upload(png_bytes(rgba), max_bytes=10)
    with pytest.raises(UploadError, match="not an image"):
        decode_upload(b"GIF89a but not really")
    with pytest.raises(UploadError, match="empty"):
        decode_upload(b"")


def play_error(capsys, *overrides: str) -> str:
    """`run.py play` in-process with `overrides`: it must stop with one line and exit code 2."""
    from common.launcher import main as launcher_main

    code = launcher_main(["play", *overrides])  # would serve forever if the settings passed
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("port=99999", "port=99999 is not a TCP port; use 1..65535, or 0 for a free one"),
        ("port=-1", "port=-1 is not a TCP port"),
        ("device=banana", "device=banana is not a device name"),
        ("device=meta", "the player runs on cpu or cuda[:N]"),
        ("maskgit_steps=0", "maskgit_steps must be in 1..64, got 0"),
        ("maskgit_steps=65", "maskgit_steps must be in 1..64"),
        ("temperature=-1", "temperature must be in 0..10, got -1"),
        ("threads=0", "threads=0 must be >= 1"),
        ("num_prime_frames=0", "num_prime_frames=0 must be >= 1"),
        ("max_sessions=0", "max_sessions=0 must be >= 1"),
        ("max_upload_bytes=0", "max_upload_bytes=0 must be >= 1"),
        ("idle_timeout_s=0", "idle_timeout_s=0 must be > 0 seconds"),
        ("idle_timeout_s=-5", "idle_timeout_s=-5 must be > 0 seconds"),
    ],
)
def test_settings_are_checked_before_the_player_starts(
    capsys, tiny_world_model_dpath, tiny_play_store, override, message
):
    inputs = [f"model_dpath={tiny_world_model_dpath}", f"dataset_dpath={tiny_play_store}"]
    assert message in play_error(capsys, *inputs, override)


def test_a_cuda_device_the_machine_lacks_is_one_line(capsys, tiny_world_model_dpath, tiny_play_store):
    import torch

    inputs = [f"model_dpath={tiny_world_model_dpath}", f"dataset_dpath={tiny_play_store}"]
    if torch.cuda.is_available():
        err = play_error(capsys, *inputs, f"device=cuda:{torch.cuda.device_count()}")
        assert f"this machine has {torch.cuda.device_count()} CUDA GPU(s)" in err
    else:
        err = play_error(capsys, *inputs, "device=cuda")
        assert "torch sees no CUDA GPU on this machine; use device=cpu" in err
