"""Hydra's conventions through run.py: `-m` sweeps (one job per combination, each its own command), array
jobs through hydra-submitit-launcher (local processes here; SLURM's submission checked without a cluster),
`--cfg job` — with the launcher's behaviour kept: strict keys, one-line errors, relative paths, --help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.errors import UserError
from common.launcher import main as launcher_main
from common.sweep import expand_sweep, take_hydra_options

REPO_DPATH = Path(__file__).resolve().parents[1]
TINY_BLOCK = ["config=synthetic/block", "n_sessions=4", "n_steps_max=6", "n_workers=1"]


def run_py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO_DPATH / "run.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def episode_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("shards/*/*.gre"))}


def one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    code = launcher_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


def test_a_sweep_is_hydras_basic_sweeper():
    jobs = expand_sweep(["config=x", "a=1,2", "b=range(2)", "c=[p,q]", "d='u,v'", "+e=choice(s,t)"])
    assert [job.args for job in jobs][:3] == [
        ["config=x", "a=1", "b=0", "c=[p,q]", "d='u,v'", "+e=s"],
        ["config=x", "a=1", "b=0", "c=[p,q]", "d='u,v'", "+e=t"],
        ["config=x", "a=1", "b=1", "c=[p,q]", "d='u,v'", "+e=s"],
    ]  # the first axis slowest; lists and quoted commas are values, not sweeps
    assert len(jobs) == 8 and jobs[-1].swept == ["a=2", "b=1", "+e=t"]
    with pytest.raises(UserError, match="only lists of values"):
        expand_sweep(["lr=interval(0,1)"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cfg", "hydra"], "only `--cfg job`"),
        (["hydra/launcher=submitit_local"], "apply to sweeps: add -m"),
        (["-m", "hydra/launcher=submitit_slrum"], "unknown (did you mean submitit_slurm?)"),
        (["-m", "hydra.job.chdir=true"], "'hydra.job.chdir=true' is not supported here"),
    ],
)
def test_hydra_options_outside_what_is_supported_are_one_line(args, message):
    with pytest.raises(UserError, match=re.escape(message)):
        take_hydra_options(args)


def test_cfg_job_prints_the_composed_config_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert launcher_main(["generate", *TINY_BLOCK, "--cfg", "job", "output_dpath=data/here"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["n_sessions"] == 4 and cfg["game"] == "synthetic-block"
    assert cfg["output_dpath"] == str(tmp_path / "data" / "here")  # relative paths resolve as in a run
    assert not (tmp_path / "data").exists()  # nothing ran
    assert launcher_main(["genie_redux", "train", "config=tokenizer_cpu", "--cfg=job"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["kind"] == "tokenizer"


def test_sweeps_keep_strict_keys_and_one_line_errors(tmp_path, capsys):
    err = one_line_error(capsys, ["generate", "-m", *TINY_BLOCK, "n_sesions=1,2", f"output_dpath={tmp_path}"])
    assert err.startswith(
        "error: sweep job 1/2 (n_sesions=1): unknown key 'n_sesions' (did you mean: n_sessions"
    )
    err = one_line_error(capsys, ["generate", "-m", *TINY_BLOCK, "seed=1,x", f"output_dpath={tmp_path}"])
    assert "sweep job 2/2 (seed=x): seed='x' should be int" in err
    assert one_line_error(capsys, ["genie_redux", "train", "-m", "config=nope,tokenizer_cpu"]).startswith(
        "error: sweep job 1/2 (config=nope): unknown config 'nope'"
    )
    assert list(tmp_path.iterdir()) == []  # no job ran: every job's config composes before the first runs


def test_help_names_the_conventions(capsys):
    with pytest.raises(SystemExit):
        launcher_main(["genie_redux", "train", "--help"])
    assert "-m key=a,b sweeps" in capsys.readouterr().out


def test_pytests_own_dash_m_still_reaches_pytest(tmp_path):
    # `run.py test -m "not slow"` selects tests by marker: a stack without configs takes no Hydra flags
    # (one process: pytest-xdist's workers do not report what they deselected)
    result = run_py("test", "-m", "slow and not slow", "-q", "-p", "no:xdist",
                    str(REPO_DPATH / "tests" / "test_sweeps.py"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 5, result.stdout + result.stderr  # pytest: every test deselected
    assert "deselected" in result.stdout


@pytest.mark.slow
def test_a_sweep_of_generation_shards_fills_one_store_as_one_run_would(tmp_path):
    one = run_py("generate", *TINY_BLOCK, "output_dpath=one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    sweep = run_py(
        "generate", "-m", *TINY_BLOCK, "output_dpath=shards", "num_shards=2", "shard_index=0,1", cwd=tmp_path
    )
    assert sweep.returncode == 0, sweep.stderr
    assert "[sweep job 2/2] python run.py generate" in sweep.stdout and "sweep done: 2 jobs" in sweep.stdout
    assert sorted(p.name for p in (tmp_path / "shards" / "shards").iterdir()) == [
        "shard000-w000",
        "shard001-w000",
    ]
    assert (
        episode_files(tmp_path / "shards") == episode_files(tmp_path / "one")
        and len(episode_files(tmp_path / "one")) == 4
    )


@pytest.mark.slow
def test_submitit_local_runs_the_shards_as_array_jobs(tmp_path):
    one = run_py("generate", *TINY_BLOCK, "output_dpath=one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    result = run_py(
        "generate", "-m", *TINY_BLOCK, "output_dpath=shards", "num_shards=2", "shard_index=range(2)",
        "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sweep done: 2 of 2 jobs succeeded" in result.stdout
    assert episode_files(tmp_path / "shards") == episode_files(tmp_path / "one")
    logs = sorted((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2 and any("recorded 2 episodes" in log.read_text() for log in logs)


@pytest.mark.slow
def test_a_training_sweep_gives_each_job_its_own_run_folder(tmp_path):
    from data.store_synthetic import write_synthetic_store
    from tests.test_training_e2e import FAST

    write_synthetic_store(
        tmp_path / "datasets" / "squares", ["envA"], num_sessions=10, num_frames=24, image_size=16
    )
    args = ["genie_redux", "train", "-m", "config=tokenizer", *FAST, "train.dataset_root_dpath=datasets",
            "run_dpath=runs/tok", "train.num_train_steps=2", "train.validation.every_steps=0",
            "train.checkpoint.every_steps=2", "train.optimizer.lr_max=1e-3,3e-3"]  # fmt: skip
    result = run_py(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for lr in ("0.001", "0.003"):
        run = tmp_path / "runs" / "tok" / f"train.optimizer.lr_max={lr}"
        assert (run / "final_model").is_dir()
        assert yaml.safe_load((run / "config.yaml").read_text())["train"]["optimizer"]["lr_max"] == float(lr)


@pytest.mark.slow
def test_submitit_slurm_submits_one_array_with_the_plugins_parameters(tmp_path, monkeypatch, capsys):
    """No cluster here: a stand-in `srun` lets submitit build its SLURM executor, and the array submission
    is caught where the plugin hands it over; its jobs are then run here, as SLURM would run them."""
    import submitit

    bin_dpath = tmp_path / "bin"
    bin_dpath.mkdir()
    (bin_dpath / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dpath / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dpath}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GENIE_REDUX_NO_BOOTSTRAP", "1")
    monkeypatch.chdir(tmp_path)
    submitted = []

    class FinishedJob:
        def __init__(self, result: int) -> None:
            self.result = result

        def results(self) -> list[int]:
            return [self.result]

    def map_array(executor, fn, *iterables):
        submitted.append((executor, fn, list(zip(*iterables))))
        return [FinishedJob(fn(*args)) for args in zip(*iterables)]  # each array task, run in turn

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    argv = ["generate", "-m", *TINY_BLOCK, "output_dpath=shards", "num_shards=2", "shard_index=0,1",
            "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30",
            "hydra.launcher.array_parallelism=8", "hydra.sweep.dir=sweep"]  # fmt: skip
    assert launcher_main(argv) == 0
    ((executor, _, tasks),) = submitted  # one array of two tasks
    assert [task[0][-1] for task in tasks] == ["shard_index=0", "shard_index=1"]
    script = executor._executor._make_submission_file_text("the-command", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --job-name=generate"):
        assert line in script
    assert executor._executor.parameters["array_parallelism"] == 8
    assert len(episode_files(tmp_path / "shards")) == 4  # the tasks' commands did the work
    err = one_line_error(capsys, [*argv[:-4], "hydra.launcher.partiton=gpu"])
    assert "unknown key hydra.launcher.partiton (did you mean: partition" in err
