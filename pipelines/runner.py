"""The one way to chain launcher commands: the demo and every experiment run `python run.py ...` here.

Each command is printed as a user would type it, then runs as its own process (so every step is
resumable on its own and an older checkout can run its own code): with its output on the terminal,
or appended to a log per chain, with `threads_per_job` torch threads. `run_chains` runs several chains
side by side (one thread each); the first failure stops the run with the failing command and the tail
of its log.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from common.errors import UserError

REPO_DPATH = Path(__file__).resolve().parents[1]


class CommandRunner:
    def __init__(
        self,
        log_fpath: Path | None = None,
        threads_per_job: int | None = None,
        repo_dpath: Path = REPO_DPATH,
        python: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        """log_fpath: None prints each command's output; else chain `tag` appends to <stem>_<tag>.log
        beside it. repo_dpath / python: the checkout whose run.py runs, and its interpreter; cwd: where
        the commands run (None: here), which relative paths in them resolve against."""
        self.log_fpath, self.threads, self.cwd = log_fpath, threads_per_job, cwd
        self.repo_dpath, self.python = Path(repo_dpath), python or sys.executable
        self.commands: list[str] = []  # every command run, as typed
        self.seconds: dict[str, float] = {}  # wall seconds per command, as typed
        self._lock = threading.Lock()

    def command_line(self, args: list[str], module: str | None = None) -> str:
        return f"python {f'-m {module}' if module else 'run.py'} {shlex.join(args)}"

    def run(self, args: list[str], tag: str = "main", module: str | None = None) -> float:
        """`python run.py ARGS` (or `python -m MODULE ARGS`; in a chain, args ["-m", MODULE, ...]) -> wall
        seconds; a failure raises UserError."""
        if module is None and args[:1] == ["-m"]:
            module, args = args[1], args[2:]
        line = self.command_line(args, module)
        with self._lock:
            self.commands.append(line)
            print(f"[{tag}] $ {line}" if self.log_fpath else f"$ {line}", flush=True)
        entry = ["-m", module] if module else [str(self.repo_dpath / "run.py")]
        env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1"}  # the environment is this one's
        if self.threads:
            env |= {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        start = time.perf_counter()
        if self.log_fpath is None:
            code = subprocess.call([self.python, *entry, *args], cwd=self.cwd, env=env)
            log_hint = ""
        else:
            part_fpath = self.log_fpath.with_name(f"{self.log_fpath.stem}_{tag}.log")
            part_fpath.parent.mkdir(parents=True, exist_ok=True)
            with open(part_fpath, "a") as log:
                log.write(f"$ {line}\n")
                log.flush()
                code = subprocess.call([self.python, *entry, *args], stdout=log, stderr=subprocess.STDOUT,
                                       cwd=self.cwd, env=env)  # fmt: skip
            tail = part_fpath.read_text().splitlines()[-12:]
            log_hint = f"; the end of {part_fpath}:\n" + "\n".join(tail)
        seconds = time.perf_counter() - start
        with self._lock:
            self.seconds[line] = seconds
        if code != 0:
            raise UserError(f"`{line}` failed (exit {code}); fix it and rerun to resume{log_hint}")
        return seconds

    def run_chains(self, chains: dict[str, list[list[str]]], jobs: int) -> None:
        """Each chain's commands in order (the tag is the chain's name); up to `jobs` chains at once."""
        errors: list[BaseException] = []
        pending = list(chains.items())

        def worker() -> None:
            while not errors:
                with self._lock:
                    if not pending:
                        return
                    tag, commands = pending.pop(0)
                try:
                    for args in commands:
                        self.run(args, tag)
                except BaseException as error:  # noqa: BLE001 - reported below, after the other chains stop
                    errors.append(error)

        threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
