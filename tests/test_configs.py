"""Every shipped config composes, and every key in it is read by some code (no dead knobs)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from common.config import compose_config, selectable_configs

REPO_DPATH = Path(__file__).resolve().parents[1]
CONFIG_DPATHS = {
    "genie_redux": REPO_DPATH / "configs",
    "generate": REPO_DPATH / "data_generation" / "configs",
    "import": REPO_DPATH / "data_generation" / "import_configs",
    "export": REPO_DPATH / "data_generation" / "export_configs",
    "demo": REPO_DPATH / "pipelines" / "configs",
    "play": REPO_DPATH / "play" / "configs",
    "agent_train": REPO_DPATH / "agents" / "configs" / "train",
    "agent_eval": REPO_DPATH / "agents" / "configs" / "eval",
    "auto_explore_train": REPO_DPATH / "auto_explore" / "configs" / "train",
    "auto_explore_eval": REPO_DPATH / "auto_explore" / "configs" / "eval",
}
SOURCE_DPATHS = (
    "agents",
    "common",
    "data",
    "data_generation",
    "models",
    "training",
    "pipelines",
    "external",
    "play",
    "auto_explore",
)


def shipped_configs() -> list[tuple[str, str]]:
    return [(stack, name) for stack, dpath in CONFIG_DPATHS.items() for name in selectable_configs(dpath)]


def leaf_paths(cfg: DictConfig, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf key as its path from the root, e.g. ("train", "validation", "every_steps")."""
    paths = []
    for key, value in cfg.items():
        if isinstance(value, DictConfig) and len(value) > 0:
            paths += leaf_paths(value, (*prefix, str(key)))
        else:  # a value, or an empty mapping (e.g. model_overrides: {}), which is itself a knob
            paths.append((*prefix, str(key)))
    return paths


def model_config_fields() -> set[str]:
    from models.config import DynamicsConfig, LamConfig, TokenizerConfig
    from models.presets import SHARED_KEYS

    parts = (TokenizerConfig, LamConfig, DynamicsConfig)
    return {f.name for part in parts for f in dataclasses.fields(part)} | set(SHARED_KEYS)


def dataclass_sections(cls: type, name: str | None = None) -> dict[str | None, set[str]]:
    """The agent stacks parse their YAML whole into a dataclass tree (agents.config.parse_section, which
    refuses unknown and missing keys): section name -> the keys its dataclass takes, for every section."""
    import typing

    hints = typing.get_type_hints(cls)
    sections = {name: {f.name for f in dataclasses.fields(cls)}}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            sections |= dataclass_sections(hints[field.name], field.name)
    return sections


def section_readers() -> dict[tuple[str | None, str | None], set[str]]:
    """Sections read whole into a typed object: (stack, section) -> the keys that object takes."""
    from agents.config import AgentTrainConfig
    from agents.evaluate import EvalConfig
    from data_generation.variants import CONFIG_KEY_ARGUMENTS, VARIANTS, policy_class
    from pipelines.demo import TrainingStage
    from training.evaluation.settings import EvalSettings

    stage = {f.name for f in dataclasses.fields(TrainingStage)}
    agent_sections = {
        (stack, section): keys
        for stack, root in (("agent_train", AgentTrainConfig), ("auto_explore_train", AgentTrainConfig),
                            ("agent_eval", EvalConfig), ("auto_explore_eval", EvalConfig))
        for section, keys in dataclass_sections(root).items()
    }  # fmt: skip
    return agent_sections | {
        ("genie_redux", "eval"): {
            f.name for f in dataclasses.fields(EvalSettings)
        },  # EvalSettings.from_config
        ("genie_redux", "model_overrides"): model_config_fields(),  # presets.build(**overrides)
        ("demo", "tokenizer"): stage,  # TrainingStage(**cfg.tokenizer)
        ("demo", "dynamics"): stage,
        # build_policy: the variant's check_options names what it takes **cfg.agent, the papers' key names mapped onto its arguments
        ("generate", "agent"): {
            key
            for variant in VARIANTS
            for name in inspect.signature(policy_class(variant).check_options).parameters
            for key in (name, *(k for k, v in CONFIG_KEY_ARGUMENTS.items() if v == name))
        },
    }


def name_words(name: str) -> set[str]:
    return {name.lower(), *name.lower().split("_")}


def origin_words(node: ast.expr) -> set[str]:
    """What a config node expression names: `cfg.train.validation` -> {"validation"}."""
    if isinstance(node, ast.Attribute):
        return name_words(node.attr)
    if isinstance(node, ast.Name):
        return name_words(node.id)
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return name_words(node.slice.value)
    return set()


