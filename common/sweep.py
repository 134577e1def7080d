"""Hydra's multirun through run.py: `-m` sweeps, launchers (submitit for SLURM) and `--cfg job`.

    python run.py genie_redux train -m config=tokenizer_cpu train.optimizer.lr_max=1e-3,3e-3
    python run.py generate -m config=coinrun/random num_shards=4 shard_index=range(4) hydra/launcher=submitit_slurm

A sweep is Hydra's basic sweeper: every `key=a,b` / `key=range(n)` / `key=choice(a,b)` is an axis, and each
combination (in the order given) is one job, a `python run.py ...` command of its own. Before any job runs,
each one's config is composed (strict keys, one-line errors naming the job). Jobs that would write into the
same `run_dpath` each get a subfolder named by their swept values (`.../train.optimizer.lr_max=0.001`);
`output_dpath` is left alone, so generation shards fill one store. The default launcher runs the jobs one
after another and stops at the first that fails; `hydra/launcher=submitit_slurm` submits them as one SLURM
array job (`hydra.launcher.partition=...`, every key of hydra-submitit-launcher's config) and
`submitit_local` runs them as local processes the same way, both waiting for the jobs to end as Hydra does.
"""

from __future__ import annotations

import difflib
import itertools
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

from common.errors import UserError

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"
MULTIRUN_FLAGS = ("-m", "--multirun")
CFG_FLAGS = ("--cfg", "-c")
LAUNCHERS = ("basic", "submitit_local", "submitit_slurm")
DEFAULT_SWEEP_DPATH = "multirun/{time}"  # as Hydra: multirun/<date>/<time>, under the folder run from


@dataclass
class HydraOptions:
    """What the command line asks of Hydra's conventions, taken out of the stack's own arguments."""

    multirun: bool = False
    print_config: bool = False  # --cfg job
    resolve: bool = False  # --resolve: print interpolations resolved
    launcher: str = "basic"
    launcher_overrides: list[str] = field(default_factory=list)  # hydra.launcher.<key>=<value>
    sweep_dpath: str | None = None  # hydra.sweep.dir=


