"""Every shipped config composes, and every key in it is read by some code (no dead knobs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from common.config import compose_config, selectable_configs

REPO_DPATH = Path(__file__).resolve().parents[1]
CONFIG_DPATHS = {
    "genie_redux": REPO_DPATH / "configs",
    "generate": REPO_DPATH / "data_generation" / "configs",
    "demo": REPO_DPATH / "pipelines" / "configs",
    "agent_train": REPO_DPATH / "agents" / "configs" / "train",
    "agent_eval": REPO_DPATH / "agents" / "configs" / "eval",
}
SOURCE_DPATHS = ("agents", "common", "data", "data_generation", "models", "training", "pipelines", "external")


def shipped_configs() -> list[tuple[str, str]]:
    return [(stack, name) for stack, dpath in CONFIG_DPATHS.items() for name in selectable_configs(dpath)]


def leaf_keys(cfg: DictConfig) -> set[str]:
    keys: set[str] = set()
    for key, value in cfg.items():
        if isinstance(value, DictConfig):
            if len(value) > 0:
                keys |= leaf_keys(value)
            else:
                keys.add(str(key))  # an empty mapping (e.g. model_overrides: {}) is itself a knob
        else:
            keys.add(str(key))
    return keys


@pytest.fixture(scope="module")
def source_text() -> str:
    files = [p for d in SOURCE_DPATHS for p in (REPO_DPATH / d).rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


@pytest.mark.parametrize(("stack", "name"), shipped_configs())
def test_config_composes_and_every_key_is_read(stack, name, source_text):
    cfg = compose_config(CONFIG_DPATHS[stack], name, [])
    OmegaConf.to_container(cfg, resolve=False)  # structure is valid
    unread = sorted(
        key
        for key in leaf_keys(cfg)
        if not re.search(rf"(\.{key}\b|[\"']{key}[\"']|\b{key}\s*[:=])", source_text)
    )
    assert not unread, f"{stack} config {name}: keys never read by code: {unread}"


def test_every_stack_has_configs_and_group_options_are_not_choices():
    stacks = {stack for stack, _ in shipped_configs()}
    assert stacks == set(CONFIG_DPATHS)
    world_model_configs = selectable_configs(CONFIG_DPATHS["genie_redux"])
    assert "tokenizer" in world_model_configs and "eval/default" not in world_model_configs
    assert "retro_act/pretrain" in selectable_configs(CONFIG_DPATHS["generate"])
