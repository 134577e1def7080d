"""Your own recordings into the store (`run.py import`: videos, frame images, a Minari dataset) and a store's
episodes out as mp4 (`run.py export`): frames and actions arrive as written, bad input is one line naming the
file, a rerun resumes, an exported game imports back frame for frame, and training reads an imported store."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from accelerate.state import AcceleratorState
from PIL import Image

from common.launcher import main as launcher_main
from common.videos import read_video, write_mp4
from data.actions import action_id
from data.episode_store import EpisodeStore
from data.store_synthetic import moving_squares, write_synthetic_store
from envs.frames import square_and_resize


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def frames_of(num_frames: int, seed: int, height: int = 24, width: int = 40) -> np.ndarray:
    """uint8 [T, H, W, 3], not square: squares moving over a background, cropped."""
    return moving_squares(num_frames, max(height, width), seed)[:, :height, :width].copy()


def write_actions_csv(fpath: Path, names: list[str]) -> None:
    fpath.write_text("frame,action\n" + "".join(f"{i},{name}\n" for i, name in enumerate(names)))


def episodes(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    store = EpisodeStore(root)
    return {
        r.episode_id: (
            store.read_frames(r.episode_id, 0, r.num_frames),
            store.read_actions(r.episode_id, 0, r.num_frames - 1),
            store.header(r.episode_id).info,
        )
        for r in store.episodes
    }


def one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    code = launcher_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def recordings(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder of four episodes: a lossless mp4, a folder of PNGs, a gif and a webm, each with its actions."""
    source = tmp_path / "my_game"
    source.mkdir()
    raw = {
        name: frames_of(num, seed) for name, num, seed in (("run1", 9, 1), ("run2", 6, 2), ("run10", 5, 3))
    }
    write_mp4(source / "run1.mp4", raw["run1"], fps=10, lossless=True)
    write_actions_csv(source / "run1.csv", ["RIGHT", "left", "UP", "jump", "RIGHT", "RIGHT", "DOWN", "NOOP"])
    (source / "run2").mkdir()
    for t, frame in enumerate(raw["run2"]):
        Image.fromarray(frame).save(source / "run2" / f"frame{t}.png")
    (source / "run2.jsonl").write_text(
        "\n".join(
            [json.dumps({"action": "RIGHT"}), '"LEFT"', '"UP"', json.dumps({"action": "jump"}), '"DOWN"']
        )
    )
    images = [Image.fromarray(frame) for frame in raw["run10"]]
    images[0].save(source / "run10.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
    write_actions_csv(source / "run10.csv", ["RIGHT"] * 4)
    (source / "notes.txt").write_text("not a recording: ignored")
    return source, raw


def test_videos_and_frame_images_import_with_their_actions(tmp_path, recordings, capsys):
    source, raw = recordings
    out = tmp_path / "datasets" / "mine"
    argv = ["import", f"source_dpath={source}", f"output_dpath={out}", "image_size=32", "+action_map.jump=UP"]
    assert launcher_main(argv) == 0
    printed = capsys.readouterr().out
    assert "imported 3 episodes (20 frames" in printed and "actions: NOOP, RIGHT, LEFT, UP, DOWN;" in printed
    stored = episodes(out)
    # natural order: run1, run2, run10; the game is the folder's name
    assert list(stored) == ["my_game__s000000", "my_game__s000001", "my_game__s000002"]
    run1_frames, run1_actions, run1_info = stored["my_game__s000000"]
    assert run1_frames.shape == (9, 32, 32, 3)
    expected = np.stack([square_and_resize(frame, 32) for frame in raw["run1"]])  # as generate resizes
    assert np.array_equal(run1_frames, expected)  # lossless mp4: exact
    assert [
        action_id(n) for n in ["RIGHT", "LEFT", "UP", "UP", "RIGHT", "RIGHT", "DOWN", "NOOP"]
    ] == run1_actions.tolist()
    assert run1_info["source"] == "run1.mp4" and run1_info["env_actions"] == [
        "NOOP",
        "RIGHT",
        "LEFT",
        "UP",
        "DOWN",
    ]
    run2_frames, run2_actions, _ = stored["my_game__s000001"]
    assert np.array_equal(
        run2_frames, np.stack([square_and_resize(f, 32) for f in raw["run2"]])
    )  # PNG: exact
    assert run2_actions.tolist() == [action_id(n) for n in ["RIGHT", "LEFT", "UP", "UP", "DOWN"]]
    gif_frames = stored["my_game__s000002"][0]
    assert gif_frames.shape == (5, 32, 32, 3)
    assert (
        np.abs(gif_frames.astype(int) - np.stack([square_and_resize(f, 32) for f in raw["run10"]])).mean() < 8
    )

    # a rerun skips what is there; a source whose episodes changed places is refused
    assert launcher_main(argv) == 0
    again = capsys.readouterr().out
    assert "imported 0 episodes" in again and "3 were already there" in again
    (source / "run0.mp4").write_bytes((source / "run1.mp4").read_bytes())
    (source / "run0.csv").write_text((source / "run1.csv").read_text())
    err = one_line_error(capsys, argv)
    assert "imported from run1.mp4, but it is run0.mp4 now" in err


def test_a_webm_and_integer_actions_import(tmp_path):
    import av

    source = tmp_path / "webm_game"
    source.mkdir()
    frames = frames_of(6, 4, 32, 32)
    with av.open(str(source / "a.webm"), mode="w") as container:
        stream = container.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    (source / "a.jsonl").write_text("0\n1\n2\n1\n0\n")
    out = tmp_path / "out"
    argv = [
        "import",
        f"source_dpath={source}",
        f"output_dpath={out}",
        "image_size=16",
        "action_names=[noop,left,right]",
    ]
    assert launcher_main(argv) == 0
    ((stored_frames, actions, info),) = episodes(out).values()
    assert stored_frames.shape == (6, 16, 16, 3) and actions.tolist() == [0, 2, 1, 2, 0]
    assert info["env_actions"] == ["NOOP", "LEFT", "RIGHT"]  # action_names: the game's own actions


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda s: write_actions_csv(s / "run2.csv", ["RIGHT"] * 3) or (s / "run2.jsonl").unlink(),
            "run2: 6 frames need 5 actions (one per transition), but its actions number 3",
        ),
        (lambda s: (s / "run1.mp4").write_bytes(b"not a video at all"), "run1.mp4 is not a readable video"),
        (
            lambda s: write_actions_csv(s / "run10.csv", ["RIGHT", "fly", "UP", "UP"]),
            "run10.csv line 3: unknown action 'fly'; use a vocabulary name",
        ),
        (lambda s: (s / "run10.csv").unlink(), "run10.gif has no actions beside it: write them to run10.csv"),
        (
            lambda s: (s / "run10.csv").write_text("action\n1\n2\n1\n2\n"),
            "action 1 is a number; say which action",
        ),
        (lambda s: (s / "run10.csv").write_text("key\nRIGHT\n"), "needs a header row with a column 'action'"),
        (lambda s: (s / "run2.jsonl").write_text('"RIGHT"\n{"action": \n'), "run2.jsonl line 2 is not JSON"),
        (
            lambda s: Image.new("RGB", (7, 5)).save(s / "run2" / "frame9.png"),
            "every frame of an episode needs one size",
        ),
        (lambda s: (s / "run2" / "frame3.png").write_bytes(b"broken"), "frame3.png is not a readable image"),
    ],
)
def test_bad_recordings_are_one_line_naming_the_file(tmp_path, recordings, capsys, damage, message):
    source, _ = recordings
    damage(source)
    err = one_line_error(
        capsys,
        ["import", f"source_dpath={source}", f"output_dpath={tmp_path / 'out'}", "+action_map.jump=UP"],
    )
    assert message in err


