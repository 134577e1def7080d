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


def test_without_the_demo_play_says_to_run_it_first(tmp_path):
    result = run_play(cwd=tmp_path)  # the defaults point at outputs/demo/ under the current folder
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
    assert play_command(other) == (
        f"python run.py play model_dpath={tmp_path}/elsewhere/genie_redux_guided "  # a run: play takes its best_model/
        f"dataset_dpath={tmp_path}/elsewhere/datasets/retro_act/pretrain"
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
