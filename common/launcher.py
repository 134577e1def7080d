"""Dispatch `run.py <stack> [mode] key=value ...` to the stack's `main(mode, overrides)`.

A stack module exposes `main(mode: str | None, args: list[str]) -> int`. The launcher owns the
user-facing contract: unknown stack/mode or bad input → one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass

from common.config import HELP_FLAGS, HYDRA_HELP
from common.errors import UserError


@dataclass(frozen=True)
class Stack:
    module: str
    modes: tuple[str, ...]  # empty: the stack takes no mode word
    summary: str
    example: str
    composes_config: bool = True  # takes Hydra's -m/--multirun, --cfg job and hydra/launcher=


STACKS: dict[str, Stack] = {
    "demo": Stack(
        "pipelines.demo",
        (),
        "bundled games → data → tokenizer → GenieRedux-G → evaluation (~7 min on CPU)",
        "python run.py demo output_dpath=outputs/demo",
    ),
    "generate": Stack(
        "data_generation.cli",
        (),
        "record game play into an episode store",
        "python run.py generate config=retro_act/pretrain n_sessions=2 n_steps_max=100",
    ),
    "import": Stack(
        "data_generation.importer",
        (),
        "your own recordings (videos or frame images + actions, a Minari dataset) into an episode store",
        "python run.py import source_dpath=my_recordings output_dpath=datasets/my_game",
    ),
    "export": Stack(
        "data_generation.export",
        (),
        "a store's episodes as mp4 videos, each with its actions beside it (what import reads back)",
        "python run.py export store_dpath=datasets/synthetic/block output_dpath=videos/block",
    ),
    "genie_redux": Stack(
        "training.cli",
        ("train", "eval"),
        "train or evaluate the world model (GenieRedux, GenieRedux-G)",
        "python run.py genie_redux train config=tokenizer train.num_train_steps=1000",
    ),
    "agent": Stack(
        "agents.cli",
        ("train", "eval"),
        "train an actor-critic agent on a game's reward (CoinRun task agent); evaluate it on unseen levels",
        "python run.py agent train config=coinrun common.epochs=100",
    ),
    "auto_explore": Stack(
        "auto_explore.cli",
        ("train", "eval"),
        "train the AutoExplore agent (world-model uncertainty reward); evaluate it: long episodes, gifs",
        "python run.py auto_explore train world_model_dpath=outputs/demo/genie_redux_guided/best_model",
    ),
    "play": Stack(
        "play.cli",
        (),
        "play a world model in the browser (keyboard; start frames from a dataset or an image)",
        "python run.py play model_dpath=outputs/demo/genie_redux_guided/best_model",
    ),
    "roms": Stack(
        "external.roms",
        ("import", "list"),
        "import ROMs into stable-retro; list playable RetroAct games",
        "python run.py roms list genre=pl",
        composes_config=False,
    ),
    "bench": Stack(
        "benchmarks.cli",
        (),
        "run a benchmark and record it in benchmarks/RESULTS.md",
        "python run.py bench recording",
        composes_config=False,
    ),
    "test": Stack(
        "common.test_runner",
        (),
        "run the test suite (pytest; extra args are passed through)",
        "python run.py test -k store",
        composes_config=False,
    ),
}


def usage() -> str:
    lines = ["usage: python run.py <stack> [mode] key=value ...", "", "stacks:"]
    for name, stack in STACKS.items():
        modes = f" {'|'.join(stack.modes)}" if stack.modes else ""
        lines.append(f"  {name}{modes:<14} {stack.summary}")
        lines.append(f"      e.g. {stack.example}")
    lines += [
        "",
        "`config=NAME` picks a config; any other key=value overrides it (Hydra syntax).",
        HYDRA_HELP,
    ]
    return "\n".join(lines)


def stack_usage(name: str, stack: Stack) -> str:
    """What `python run.py <stack> --help` prints for a stack with modes, before a mode is chosen."""
    modes = "|".join(stack.modes)
    return "\n".join(
        [
            f"usage: python run.py {name} {modes} key=value ...",
            f"  {stack.summary}",
            f"  e.g. {stack.example}",
            "",
            f"modes: {', '.join(stack.modes)}; `python run.py {name} {stack.modes[0]} --help` says what a mode takes",
        ]
    )


def parse(argv: list[str]) -> tuple[str, Stack, str | None, list[str]]:
    if not argv or argv[0] in HELP_FLAGS:
        raise SystemExit(print(usage()) or 0)
    name, rest = argv[0], argv[1:]
    if name not in STACKS:
        raise UserError(f"unknown stack '{name}'; choose one of: {', '.join(STACKS)} (python run.py --help)")
    stack = STACKS[name]
    mode = None
    if stack.modes:
        if rest and rest[0] in HELP_FLAGS:
            raise SystemExit(print(stack_usage(name, stack)) or 0)
        if not rest or rest[0] not in stack.modes:
            got = f"'{rest[0]}'" if rest else "nothing"
            raise UserError(
                f"'{name}' needs a mode, one of: {', '.join(stack.modes)} (got {got}; python run.py {name} --help)"
            )
        mode, rest = rest[0], rest[1:]
    return name, stack, mode, rest


def main(argv: list[str]) -> int:
    try:
        name, stack, mode, rest = parse(argv)
        if importlib.util.find_spec(stack.module) is None:
            raise UserError(f"stack '{name}' is not built yet in this version (see the open issues)")
        module = importlib.import_module(stack.module)

        def run_stack(args: list[str]) -> int:
            return int(module.main(mode, args) or 0)

        if stack.composes_config:
            from common.sweep import run_with_hydra_options, take_hydra_options

            options, rest = take_hydra_options(rest)
            if options.multirun or options.print_config:
                return run_with_hydra_options(options, [name, *([mode] if mode else [])], run_stack, rest)
        return run_stack(rest)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