def take_hydra_options(args: list[str]) -> tuple[HydraOptions, list[str]]:
    """Split `-m`, `--cfg job`, `--resolve`, `hydra/launcher=`, `hydra.launcher.*=` and `hydra.sweep.dir=`
    from the stack's arguments; anything else of Hydra's own is one line naming what is supported."""
    options, rest = HydraOptions(), []
    items = iter(args)
    for item in items:
        if item in MULTIRUN_FLAGS:
            options.multirun = True
        elif item in CFG_FLAGS or item.startswith("--cfg="):
            which = item.split("=", 1)[1] if "=" in item else next(items, "")
            if which != "job":
                raise UserError(
                    f"--cfg {which or '(nothing)'}: only `--cfg job` (print the composed config) is supported"
                )
            options.print_config = True
        elif item == "--resolve":
            options.resolve = True
        elif item.startswith("hydra/launcher="):
            options.launcher = item.split("=", 1)[1]
            if options.launcher not in LAUNCHERS:
                close = difflib.get_close_matches(options.launcher, LAUNCHERS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UserError(
                    f"hydra/launcher={options.launcher} is unknown{hint}; choose one of: {', '.join(LAUNCHERS)}"
                )
        elif item.startswith("hydra.launcher."):
            options.launcher_overrides.append(item.removeprefix("hydra.launcher."))
        elif item.startswith("hydra.sweep.dir="):
            options.sweep_dpath = item.split("=", 1)[1]
        elif (
            item.startswith(("hydra.", "hydra/", "+hydra", "--"))
            and "=" in item
            or item in ("--info", "--hydra-help")
        ):
            raise UserError(
                f"'{item}' is not supported here; run.py takes -m/--multirun, --cfg job, --resolve, "
                "hydra/launcher=basic|submitit_local|submitit_slurm, hydra.launcher.<key>=..., hydra.sweep.dir=..."
            )
        else:
            rest.append(item)
    if not options.multirun and (
        options.launcher != "basic" or options.launcher_overrides or options.sweep_dpath
    ):
        raise UserError(
            "hydra/launcher= and hydra.launcher.*/hydra.sweep.dir apply to sweeps: add -m (--multirun)"
        )
    return options, rest


@dataclass(frozen=True)
class SweepJob:
    args: list[str]  # the stack's arguments for this job
    swept: list[str]  # the key=value items of the swept axes (they name the job)


def expand_sweep(args: list[str]) -> list[SweepJob]:
    """Hydra's basic sweeper: one job per combination of the swept values, the first axis slowest."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    axes: list[list[tuple[str, bool]]] = []
    for item in args:
        if "=" not in item or item.startswith("-"):
            axes.append([(item, False)])
            continue
        try:
            override = parser.parse_override(item)
        except HydraException as error:
            first_line = str(error).strip().splitlines()[0]
            raise UserError(f"'{item}' is not a Hydra override ({first_line})") from None
        if not override.is_sweep_override():
            axes.append([(item, False)])
        elif not override.is_discrete_sweep() or "glob(" in item:
            raise UserError(f"'{item}': only lists of values (a,b), range() and choice() sweep here")
        else:
            key = override.get_key_element()
            axes.append([(f"{key}={value}", True) for value in override.sweep_string_iterator()])
    return [
        SweepJob([item for item, _ in combination], [item for item, is_swept in combination if is_swept])
        for combination in itertools.product(*axes)
    ]


def job_dirname(job: SweepJob) -> str:
    """A job's subfolder: its swept values as Hydra's override_dirname spells them (`a=1,b=x`), '/' as '-'."""
    return ",".join(job.swept).replace("/", "-") or "job"


def hydra_quoted(value: str) -> str:
    """A value Hydra's override grammar reads back as it is ('=' and ',' would otherwise end it)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_own_run_dpaths(jobs: list[SweepJob], run_dpaths: list[str | None]) -> list[SweepJob]:
    """Jobs whose composed `run_dpath`s coincide each get `run_dpath=<it>/<their swept values>`."""
    counts = {path: run_dpaths.count(path) for path in run_dpaths if path}
    return [
        SweepJob([*job.args, f"run_dpath={hydra_quoted(str(Path(path) / job_dirname(job)))}"], job.swept)
        if path
        and counts[path] > 1
        and not any(item.split("=", 1)[0].lstrip("+") == "run_dpath" for item in job.swept)
        else job
        for job, path in zip(jobs, run_dpaths)
    ]


def job_command(stack_words: list[str], job: SweepJob) -> list[str]:
    return [sys.executable, str(RUN_PY), *stack_words, *job.args]


def run_one_after_another(stack_words: list[str], jobs: list[SweepJob]) -> int:
    """The basic launcher: each job's command in turn, in this folder; the first that fails ends the sweep."""
    for index, job in enumerate(jobs, 1):
        words = shlex.join(["python", "run.py", *stack_words, *job.args])
        print(f"\n[sweep job {index}/{len(jobs)}] {words}", flush=True)
        code = subprocess.call(job_command(stack_words, job))
        if code != 0:
            print(f"sweep stopped: job {index}/{len(jobs)} exited with {code} ({words})", file=sys.stderr)
            return code
    print(f"\nsweep done: {len(jobs)} jobs")
    return 0


def launcher_params(options: HydraOptions, stack_words: list[str]) -> dict[str, Any]:
    """hydra-submitit-launcher's config for `options.launcher`, with the user's hydra.launcher.* applied
    (strict: an unknown key is one line with close matches) and its ${hydra...} interpolations filled."""
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = SlurmQueueConf if options.launcher == "submitit_slurm" else LocalQueueConf
    launcher = OmegaConf.structured(schema)
    try:
        launcher.merge_with(OmegaConf.from_dotlist(options.launcher_overrides))
    except OmegaConfBaseException as error:
        known = [key for key in launcher if not key.startswith("_")]
        bad = [
            o.split("=", 1)[0]
            for o in options.launcher_overrides
            if o.split("=", 1)[0].split(".")[0] not in known
        ]
        close = difflib.get_close_matches(bad[0], known, n=3) if bad else []
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        what = f"unknown key hydra.launcher.{bad[0]}{hint}" if bad else str(error).strip().splitlines()[0]
        raise UserError(f"{what}; {options.launcher} takes: {', '.join(known)}") from None
    sweep_dpath = options.sweep_dpath or DEFAULT_SWEEP_DPATH.format(time=time.strftime("%Y-%m-%d/%H-%M-%S"))
    root = OmegaConf.create(
        {
            "hydra": {
                "sweep": {"dir": str(Path(sweep_dpath).resolve())},
                "job": {"name": "_".join(stack_words)},
            }
        }
    )
    root.hydra.launcher = launcher
    params = OmegaConf.to_container(root.hydra.launcher, resolve=True)
    params.pop("_target_", None)
    return {"sweep_dpath": root.hydra.sweep.dir, **params}


def submit(options: HydraOptions, stack_words: list[str], jobs: list[SweepJob]) -> int:
    """Run the jobs through hydra-submitit-launcher (one array job); waits for them and reports each."""
    from common.submitit_jobs import submitit_launcher

    params = launcher_params(options, stack_words)
    sweep_dpath = Path(params.pop("sweep_dpath"))
    launcher = submitit_launcher(
        options.launcher, params, [sys.executable, str(RUN_PY), *stack_words], sweep_dpath
    )
    print(
        f"submitting {len(jobs)} jobs ({options.launcher}); logs in {sweep_dpath / '.submitit'}", flush=True
    )
    codes = launcher.launch([job.args for job in jobs], initial_job_idx=0)
    failed = [(index, code) for index, code in enumerate(codes, 1) if code != 0]
    for index, code in failed:
        print(
            f"sweep job {index}/{len(jobs)} exited with {code}: {shlex.join(jobs[index - 1].args)}",
            file=sys.stderr,
        )
    print(
        f"sweep done: {len(jobs) - len(failed)} of {len(jobs)} jobs succeeded; logs in {sweep_dpath / '.submitit'}"
    )
    return 1 if failed else 0


def run_with_hydra_options(
    options: HydraOptions, stack_words: list[str], run_stack: Callable[[list[str]], int], args: list[str]
) -> int:
    """`--cfg job` and `-m` for a stack (`stack_words`: its name and mode; `run_stack(args)`: one run of it)."""
    from omegaconf import OmegaConf

    jobs = expand_sweep(args) if options.multirun else [SweepJob(list(args), [])]
    configs = [job_config(run_stack, stack_words, job, index, len(jobs)) for index, job in enumerate(jobs, 1)]
    run_dpaths = [cfg.get("run_dpath") if isinstance(cfg.get("run_dpath"), str) else None for cfg in configs]
    own = with_own_run_dpaths(jobs, run_dpaths)
    if options.print_config:
        for index, (job, cfg) in enumerate(zip(own, configs), 1):
            if job is not jobs[index - 1]:  # its own run folder: show it as the job will see it
                cfg = job_config(run_stack, stack_words, job, index, len(jobs))
            if len(jobs) > 1:
                print(f"# sweep job {index}/{len(jobs)}: {' '.join(job.swept)}")
            print(OmegaConf.to_yaml(cfg, resolve=options.resolve), end="")
        return 0
    if options.launcher == "basic":
        return run_one_after_another(stack_words, own)
    return submit(options, stack_words, own)


def job_config(
    run_stack: Callable[[list[str]], int], stack_words: list[str], job: SweepJob, index: int, num_jobs: int
) -> DictConfig:
    """The config the job composes (strict keys, every check of composition), or one line naming the job."""
    from common.config import composed_config

    try:
        cfg = composed_config(run_stack, job.args)
    except UserError as error:
        if num_jobs == 1:
            raise
        raise UserError(f"sweep job {index}/{num_jobs} ({' '.join(job.swept)}): {error}") from None
    if cfg is None:
        raise UserError(f"'{' '.join(stack_words)}' composes no config: -m and --cfg job do not apply to it")
    return cfg
