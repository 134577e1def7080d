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


def returns(
    normalize: bool = False, center: bool = False, episodic: bool = True, unscored: str = "zero"
) -> list[str]:
    """Every switch of the reward's returns, spelled out (defaults: the paper's), so a variant means the same
    whatever the config's defaults are."""
    return [f"reward.normalize={str(normalize).lower()}", f"reward.center={str(center).lower()}",
            f"reward.episodic={str(episodic).lower()}", f"reward.unscored={unscored}"]  # fmt: skip


# agent variant -> its overrides of the auto_explore config (everything else is the experiment's budget)
VARIANTS = {
    # the paper's: episodic returns of the raw uncertainty
    "auto_explore": ["reward.type=world_model", *returns()],
    "auto_explore_rnd_remedies": ["reward.type=world_model", *returns(normalize=True, episodic=False)],
    "auto_explore_baseline": ["reward.type=world_model", *returns(center=True)],
    # a new episode neither costs nor pays: centred, non-episodic, and its unscored first steps at the mean
    # (the auto_explore config's default since these experiments)
    "auto_explore_neutral": [
        "reward.type=world_model",
        *returns(center=True, episodic=False, unscored="mean"),
    ],
    # the neutral variant without its unscored fill: what the fill adds to centred, non-episodic returns
    "auto_explore_center_nonepisodic": ["reward.type=world_model", *returns(center=True, episodic=False)],
    "entropy_only": ["reward.type=none", *returns()],
    "rnd": ["reward.type=rnd", *returns(normalize=True, episodic=False)],  # RND as its paper runs it
}
AUTO_EXPLORE_VARIANTS = tuple(name for name in VARIANTS if name.startswith("auto_explore"))


def unknown_variants(variants: list[str] | tuple[str, ...]) -> list[str]:
    return [v for v in variants if v not in VARIANTS]


def claim_data_source(fpath: Path, source: dict[str, Any], store: Path) -> None:
    """Mark `store` as recorded by the agent `source` (written atomically), or stop when it already holds
    another agent's episodes: a rerun whose best agent changed must not mix two agents' data."""
    recorded = json.loads(fpath.read_text()) if fpath.is_file() else source
    if recorded != source:
        raise SystemExit(
            f"{store} holds episodes of {recorded}, the best AutoExplore agent is now {source}: remove it and "
            "the finetune_* runs to record again"
        )
    atomic_write_json(fpath, source)
