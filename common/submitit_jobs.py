"""hydra-submitit-launcher's launchers with their job body replaced by a `python run.py ...` command.

The plugin builds the submitit executor from its config (SLURM or local processes), submits the jobs as one
array and requeues a preempted or timed-out job (its `checkpoint`; our runs resume where they stopped). What
it would run inside each job, Hydra's `run_job` on a task function, is replaced here by the job's command,
run in the folder the sweep was started from, so a job is exactly the command it prints.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf


class _CommandJob:
    command_prefix: list[str]  # [python, run.py, stack, mode]
    cwd: str

    def __call__(
        self, sweep_overrides: list[str], job_dir_key: str, job_num: int, job_id: str, singleton_state: Any
    ) -> int:
        """One job (the plugin's job signature): its command's exit code."""
        return subprocess.call([*self.command_prefix, *sweep_overrides], cwd=self.cwd)


class CommandLocalLauncher(_CommandJob, LocalLauncher):
    pass


class CommandSlurmLauncher(_CommandJob, SlurmLauncher):
    pass


def submitit_launcher(name: str, params: dict[str, Any], command_prefix: list[str], sweep_dpath: Path) -> Any:
    """The launcher `hydra/launcher=<name>` names, configured by `params` (the plugin's config keys)."""
    cls = CommandSlurmLauncher if name == "submitit_slurm" else CommandLocalLauncher
    launcher = cls(**params)
    launcher.command_prefix, launcher.cwd = list(command_prefix), str(Path.cwd())
    launcher.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dpath)}}})  # what launch() reads
    return launcher
