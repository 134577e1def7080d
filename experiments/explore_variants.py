"""The exploration agents the experiments compare, as overrides of the `auto_explore` config, and the
marker that ties a recorded exploration store to the agent that recorded it.

Used by experiments/exploration_game.py (the rooms game) and experiments/auto_explore_data.py (bundled
real games), so both compare the same agents under the same names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json

# agent variant -> its overrides of the auto_explore config (everything else is the experiment's budget)
VARIANTS = {
    "auto_explore": ["reward.type=world_model"],  # the paper's: episodic returns of the raw uncertainty
    "auto_explore_rnd_remedies": [
        "reward.type=world_model",
        "reward.normalize=true",
        "reward.episodic=false",
    ],
    "auto_explore_baseline": ["reward.type=world_model", "reward.center=true"],
    # a new episode neither costs nor pays: centred, non-episodic, and its unscored first steps at the mean
    "auto_explore_neutral": [
        "reward.type=world_model",
        "reward.center=true",
        "reward.episodic=false",
        "reward.unscored=mean",
    ],
    # the neutral variant without its unscored fill: what the fill adds to centred, non-episodic returns
    "auto_explore_center_nonepisodic": [
        "reward.type=world_model",
        "reward.center=true",
        "reward.episodic=false",
    ],
    "entropy_only": ["reward.type=none"],
    "rnd": ["reward.type=rnd", "reward.normalize=true", "reward.episodic=false"],  # RND as its paper runs it
}
AUTO_EXPLORE_VARIANTS = tuple(name for name in VARIANTS if name.startswith("auto_explore"))


def unknown_variants(variants: list[str] | tuple[str, ...]) -> list[str]:
    return [v for v in variants if v not in VARIANTS]


def claim_data_source(fpath: Path, source: dict[str, Any], store: Path) -> None:
    """Mark `store` as recorded by the agent `source` (written atomically), or stop when it already holds
    another agent's episodes: a rerun whose best agent changed must not mix two agents' data."""
    if fpath.is_file() and json.loads(fpath.read_text()) != source:
        raise SystemExit(
            f"{store} holds episodes of {json.loads(fpath.read_text())}, the best AutoExplore agent is now "
            f"{source}: remove it and the finetune_* runs to record again"
        )
    atomic_write_json(fpath, source)
