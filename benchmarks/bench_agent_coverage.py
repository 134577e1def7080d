"""Record how much of its games an agent sees: `python run.py bench agent_coverage run_dpath=<agent run>
[num_steps=10000] [games=a,b]`.

Counts distinct screens and states per 10 k env steps with the one coverage path (agents/coverage.py),
the run's policy with the data-generation settings beside the random agent, and records the rows: a
CoinRun task agent as block `agent_coverage` (docs/agents.md), an AutoExplore run as
`auto_explore_coverage` (docs/auto_explore.md).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.results_md import DOCS_DPATH, mirror_into_doc, publish
from common.errors import UserError

OPTIONS = {"run_dpath", "num_steps", "games"}


def main(**options: str) -> int:
    from agents.coverage import (
        CLOCK_PROBE_STEPS,
        DATA_RANDOM_ACTION_PROB,
        DATA_TEMPERATURE,
        coverage_rows,
        run_config,
    )

    unknown = set(options) - OPTIONS
    if unknown or "run_dpath" not in options:
        raise UserError(
            f"bench agent_coverage needs run_dpath=<agent run folder>; options: {sorted(OPTIONS)}"
        )
    run_dpath = Path(options["run_dpath"]).resolve()
    num_steps = int(options.get("num_steps", "10000"))
    games = [game for game in options.get("games", "").split(",") if game]
    rows = coverage_rows(run_dpath, games, num_steps)
    is_auto_explore = run_config(run_dpath).reward.type == "world_model"
    name, doc = (
        ("auto_explore_coverage", "auto_explore.md") if is_auto_explore else ("agent_coverage", "agents.md")
    )
    notes = (f"{num_steps} env steps per agent and game, consecutive episodes seeded as the generator seeds them "
             f"(CoinRun: the datasets' training levels); screen = 16x16 thumbnail at 3 bits per channel; state = "
             f"the game's coverage keys (a retro game's RAM without its clock bytes: those changing on > half of "
             f"{CLOCK_PROBE_STEPS} random steps; raw RAM beside it; CoinRun: the level); trained agent = "
             f"{run_dpath.name}'s best checkpoint at the data settings (gamma {DATA_RANDOM_ACTION_PROB}, "
             f"T {DATA_TEMPERATURE}).")  # fmt: skip
    mirror_into_doc(DOCS_DPATH / doc, name, publish(name, rows, notes))
    return 0
