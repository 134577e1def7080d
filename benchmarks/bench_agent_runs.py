"""Compare agent training runs at equal wall time (how PPO vs the plain actor-critic was chosen):
`python run.py bench agent_runs runs=outputs/agents/coinrun/run_001,outputs/agents/coinrun/run_002`.

Each run is read at its last epoch that ended within the shorter run's wall time; the rows are recorded
as block `agent_algorithm_choice` (benchmarks/RESULTS.md, docs/agents.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from benchmarks.results_md import DOCS_DPATH, mirror_into_doc, publish
from common.errors import UserError
from common.paths import run_config_fpath


def read_rows(run_dpath: Path) -> list[dict]:
    lines = (run_dpath / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summarize_run(run_dpath: Path, until_wall_s: float, last_episodes: int = 100) -> dict:
    """The run's figures at its last epoch that ended within `until_wall_s` seconds of training."""
    from agents.config import upgrade_saved_config

    config = upgrade_saved_config(yaml.safe_load(run_config_fpath(run_dpath).read_text()))
    rows = [row for row in read_rows(run_dpath) if row["wall_s"] <= until_wall_s]
    last = rows[-1]
    returns = [r["return_mean"] for r in rows if r["return_mean"] is not None]
    first_returns = returns[: max(1, len(returns) // 10)]
    return {
        "run": run_dpath.name,
        "algorithm": config["training"]["actor_critic"]["algorithm"],
        "env_steps": last["env_steps"],
        "wall_s": round(last["wall_s"]),
        "env_steps_per_s": round(last["env_steps"] / max(last["wall_s"], 1e-9)),
        "first_tenth_return": sum(first_returns) / len(first_returns) if first_returns else None,
        f"last_{last_episodes}_episodes_return": last["recent_return_mean"],
        "last_episode_length": last["episode_length_mean"],
        "last_entropy": round(last["entropy"], 3),
    }


def main(**options: str) -> int:
    runs = [Path(run) for run in options.get("runs", "").split(",") if run]
    if len(runs) < 2 or set(options) - {"runs"}:
        raise UserError("bench agent_runs needs runs=<run folder>,<run folder>[,...]")
    until_wall_s = min(read_rows(run)[-1]["wall_s"] for run in runs)  # compare at equal wall time
    rows = [summarize_run(run, until_wall_s) for run in runs]
    notes = "same config but the algorithm, run side by side; each cut at the shorter run's wall time"
    mirror_into_doc(
        DOCS_DPATH / "agents.md", "algorithm_choice", publish("agent_algorithm_choice", rows, notes)
    )
    return 0
