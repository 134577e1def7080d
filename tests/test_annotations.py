"""RetroAct annotations and game selection: filters, G-50 name matching, errors with hints."""

from __future__ import annotations

import pytest

from common.errors import UserError
from data_generation.retroact import load_annotations
from data_generation.selection import GameFilter, select_games, select_named_games
from envs.names import game_key, resolve_retro_game


def everything_available(name: str) -> bool:
    return True


def test_one_key_for_all_three_spellings():
    assert (
        game_key("SuperMarioBros-Nes") == game_key("supermariobros-nes") == game_key("SuperMarioBros-Nes-v0")
    )
    assert resolve_retro_game("supermariobros-nes") == "SuperMarioBros-Nes-v0"
    assert resolve_retro_game("Airstriker-Genesis") == "Airstriker-Genesis-v0"


def test_tables_load_and_every_g50_game_matches_the_main_table():
    annotations = load_annotations()
    assert len(annotations) == 974
    g50 = [a for a in annotations if a.is_g50]
    assert len(g50) == 50  # every lowercase G-50 name found its main-table row
    mario = next(a for a in g50 if a.name == "SuperMarioBros-Nes")
    assert (
        mario.g50_controls["DOWN"] == "crouch" and mario.controls["DOWN"] == "none"
    )  # G-50 annotated separately


def test_filters_combine_and_keep_a_deterministic_order():
    selection = select_games(
        GameFilter(genres=("pl",), platforms=("Nes",), views=("side",)), everything_available
    )
    annotations = {game_key(a.name): a for a in load_annotations()}
    assert selection.selected and not selection.unavailable
    for name in selection.selected:
        a = annotations[game_key(name)]
        assert (a.genre, a.platform, a.view) == ("pl", "Nes", "side")
    assert list(selection.selected) == sorted(selection.selected, key=game_key)
    first3 = select_games(GameFilter(genres=("pl",), platforms=("Nes",), n_envs=3), everything_available)
    assert (
        first3.selected
        == select_games(GameFilter(genres=("pl",), platforms=("Nes",)), everything_available).selected[:3]
    )


def test_control_subset_requires_aligned_controls_and_excludes_flags():
    selection = select_games(
        GameFilter(subset="g50", required_controls=("RIGHT", "LEFT", "ACTION_PRIMARY"), exclude_delayed=True),
        everything_available,
    )
    annotations = {a.key: a for a in load_annotations()}
    assert 0 < len(selection.selected) <= 50
    for name in selection.selected:
        a = annotations[game_key(name)]
        assert a.is_g50 and not a.is_delayed
        assert all(a.g50_controls[c] != "none" for c in ("RIGHT", "LEFT", "ACTION_PRIMARY"))
    no_up = select_games(GameFilter(genres=("pl",), required_controls=("UP",)), everything_available)
    assert all(annotations[game_key(n)].controls["UP"] != "none" for n in no_up.selected)


def test_aligned_controls_select_by_meaning_as_upstream_g50():
    """RIGHT=right, LEFT=left, ACTION_PRIMARY=jump, UP in {climb, none}, DOWN in {none, crouch, climb}."""
    from data_generation.retroact import has_aligned_controls

    aligned = {"RIGHT": "right", "LEFT": "left", "UP": "none", "DOWN": "crouch", "ACTION_PRIMARY": "jump"}
    assert has_aligned_controls(aligned)
    for action, meaning in [
        ("RIGHT", "shoot"),
        ("LEFT", "right"),
        ("ACTION_PRIMARY", "shoot"),
        ("UP", "jump"),
        ("DOWN", "shoot"),
    ]:
        assert not has_aligned_controls({**aligned, action: meaning}), (action, meaning)
    # "not none" was the old test: a shooter whose primary button shoots passed it, and must not pass now
    assert not has_aligned_controls({**aligned, "ACTION_PRIMARY": "shoot", "UP": "up", "DOWN": "down"})
    g50 = select_games(GameFilter(subset="g50", aligned_controls=True), everything_available)
    annotations = {a.key: a for a in load_annotations()}
    assert len(g50.selected) == 50  # every game of the published list meets its own criterion
    platformers = select_games(GameFilter(genres=("pl",), aligned_controls=True), everything_available)
    assert 50 < len(platformers.selected) < sum(a.genre == "pl" for a in annotations.values())
    for name in platformers.selected:
        assert has_aligned_controls(annotations[game_key(name)].controls)


def test_availability_splits_selected_from_unavailable():
    def only_nes(name: str) -> bool:
        return name.endswith("-Nes-v0")

    selection = select_games(GameFilter(genres=("pl",)), only_nes)
    assert all(n.endswith("-Nes-v0") for n in selection.selected)
    assert selection.unavailable and not any(n.endswith("-Nes-v0") for n in selection.unavailable)


def test_empty_selection_names_the_filter_that_emptied_it():
    with pytest.raises(UserError, match=r"after motion=\['fixed'\]"):
        select_games(GameFilter(genres=("pl",), motions=("fixed",)), everything_available)
    with pytest.raises(UserError, match="roms import"):
        select_games(GameFilter(genres=("pl",)), lambda name: False)


def test_unknown_game_suggests_close_matches():
    with pytest.raises(UserError, match="did you mean: SuperMarioBros-Nes-v0"):
        select_named_games(["SuperMarioBross-Nes"], is_available=everything_available)
    with pytest.raises(UserError, match="subset"):
        select_games(GameFilter(subset="g51"), everything_available)


def test_real_bundled_games_are_selectable():
    # After `python run.py roms import`: the 4 Atari platformers are the default pretrain games.
    selection = select_games(GameFilter(genres=("pl",)))
    assert "MontezumaRevenge-Atari2600-v0" in selection.selected
    assert len(selection.unavailable) == 481 - len(selection.selected)
