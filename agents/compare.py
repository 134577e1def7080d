"""Compare training runs at equal wall time (the PPO vs actor-critic choice): figures into docs/agents.md.

python -m agents.compare outputs/agents/coinrun/run_001 outputs/agents/coinrun/run_002
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from agents.evaluate import DOCS_FPATH
from benchmarks.recording import device_description, markdown_table
from common.atomic import atomic_write_json, atomic_write_text


def read_rows(run_dpath: Path) -> list[dict]:
    return [
        json.loads(line) for line in (run_dpath / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]


def summarize_run(run_dpath: Path, until_wall_s: float, last_episodes: int = 100) -> dict:
    """The run's figures at its last epoch that ended within `until_wall_s` seconds of training."""
    config = yaml.safe_load((run_dpath / "config.yaml").read_text())
    rows = [row for row in read_rows(run_dpath) if row["wall_s"] <= until_wall_s]
    last = rows[-1]
    returns = [r["return_mean"] for r in rows if r["return_mean"] is not None]
    first_returns = returns[: max(1, len(returns) // 10)]
    return {
        "run": run_dpath.name,
        "algorithm": config["training"]["algorithm"],
        "env_steps": last["env_steps"],
        "wall_s": round(last["wall_s"]),
        "env_steps_per_s": round(last["env_steps"] / max(last["wall_s"], 1e-9)),
        "first_tenth_return": sum(first_returns) / len(first_returns) if first_returns else None,
        f"last_{last_episodes}_episodes_return": last["recent_return_mean"],
        "last_episode_length": last["episode_length_mean"],
        "last_entropy": round(last["entropy"], 3),
    }


def main(argv: list[str]) -> int:
    until_wall_s = min(read_rows(Path(arg))[-1]["wall_s"] for arg in argv)  # compare at equal wall time
    rows = [summarize_run(Path(arg), until_wall_s) for arg in argv]
    atomic_write_json(DOCS_FPATH.parent.parent / "benchmarks" / "results" / "agent_algorithm_choice.json",
                      {"device": device_description(), "rows": rows})  # fmt: skip
    table = markdown_table(rows)
    print(table)
    text = DOCS_FPATH.read_text()
    start, end = "<!-- results:algorithm_choice -->", "<!-- /results:algorithm_choice -->"
    if start in text and end in text:
        body = f"\n(device: {device_description()}; both runs at once, same config but the algorithm, each cut at the shorter run's wall time)\n\n{table}"
        atomic_write_text(DOCS_FPATH, text.split(start)[0] + start + body + end + text.split(end)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