def function_reads(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[tuple[str, str | None]]:
    """(key, section word) pairs the function reads: `tc.validation.seed` -> ("seed", "validation"); a read
    through a local name takes that name's words and those of what it was assigned from (`vc = tc.validation`),
    or a parameter's name (`validation_cfg`). A key only named in a string (`fields(cls)`, `"key" in node`)
    counts for every word of the function."""
    aliases: dict[str, set[str]] = {
        arg.arg: name_words(arg.arg) for arg in ast.walk(function.args) if isinstance(arg, ast.arg)
    }
    all_words: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            pairs = [(target, node.value) for target in node.targets]
            if isinstance(node.value, ast.Tuple):
                pairs = [
                    (t, v)
                    for target in node.targets
                    if isinstance(target, ast.Tuple)
                    for t, v in zip(target.elts, node.value.elts)
                ] or pairs
            for target, value in pairs:
                if isinstance(target, ast.Name):
                    aliases[target.id] = aliases.get(target.id, name_words(target.id)) | origin_words(value)
        for name in (getattr(node, attr, None) for attr in ("id", "arg", "attr")):
            if isinstance(name, str):
                all_words |= name_words(name)
    reads: set[tuple[str, str | None]] = set()
    for node in ast.walk(function):
        key, base = None, None
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            key, base = node.attr, node.value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            key, base = node.slice.value, node.value
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            reads |= {(node.value, word) for word in all_words} | {(node.value, None)}
            continue
        if key is None:
            continue
        words = (
            aliases.get(base.id, name_words(base.id)) if isinstance(base, ast.Name) else origin_words(base)
        )
        reads |= {(key, word) for word in words} | {(key, None)}
    return reads


def source_reads() -> set[tuple[str, str | None]]:
    reads: set[tuple[str, str | None]] = set()
    for fpath in (p for d in SOURCE_DPATHS for p in (REPO_DPATH / d).rglob("*.py")):
        for node in ast.walk(ast.parse(fpath.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                reads |= function_reads(node)
    return reads


def unread_keys(stack: str, cfg: DictConfig, reads: set[tuple[str, str | None]]) -> list[str]:
    """Leaf keys no code reads. `section.key` is read where code reads `key` from something that names the
    section (function_reads), or where the section is read whole into a typed object that takes `key`
    (section_readers); a top-level key wherever it is read."""
    readers = section_readers()
    unread = []
    for path in leaf_paths(cfg):
        key, section = path[-1], path[-2] if len(path) > 1 else None
        if key not in readers.get((stack, section), set()) and (key, section) not in reads:
            unread.append(".".join(path))
    return unread


@pytest.fixture(scope="module")
def reads() -> set[tuple[str, str | None]]:
    return source_reads()


@pytest.mark.parametrize(("stack", "name"), shipped_configs())
def test_config_composes_and_every_key_is_read(stack, name, reads):
    cfg = compose_config(CONFIG_DPATHS[stack], name, [])
    OmegaConf.to_container(cfg, resolve=False)  # structure is valid
    unread = unread_keys(stack, cfg, reads)
    assert not unread, f"{stack} config {name}: keys never read by code: {unread}"


def test_an_unread_key_is_caught_even_in_a_section_whose_name_is_common(reads):
    """`seed` is read all over the code, but not from the validation section: a dummy there fails."""
    cfg = compose_config(CONFIG_DPATHS["genie_redux"], "tokenizer", [])
    OmegaConf.set_struct(cfg, False)
    cfg.train.validation.seed = 3
    cfg.train.dummy_unread_knob = 1
    cfg.model_overrides.image_sise = 32  # not a model config field
    assert unread_keys("genie_redux", cfg, reads) == [
        "model_overrides.image_sise",
        "train.validation.seed",
        "train.dummy_unread_knob",
    ]


def test_every_stack_has_configs_and_group_options_are_not_choices():
    stacks = {stack for stack, _ in shipped_configs()}
    assert stacks == set(CONFIG_DPATHS)
    world_model_configs = selectable_configs(CONFIG_DPATHS["genie_redux"])
    assert "tokenizer" in world_model_configs and "eval/default" not in world_model_configs
    assert "retro_act/pretrain" in selectable_configs(CONFIG_DPATHS["generate"])


def test_every_field_of_the_agent_config_tree_is_used_by_code():
    """The agent stacks' sections are read whole into dataclasses; each leaf field must then be read as an
    attribute somewhere (or it is a dead knob the YAML still offers)."""
    from agents.config import AgentTrainConfig
    from agents.evaluate import EvalConfig

    attributes = {
        node.attr
        for fpath in (p for d in SOURCE_DPATHS for p in (REPO_DPATH / d).rglob("*.py"))
        for node in ast.walk(ast.parse(fpath.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
    }
    leaves = {
        key
        for root in (AgentTrainConfig, EvalConfig)
        for keys in dataclass_sections(root).values()
        for key in keys
    }
    sections = {name for root in (AgentTrainConfig, EvalConfig) for name in dataclass_sections(root) if name}
    assert not sorted(leaves - sections - attributes)
