"""The launcher's user-facing contract: help, one-line errors with exit code 2, config composition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import compose_config, split_config_override
from common.errors import UserError
from common.launcher import STACKS, main

REPO_DPATH = Path(__file__).resolve().parents[1]


def run_launcher(*args: str, cwd: Path = REPO_DPATH) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}
    return subprocess.run(
        [sys.executable, str(REPO_DPATH / "run.py"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_help_lists_every_stack_with_an_example():
    result = run_launcher("--help")
    assert result.returncode == 0
    for name, stack in STACKS.items():
        assert name in result.stdout
        assert stack.example in result.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nonsense"], "unknown stack 'nonsense'"),
        (["genie_redux"], "'genie_redux' needs a mode"),
        (["genie_redux"], "python run.py genie_redux --help"),
        (["genie_redux", "fly"], "got 'fly'"),
    ],
)
def test_bad_invocations_give_one_line_and_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        *[([name, flag], f"usage: python run.py {name} {'|'.join(STACKS[name].modes)}")
          for name in ("genie_redux", "agent", "auto_explore", "roms") for flag in ("--help", "-h", "help")],
        (["genie_redux", "train", "--help"], "keys of config=genie_redux"),
        (["genie_redux", "eval", "--help"], "keys of config=genie_redux"),
        (["agent", "train", "--help"], "keys of config=coinrun"),
        (["agent", "eval", "--help"], "keys of config=coinrun"),
        (["auto_explore", "train", "--help"], "keys of config=default"),
        (["auto_explore", "eval", "--help"], "keys of config=default"),
        (["roms", "import", "--help"], "usage: python run.py roms import [PATH]"),
        (["roms", "list", "--help"], "filters: genre, view, motion, platform, playable"),
        (["bench", "--help"], "recording          Game recording speed vs the raw emulator"),
        (["bench", "player", "--help"], "python run.py bench player [preset=tiny]"),
        (["generate", "--help"], "keys of config=retro_act/pretrain"),
        (["play", "--help"], "keys of config=play"),
        (["demo", "--help"], "keys of config=demo"),
    ],
)  # fmt: skip
def test_help_works_on_every_stack_with_or_without_a_mode(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)  # help must never start the work: a benchmark, an import, a training run
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


def test_subprocess_error_has_no_traceback():
    result = run_launcher("nonsense")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: unknown stack")


def test_split_config_override_picks_name_and_keeps_rest():
    name, rest = split_config_override(["a=1", "config=coinrun/random.yaml", "b=2"], "default")
    assert name == "coinrun/random"
    assert rest == ["a=1", "b=2"]


def write_config(dpath: Path) -> Path:
    (dpath / "group").mkdir(parents=True)
    (dpath / "group" / "example.yaml").write_text(
        "n_sessions: 3\noutput_dpath: out/data\nnested:\n  weights_fpath: w.safetensors\n  name: x\n"
    )
    return dpath


def test_compose_applies_overrides_and_resolves_relative_paths(tmp_path, monkeypatch):
    config_dpath = write_config(tmp_path / "configs")
    user_dpath = tmp_path / "user"
    user_dpath.mkdir()
    monkeypatch.chdir(user_dpath)
    cfg = compose_config(config_dpath, "group/example", ["n_sessions=7", "nested.name=y"])
    assert cfg.n_sessions == 7
    assert cfg.nested.name == "y"
    assert cfg.output_dpath == str(user_dpath / "out" / "data")
    assert cfg.nested.weights_fpath == str(user_dpath / "w.safetensors")


def test_compose_rejects_unknown_key_and_unknown_config(tmp_path):
    config_dpath = write_config(tmp_path / "configs")
    with pytest.raises(
        UserError, match=r"unknown key 'n_sesions' \(did you mean: n_sessions\?\) in config 'group/example'"
    ):
        compose_config(config_dpath, "group/example", ["n_sesions=7"])
    with pytest.raises(UserError, match=r"unknown key 'nested.nmae' \(did you mean: nested.name"):
        compose_config(config_dpath, "group/example", ["nested.nmae=7"])
    with pytest.raises(UserError, match="unknown config 'group/missing'; choose one of: group/example"):
        compose_config(config_dpath, "group/missing", [])
    with pytest.raises(UserError, match=r"unknown config 'group/exampel' \(did you mean group/example\?\)"):
        compose_config(config_dpath, "group/exampel", [])
    with pytest.raises(UserError, match=r"n_sessions='abc' should be int like its default \(3\)"):
        compose_config(config_dpath, "group/example", ["n_sessions=abc"])
    assert (
        compose_config(config_dpath, "group/example", ["n_sessions=null"]).n_sessions is None
    )  # null is fine
    with pytest.raises(UserError, match="not key=value"):
        compose_config(config_dpath, "group/example", ["n_sessions"])
    # a value Hydra's grammar refuses is named, not reported as the other overrides' keys being unknown
    with pytest.raises(UserError, match=r"override 'nested.name=runs/lr=3' does not parse .*quote a value"):
        compose_config(config_dpath, "group/example", ["n_sessions=4", "nested.name=runs/lr=3"])
    assert (
        compose_config(config_dpath, "group/example", ['nested.name="runs/lr=3"']).nested.name == "runs/lr=3"
    )


def test_old_fpath_spellings_of_directory_keys_still_work_with_a_one_line_notice(
    tmp_path, monkeypatch, capsys
):
    """tokenizer_fpath, model_fpath and eval.model_fpath were renamed *_dpath (they hold directories)."""
    monkeypatch.chdir(tmp_path)
    configs = REPO_DPATH / "configs"
    old = compose_config(
        configs, "genie_redux", ["tokenizer_fpath=tok", "model_fpath=ft", "eval.model_fpath=run/best"]
    )
    notices = capsys.readouterr().err.strip().splitlines()
    assert notices == [
        "warning: tokenizer_fpath is deprecated, use tokenizer_dpath",
        "warning: model_fpath is deprecated, use model_dpath",
        "warning: eval.model_fpath is deprecated, use eval.model_dpath",
    ]
    new = compose_config(
        configs, "genie_redux", ["tokenizer_dpath=tok", "model_dpath=ft", "eval.model_dpath=run/best"]
    )
    assert capsys.readouterr().err == ""  # the new spelling is quiet
    assert old == new
    assert (old.tokenizer_dpath, old.model_dpath) == (str(tmp_path / "tok"), str(tmp_path / "ft"))
    assert old.eval.model_dpath == str(tmp_path / "run" / "best")
    assert "tokenizer_fpath" not in old and "model_fpath" not in old.eval  # one key, the new one
