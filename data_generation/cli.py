"""`python run.py generate config=retro_act/pretrain|control|control_test|coinrun/random|random_test|synthetic/block|
gymnasium/random key=value ...`; `game=gymnasium:<env id>` records any registered gymnasium env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from common.config import compose_config
from common.errors import UserError
from data_generation.generator import GenerationSpec, run_generation
from data_generation.selection import GameFilter, Selection, select_games, select_named_games
from envs.names import NON_RETRO_GAMES, gymnasium_env_id, gymnasium_store_name

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = "retro_act/pretrain"
SELECTION_KEYS = (
    "genre", "view", "motion", "platform", "subset", "required_controls", "aligned_controls", "exclude_blinking",
    "exclude_delayed", "n_envs",
)  # fmt: skip


def as_names(value: Any) -> list[str]:
    """A config value that may be one name or a list of names (`genre=pl` or `genre=[pl,fight]`)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def game_filter(cfg: DictConfig) -> GameFilter:
    return GameFilter(
        genres=tuple(as_names(cfg.genre)),
        views=tuple(as_names(cfg.view)),
        motions=tuple(as_names(cfg.motion)),
        platforms=tuple(as_names(cfg.platform)),
        subset=str(cfg.subset),
        required_controls=tuple(as_names(cfg.required_controls)),
        aligned_controls=bool(cfg.aligned_controls),
        exclude_blinking=bool(cfg.exclude_blinking),
        exclude_delayed=bool(cfg.exclude_delayed),
        n_envs=cfg.n_envs,
    )


def choose_env_names(cfg: DictConfig) -> list[str]:
    """Resolve `game` (+ the RetroAct filters when game=all); prints what was selected and skipped."""
    games = as_names(cfg.game)
    has_filters = all(key in cfg for key in SELECTION_KEYS)
    gymnasium_ids = [gymnasium_env_id(g) for g in games if gymnasium_env_id(g) is not None]
    others = [g.lower() for g in games if g.lower() in NON_RETRO_GAMES]  # coinrun, synthetic-block
    others += check_gymnasium_envs(cfg, gymnasium_ids)
    retro_games = [g for g in games if g.lower() not in NON_RETRO_GAMES and gymnasium_env_id(g) is None]
    if not retro_games:
        return others
    if retro_games == ["all"]:
        if not has_filters:
            raise UserError(
                "game=all selects RetroAct games and needs a retro_act config (config=retro_act/pretrain)"
            )
        selection = select_games(game_filter(cfg))
    else:
        selection = select_named_games(retro_games, cfg.get("n_envs"))
    report_selection(selection)
    return list(selection.selected) + others


def gymnasium_options(cfg: DictConfig) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """(keyword arguments for gymnasium.make, the actions' vocabulary names or None) from `gymnasium:`."""
    make_kwargs = OmegaConf.to_container(cfg.gymnasium.make_kwargs, resolve=True)
    names = cfg.gymnasium.action_names
    return dict(make_kwargs), (tuple(as_names(names)) if names is not None else None)


def check_gymnasium_envs(cfg: DictConfig, env_ids: list[str]) -> list[str]:
    """Make each gymnasium env once, here, so that a bad id, action space or action name is one line before
    any worker starts; prints each with its actions. Returns their store names."""
    from envs import make_env

    make_kwargs, action_names = gymnasium_options(cfg)
    for env_id in env_ids:
        env = make_env(gymnasium_store_name(env_id), 16, make_kwargs=make_kwargs, action_names=action_names)
        print(f"gymnasium env {env_id} as {env.env_name}: actions {', '.join(env.action_names)}")
        env.close()
    return [gymnasium_store_name(env_id) for env_id in env_ids]


def report_selection(selection: Selection) -> None:
    print(f"selected {len(selection.selected)} games: {', '.join(selection.selected)}")
    if selection.unavailable:
        shown = ", ".join(selection.unavailable[:8]) + (" ..." if len(selection.unavailable) > 8 else "")
        print(
            f"skipped {len(selection.unavailable)} games without an imported ROM ({shown}); "
            "import yours with `python run.py roms import PATH`"
        )


def check_model_frame_size(image_size: int) -> None:
    """Frames a model can train on: a whole number of patches at some preset's patch size."""
    from models.presets import preset_patch_sizes

    sizes = preset_patch_sizes()
    if any(image_size % size == 0 for size in sizes.values()):
        return
    step = min(sizes.values())
    below, above = image_size // step * step, (image_size // step + 1) * step
    presets = ", ".join(f"{name} {size} px" for name, size in sizes.items())
    raise UserError(
        f"image_size={image_size} fits no model: models cut frames into square patches ({presets}), "
        f"so use a multiple of {step}, e.g. image_size={below} or image_size={above}"
    )


def build_spec(cfg: DictConfig, env_names: list[str]) -> GenerationSpec:
    agent_options = OmegaConf.to_container(cfg.agent, resolve=True)
    make_kwargs, action_names = gymnasium_options(cfg)
    return GenerationSpec(
        env_names=tuple(env_names),
        output_dpath=Path(cfg.output_dpath),
        n_sessions=int(cfg.n_sessions),
        n_steps_max=int(cfg.n_steps_max),
        n_workers=int(cfg.n_workers),
        image_size=cfg.image_size,
        frame_skip=int(cfg.frame_skip),
        sticky_action_prob=float(cfg.sticky_action_prob),
        seed=int(cfg.seed),
        variant=str(cfg.variant),
        agent_options=dict(agent_options),
        levels=tuple(cfg.levels) if cfg.levels is not None else None,
        shard_index=int(cfg.shard_index),
        num_shards=int(cfg.num_shards),
        gymnasium_make_kwargs=make_kwargs,
        gymnasium_action_names=action_names,
    )


def main(mode: str | None, args: list[str]) -> int:
    from envs.frames import check_image_size

    cfg = compose_config(CONFIG_DPATH, DEFAULT_CONFIG, args)
    check_model_frame_size(check_image_size(cfg.image_size))
    if not 0.0 <= float(cfg.sticky_action_prob) < 1.0:
        raise UserError(f"sticky_action_prob must be in [0, 1) (got {cfg.sticky_action_prob})")
    if int(cfg.frame_skip) < 1:
        raise UserError(f"frame_skip must be >= 1 (got {cfg.frame_skip})")
    if cfg.levels is not None:
        from envs.coinrun import check_levels

        try:
            check_levels(list(cfg.levels))
        except ValueError as error:
            raise UserError(str(error)) from None
    env_names = choose_env_names(cfg)
    if cfg.levels is not None and env_names != ["coinrun"]:
        raise UserError(f"levels= applies to game=coinrun only (got games {env_names})")
    if not env_names:
        raise UserError(
            "game= names no game; e.g. game=all, game=Pong-Atari2600, game=coinrun, game=synthetic-block or "
            "game=gymnasium:ALE/Pong-v5"
        )
    summary = run_generation(build_spec(cfg, env_names))
    return 1 if summary.failed else 0