def test_import_settings_are_checked_first(tmp_path, capsys):
    assert "source_dpath= is required" in one_line_error(capsys, ["import", f"output_dpath={tmp_path}"])
    assert "is not a folder" in one_line_error(
        capsys, ["import", f"source_dpath={tmp_path / 'none'}", f"output_dpath={tmp_path / 'o'}"]
    )
    assert "no recordings in" in one_line_error(
        capsys, ["import", f"source_dpath={tmp_path}", f"output_dpath={tmp_path / 'o'}"]
    )
    assert "image_size=33 fits no model" in one_line_error(
        capsys, ["import", f"source_dpath={tmp_path}", f"output_dpath={tmp_path / 'o'}", "image_size=33"]
    )
    assert "game=a/b must be letters" in one_line_error(
        capsys, ["import", f"source_dpath={tmp_path}", f"output_dpath={tmp_path / 'o'}", "game=a/b"]
    )


def test_export_writes_viewable_mp4s_that_import_back_exactly(tmp_path, capsys):
    store = tmp_path / "store"
    write_synthetic_store(store, ["envA", "envB"], num_sessions=3, num_frames=7, image_size=16)
    videos = tmp_path / "videos"
    assert (
        launcher_main(
            ["export", f"store_dpath={store}", f"output_dpath={videos}", "env_names=[envA]", "max_episodes=2"]
        )
        == 0
    )
    assert "exported 2 episodes (14 frames)" in capsys.readouterr().out
    assert sorted(p.name for p in (videos / "envA").iterdir()) == [
        "envA__s000000.csv", "envA__s000000.mp4", "envA__s000001.csv", "envA__s000001.mp4",
    ]  # fmt: skip
    viewed = read_video(videos / "envA" / "envA__s000000.mp4")
    assert viewed.shape == (7, 64, 64, 3)  # scale 4 by default
    original = episodes(store)
    assert np.abs(viewed[:, ::4, ::4].astype(int) - original["envA__s000000"][0]).mean() < 12  # lossy, close

    exact = tmp_path / "exact"
    assert launcher_main(["export", f"store_dpath={store}", f"output_dpath={exact}", "lossless=true"]) == 0
    back = tmp_path / "back"
    for game in ("envA", "envB"):
        argv = ["import", f"source_dpath={exact / game}", f"output_dpath={back}", "image_size=16"]
        assert launcher_main(argv) == 0
    assert launcher_main(["export", f"store_dpath={store}", f"output_dpath={exact}", "lossless=true"]) == 0
    assert "exported 0 episodes" in capsys.readouterr().out  # a rerun skips the videos already there
    imported = episodes(back)
    assert set(imported) == set(original)
    for episode_id, (frames, actions, _) in original.items():
        assert np.array_equal(imported[episode_id][0], frames) and np.array_equal(
            imported[episode_id][1], actions
        )


