"""Every command the README and docs/ show runs as written, in order, in a fresh folder (slow tier).

The commands are read from the ```bash blocks of README.md and docs/*.md and run through `run.py` in a
temporary working directory, so relative paths (datasets/, outputs/) land there and each documented flow
feeds the next command as it would for a user. Only the budget changes: fewer sessions, a few training
steps, the tiny model, one process (`BUDGET`); every other key is the documented one. A command shown
again (docs/ repeat the README's) runs once, where it first appears. A command that
cannot run here is listed in `SKIPPED` with the reason. A documented flow that breaks fails this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SUITE_THREADS

REPO_DPATH = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO_DPATH)) for p in (REPO_DPATH / "docs").glob("*.md"))]
IMAGE_SIZE = 16  # every generated store and every model at 16 px: the tiny preset's size
TRAINING = {
    "model": "tiny",
    "++model_overrides.image_size": str(IMAGE_SIZE),
    "train.num_train_steps": "2",
    "train.num_processes": "1",
    "train.grad_accum": "1",
    "train.batch_size": "2",
    "train.num_workers": "0",
    "train.schedule.warmup_steps": "1",
    "train.checkpoint.every_steps": "2",
    "train.validation.every_steps": "2",
    "train.validation.num_batches": "1",
    "train.validation.batch_size": "2",
    "train.validation.maskgit_steps": "1",
}
EVALUATION = {
    "eval.num_sequences": "2",
    "eval.inference_steps": "1",
    "eval.batch_size": "2",
    "eval.num_workers": "0",
}
BUDGET = {
    # 20 sessions: the session split (90/5/5 %) then puts one in val and one in test
    "generate": {"n_sessions": "20", "n_steps_max": "20", "n_workers": "1", "image_size": str(IMAGE_SIZE)},
    "genie_redux train": {**TRAINING, **EVALUATION},
    "genie_redux eval": EVALUATION,
    "import": {"image_size": str(IMAGE_SIZE)},
    "agent train": {
        "collection.train.config.num_envs": "2",
        "collection.image_size": str(IMAGE_SIZE),
        "agent.size": "tiny",
        "collection.train.config.num_steps": "16",
        "training.actor_critic.batch_size": "4",
        "common.epochs": "2",
    },
    # episodes cut at 10 steps and best_window 1: the tiny run has a best_reward checkpoint to evaluate
    "auto_explore train": {
        "common.epochs": "2",
        "collection.train.config.num_envs": "2",
        "collection.train.config.num_steps": "16",
        "collection.max_episode_steps": "10",
        "agent.size": "tiny",
        "training.actor_critic.steps_per_epoch": "2",
        "training.actor_critic.batch_size": "4",
        "training.actor_critic.sequence_length": "8",
        "evaluation.every": "2",
        "evaluation.num_steps": "10",
        "checkpoint.best_window": "1",
    },
    "auto_explore eval": {"max_episode_steps": "10"},
    # best_reward needs 100 finished episodes, which 2 tiny epochs do not reach
    "agent eval": {"checkpoint": "last", "num_episodes": "2"},
    "demo": {
        "image_size": str(IMAGE_SIZE),
        "generate.n_sessions": "20",
        "generate.n_steps_max": "20",
        "tokenizer.num_train_steps": "2",
        "dynamics.num_train_steps": "2",
        "eval.num_sequences": "2",
        "eval.inference_steps": "1",
        "eval.response_frames": "2",
        "eval.drift_frames": "10",
    },
}
SKIPPED = {
    "run.py test": "the test suite itself",
    "run.py play": "a web server that runs until stopped; tests/test_player_browser.py drives it in Chromium",
    "run.py bench": "benchmarks run for minutes; tests/test_bench_*.py cover their code",
    "roms import ~/": "a ROM folder of the user's",
    "launch_args=": "needs several machines",
    "...": "a placeholder for the user's own arguments",
    "needs your own ROMs": "games whose ROMs do not ship with the packages (the docs say so on the line)",
    "a Minari dataset of yours": "a dataset the user has (tests/test_import_export.py builds one)",
    "hydra/launcher=submitit_slurm": "needs a SLURM cluster (tests/test_sweeps.py checks the submission without one)",
}


def documented_commands() -> list[tuple[str, list[str]]]:
    """(document, argv after `python run.py`, or `-m module ...`) for every such line of every ```bash
    block, in order."""
    commands = []
    for document in DOCUMENTS:
        text = (REPO_DPATH / document).read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                is_python = len(words) >= 2 and words[0] in ("python", "python3")
                if (
                    is_python
                    and words[1] in ("run.py", "-m")
                    and not any(marker in line for marker in SKIPPED)
                ):
                    commands.append((document, words[2:] if words[1] == "run.py" else words[1:]))
    return commands


def with_budget(argv: list[str]) -> list[str]:
    """The documented argv with the budget's keys replacing (or added to) its own; order kept."""
    num_words = next((i for i, item in enumerate(argv) if "=" in item), len(argv))  # stack, mode, paths
    head, items = argv[:num_words], argv[num_words:]
    stack = " ".join(head[:2]) if head[0] in ("genie_redux", "agent", "auto_explore") else head[0]
    budget = dict(BUDGET.get(stack, {}))
    merged: dict[str, str] = {}
    flags = [item for item in items if "=" not in item]  # `--cfg job`, `-m`: kept as written
    for item in (item for item in items if "=" in item):
        key, _, value = item.partition("=")
        bare = key.lstrip("+")
        budget_key = next((k for k in budget if k.lstrip("+") == bare), None)
        merged[key] = budget.pop(budget_key) if budget_key else value
    merged.update(budget)
    return [*head, *(f"{k}={v}" for k, v in merged.items()), *flags]


# A fork server: a Python that has imported what run.py's stacks import (and run nothing) forks one child
# per command, which runs it exactly as `python run.py ARGV` (or `python -m MODULE ARGV`) would, in its own
# process, cwd and environment. It saves the ~2 s of interpreter and torch start-up of ~50 commands.
FORK_SERVER = r"""
import json, os, runpy, sys, traceback
sys.path.insert(0, sys.argv[1])
import torch, hydra, omegaconf, accelerate, torchmetrics  # noqa: E401,F401 - imported once, inherited by forks
from common.launcher import main
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            torch.set_num_threads(int(job["env"].get("OMP_NUM_THREADS", "2")))
            argv = job["argv"]
            if argv[0] == "-m":
                sys.argv = [argv[1], *argv[2:]]
                runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
                code = 0
            else:
                sys.argv = ["run.py", *argv]
                code = int(main(argv) or 0)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class ForkServer:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(REPO_DPATH)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], log_fpath: Path) -> tuple[int, str]:
        job = {"argv": argv, "cwd": str(cwd), "env": env, "log": str(log_fpath)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        code = json.loads(self.proc.stdout.readline())["code"]
        return code, log_fpath.read_text(errors="replace")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.mark.slow
def test_every_documented_command_runs_as_written(tmp_path):
    commands = documented_commands()
    assert len(commands) >= 15, "the README and docs show far more commands than were found: parser broken?"
    # PYTHONPATH: `python -m module` lines import this checkout, as they do for a user in its folder
    env = {
        **os.environ,
        "GENIE_REDUX_NO_BOOTSTRAP": "1",
        "OMP_NUM_THREADS": str(SUITE_THREADS),  # 1 under `run.py test`'s one worker per core
        "PYTHONPATH": str(REPO_DPATH),
    }
    work = tmp_path / "work"
    work.mkdir()
    server = ForkServer(env)
    already_ran: set[tuple[str, ...]] = set()
    try:
        for index, (document, argv) in enumerate(commands):
            run_argv = argv if argv[0] == "-m" else with_budget(argv)  # `python -m module`: as written
            if tuple(run_argv) in already_ran:  # docs repeat the README's commands: once is the check
                continue
            already_ran.add(tuple(run_argv))
            code, output = server.run(run_argv, work, env, tmp_path / f"command_{index:03d}.log")
            assert code == 0, (
                f"{document}: `python run.py {shlex.join(argv)}` failed (ran as `{shlex.join(run_argv)}`):\n"
                + output[-3000:]
            )
    finally:
        server.close()


def test_the_budget_replaces_documented_values_and_keeps_the_rest():
    argv = [
        "genie_redux",
        "train",
        "config=tokenizer",
        "train.num_processes=4",
        "train.dataset_name=coinrun/random",
    ]
    merged = with_budget(argv)
    assert merged[:3] == ["genie_redux", "train", "config=tokenizer"]
    assert "train.num_processes=1" in merged and "train.num_processes=4" not in merged
    assert "train.dataset_name=coinrun/random" in merged and "model=tiny" in merged
    generate = with_budget(["generate", "config=coinrun/random", "n_sessions=100", "image_size=64"])
    assert generate == [
        "generate",
        "config=coinrun/random",
        "n_sessions=20",
        "image_size=16",
        "n_steps_max=20",
        "n_workers=1",
    ]
    assert any(argv[:1] == ["demo"] for _, argv in documented_commands())