def make_minari_dataset(env_id: str, dataset_id: str, num_episodes: int = 3, num_steps: int = 8) -> None:
    """A small Minari dataset of random play, written where MINARI_DATASETS_PATH points."""
    import gymnasium
    import minari
    from minari.data_collector import EpisodeBuffer

    from envs.gymnasium_env import make_gymnasium_env

    env = make_gymnasium_env(env_id)
    spec = env.spec
    buffers = []
    for episode in range(num_episodes):
        observation, _ = env.reset(seed=episode)
        env.action_space.seed(episode)
        observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
        for _ in range(num_steps):
            action = env.action_space.sample()
            observation, reward, terminated, truncated, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
        buffers.append(EpisodeBuffer(
            id=episode, seed=episode, observations=np.stack(observations), actions=np.asarray(actions),
            rewards=rewards, terminations=terminations, truncations=truncations,
        ))  # fmt: skip
    env.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minari asks for an author, a description, ...
        minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=spec, algorithm_name="random"
        )
    assert isinstance(gymnasium.spec(env_id), gymnasium.envs.registration.EnvSpec)


def test_a_minari_dataset_imports_with_its_envs_action_meanings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    make_minari_dataset("ALE/Breakout-v5", "test/breakout-random-v0")
    out = tmp_path / "datasets" / "breakout"
    argv = [
        "import",
        "config=minari",
        "dataset_id=test/breakout-random-v0",
        f"output_dpath={out}",
        "image_size=32",
    ]
    assert launcher_main(argv) == 0
    assert "imported 3 episodes (27 frames" in capsys.readouterr().out
    stored = episodes(out)
    assert list(stored)[0] == "gymnasium+ALE+Breakout-v5__s000000"  # the game as generate names it
    frames, actions, info = stored["gymnasium+ALE+Breakout-v5__s000000"]
    assert frames.shape == (9, 32, 32, 3) and info["env_actions"] == [
        "NOOP",
        "ACTION_PRIMARY",
        "RIGHT",
        "LEFT",
    ]
    assert set(actions.tolist()) <= {0, 5, 1, 2}
    import minari

    dataset = minari.load_dataset("test/breakout-random-v0")
    first = dataset[0]
    assert np.array_equal(frames, np.stack([square_and_resize(o, 32) for o in first.observations]))
    local_to_vocabulary = np.array([0, 5, 1, 2])
    assert np.array_equal(actions, local_to_vocabulary[np.asarray(first.actions)])
    # the same dataset by folder, under another name
    dpath = tmp_path / "minari" / "test" / "breakout-random-v0"
    argv = [
        "import",
        "config=minari",
        f"dataset_dpath={dpath}",
        f"output_dpath={tmp_path / 'by_path'}",
        "game=breakout",
    ]
    assert launcher_main(argv) == 0
    assert [r.env_name for r in EpisodeStore(tmp_path / "by_path").episodes] == ["breakout"] * 3


def test_minari_datasets_that_cannot_import_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    make_minari_dataset("CartPole-v1", "test/cartpole-random-v0", num_steps=5)
    out = f"output_dpath={tmp_path / 'out'}"
    err = one_line_error(capsys, ["import", "config=minari", "dataset_id=test/cartpole-random-v0", out])
    assert "observations are float32 [4], not frames" in err
    err = one_line_error(capsys, ["import", "config=minari", "dataset_id=test/none-v0", out])
    assert "no Minari dataset 'test/none-v0' on this machine (local datasets: test/cartpole-random-v0" in err
    err = one_line_error(capsys, ["import", "config=minari", f"dataset_dpath={tmp_path}", out])
    assert "is not a readable Minari dataset" in err
    err = one_line_error(capsys, ["import", "config=minari", out])
    assert "name one Minari dataset" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_training_reads_an_imported_store(tmp_path, recordings, capsys):
    from tests.test_training_e2e import FAST

    source, raw = recordings
    for index in range(3, 24):  # 24 episodes: the session split gives val episodes too
        frames = frames_of(8, index)
        write_mp4(source / f"more{index}.mp4", frames, fps=10)
        write_actions_csv(source / f"more{index}.csv", ["RIGHT", "LEFT"] * 3 + ["UP"])
    out = tmp_path / "datasets" / "mine"
    assert (
        launcher_main(
            [
                "import",
                f"source_dpath={source}",
                f"output_dpath={out}",
                "image_size=16",
                "+action_map.jump=UP",
            ]
        )
        == 0
    )
    assert "22 train, 1 val, 1 test episodes" in capsys.readouterr().out
    args = [
        "genie_redux", "train", "config=tokenizer", *FAST, "train.dataset_name=mine",
        f"train.dataset_root_dpath={tmp_path / 'datasets'}", f"run_dpath={tmp_path / 'run'}",
        "train.num_train_steps=2", "train.validation.every_steps=2", "train.checkpoint.every_steps=2",
    ]  # fmt: skip
    assert launcher_main(args) == 0
    assert (tmp_path / "run" / "final_model").is_dir()
