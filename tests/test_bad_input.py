"""Bad input and damaged files: one line naming the fix and a non-zero exit, or, on resume, a warning
and the newest checkpoint that loads. Nothing here may end in a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState

from common.launcher import main as launcher_main
from data.store_synthetic import write_synthetic_store
from tests.test_training_e2e import FAST, losses, train
from training import checkpointing as ckpt
from training import cli

REPO_DPATH = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stores")
    write_synthetic_store(root / "squares", ["envA", "envB"], num_sessions=10, num_frames=24, image_size=16)
    write_synthetic_store(root / "squares32", ["envA"], num_sessions=6, num_frames=24, image_size=32)
    return root


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def train_args(store_root: Path, run_dpath: Path, *extra: str) -> list[str]:
    return [
        "config=tokenizer",
        *FAST,
        f"train.dataset_root_dpath={store_root}",
        f"run_dpath={run_dpath}",
        *extra,
    ]


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the launcher in-process; it must exit 2 with exactly one line on stderr."""
    capsys.readouterr()  # drop what earlier steps of the test printed
    code = launcher_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=0", "train.batch_size=0 must be >= 1"),
        ("train.num_train_steps=-5", "train.num_train_steps=-5 must be >= 1"),
        ("train.grad_accum=0", "train.grad_accum=0 must be >= 1"),
        ("train.optimizer.lr_max=0.0", "lr_max"),
        ("train.num_frames=1", "train.num_frames=1 must be >= 2"),
    ],
)
def test_impossible_training_values_stop_before_anything_is_written(
    capsys, store_root, tmp_path, override, message
):
    err = one_line_error(
        capsys, ["genie_redux", "train", *train_args(store_root, tmp_path / "run", override)]
    )
    assert message in err
    assert not (tmp_path / "run" / "final_model").exists()


def test_unwritable_run_and_eval_folders_are_one_line(capsys, store_root, tmp_path, tiny_checkpoints):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    err = one_line_error(capsys, ["genie_redux", "train", *train_args(store_root, blocker / "run")])
    assert "cannot create run_dpath=" in err
    err = one_line_error(
        capsys,
        ["genie_redux", "eval", "config=genie_redux_guided", f"train.dataset_root_dpath={store_root}",
         "train.dataset_name=squares", f"eval.model_dpath={tiny_checkpoints['genie_redux_guided']}",
         f"eval.output_dpath={blocker / 'eval'}"],
    )  # fmt: skip
    assert "cannot create eval.output_dpath=" in err


def test_stack_help_lists_the_configs_and_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher_main(["generate", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "retro_act/pretrain" in out and "n_sessions" in out and "synthetic/block" in out


def tiny_tokenizer_run(store_root: Path, run_dpath: Path, *extra: str) -> Path:
    train("tokenizer", run_dpath, store_root, "train.num_train_steps=4", "train.checkpoint.every_steps=2",
          "train.validation.every_steps=0", *extra)  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)
    return run_dpath


def truncate(fpath: Path) -> None:
    fpath.write_bytes(fpath.read_bytes()[: fpath.stat().st_size // 2])


def test_truncated_weights_are_one_line_wherever_they_are_loaded(capsys, store_root, tmp_path):
    run = tiny_tokenizer_run(store_root, tmp_path / "tok")
    truncate(run / "final_model" / "model.safetensors")
    err = one_line_error(
        capsys,
        ["genie_redux", "train", "config=genie_redux_guided", *FAST, f"train.dataset_root_dpath={store_root}",
         f"run_dpath={tmp_path / 'dyn'}", f"tokenizer_dpath={run / 'final_model'}"],
    )  # fmt: skip
    assert "model.safetensors is damaged or missing" in err and str(run / "final_model") in err
    err = one_line_error(
        capsys,
        ["genie_redux", "eval", "config=tokenizer", f"train.dataset_root_dpath={store_root}",
         "train.dataset_name=squares", f"eval.model_dpath={run / 'final_model'}"],
    )  # fmt: skip
    assert "damaged or missing" in err


def with_nul_byte(fpath: Path) -> None:
    data = fpath.read_bytes()
    fpath.write_bytes(data[:10] + b"\x00" + data[10:])


def with_syntax_error(fpath: Path) -> None:
    fpath.write_text(fpath.read_text() + "tokenizer: [unclosed\n")


def with_bad_bytes(fpath: Path) -> None:
    fpath.write_bytes(b"\xff\xfe" + fpath.read_bytes())


def emptied(fpath: Path) -> None:
    fpath.write_text("")


# how a checkpoint's config.yaml gets damaged: each must read as damage, never as a traceback
CONFIG_DAMAGE = {
    "nul_byte": with_nul_byte,
    "syntax_error": with_syntax_error,
    "not_utf8": with_bad_bytes,
    "cut_in_half": truncate,
    "empty": emptied,
}


@pytest.mark.parametrize(
    ("damaged", "damage"),
    [
        ("model/model.safetensors", truncate),
        ("optimizer.safetensors", truncate),
        ("optimizer.json", truncate),
        ("trainer_state.json", truncate),
        *[("model/config.yaml", how) for how in CONFIG_DAMAGE.values()],
    ],
    ids=[
        "weights",
        "optimizer",
        "optimizer_meta",
        "trainer_state",
        *[f"config_{name}" for name in CONFIG_DAMAGE],
    ],
)
def test_resume_skips_a_damaged_newest_checkpoint(store_root, tmp_path, damaged, damage):
    run = tiny_tokenizer_run(store_root, tmp_path / "tok")
    assert ckpt.completed_steps(run / "checkpoints") == [2, 4]
    damage(run / "checkpoints" / ckpt.step_dname(4) / damaged)
    (run / "final_model").rename(tmp_path / "old_final")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train("tokenizer", run, store_root, "train.num_train_steps=5", "train.checkpoint.every_steps=2",
                        "train.validation.every_steps=0")  # fmt: skip
    assert any("step_0000004" in str(w.message) and "damaged" in str(w.message) for w in caught)
    assert summary["step"] == 5 and set(losses(run)) >= {3, 4, 5}  # steps 3-4 redone from step 2


def test_a_run_saved_with_a_pickle_free_torch_optimizer_file_still_resumes(store_root, tmp_path):
    """Runs saved before the optimizer was split into safetensors + JSON have optimizer.pt (tensors and plain
    containers, read with weights_only=True): they resume exactly as a run saved today."""
    import torch

    from common.state_files import load_tensors

    run = tiny_tokenizer_run(store_root, tmp_path / "tok")
    step = run / "checkpoints" / ckpt.step_dname(4)
    tensors = load_tensors(step / ckpt.OPTIMIZER_TENSORS_FNAME)
    meta = json.loads((step / ckpt.OPTIMIZER_META_FNAME).read_text())
    state: dict = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    torch.save({"state": state, "param_groups": meta["param_groups"]}, step / ckpt.LEGACY_OPTIMIZER_FNAME)
    (step / ckpt.OPTIMIZER_TENSORS_FNAME).unlink()
    (step / ckpt.OPTIMIZER_META_FNAME).unlink()
    assert ckpt.damage(step, 0) is None and ckpt.is_legacy_optimizer(step)
    summary = train("tokenizer", run, store_root, "train.num_train_steps=5", "train.checkpoint.every_steps=2",
                    "train.validation.every_steps=0")  # fmt: skip
    assert summary["step"] == 5 and 5 in losses(run)


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """An untrained tiny tokenizer and GenieRedux-G at 16 px (the `squares` store's size)."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.presets import build

    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    return {
        kind: save_checkpoint(build(kind, "tiny"), root / kind)
        for kind in ("tokenizer", "genie_redux_guided")
    }


def damaged_copy(checkpoint: Path, into: Path, damage) -> Path:  # noqa: ANN001
    copy = into / checkpoint.name
    shutil.copytree(checkpoint, copy)
    damage(copy / "config.yaml")
    return copy


def loading_commands(
    store_root: Path, tmp_path: Path, tokenizer: Path, world_model: Path
) -> dict[str, list[str]]:
    """Every place a user names a checkpoint, as a launcher command."""
    data = [f"train.dataset_root_dpath={store_root}", "train.dataset_name=squares"]
    return {
        "eval.model_dpath": ["genie_redux", "eval", "config=tokenizer", *data, f"eval.model_dpath={tokenizer}",
                             f"eval.output_dpath={tmp_path / 'eval'}"],
        "tokenizer_dpath": ["genie_redux", "train", "config=genie_redux_guided", *FAST, *data,
                            f"run_dpath={tmp_path / 'dyn'}", f"tokenizer_dpath={tokenizer}"],
        "model_dpath": ["genie_redux", "train", "config=tokenizer", *FAST, *data, f"run_dpath={tmp_path / 'ft'}",
                        f"model_dpath={tokenizer}"],
        "play": ["play", f"model_dpath={world_model}", f"dataset_dpath={store_root / 'squares'}"],
    }  # fmt: skip


@pytest.mark.parametrize("damage", CONFIG_DAMAGE.values(), ids=CONFIG_DAMAGE.keys())
@pytest.mark.parametrize("where", ["eval.model_dpath", "tokenizer_dpath", "model_dpath", "play"])
def test_a_checkpoint_config_that_is_not_yaml_is_one_line_naming_the_file(
    capsys, store_root, tmp_path, tiny_checkpoints, where, damage
):
    tokenizer = damaged_copy(tiny_checkpoints["tokenizer"], tmp_path, damage)
    world_model = damaged_copy(tiny_checkpoints["genie_redux_guided"], tmp_path, damage)
    command = loading_commands(store_root, tmp_path, tokenizer, world_model)[where]
    err = one_line_error(capsys, command)
    damaged = world_model if where == "play" else tokenizer
    assert str(damaged / "config.yaml") in err and "damaged" in err, err
    assert not any((tmp_path / name).exists() for name in ("eval", "dyn", "ft"))  # nothing written


def test_tokenizer_of_another_frame_size_is_one_line(capsys, store_root, tmp_path):
    run = tiny_tokenizer_run(store_root, tmp_path / "tok")  # 16 px
    err = one_line_error(
        capsys,
        ["genie_redux", "train", "config=genie_redux_guided", *FAST, f"train.dataset_root_dpath={store_root}",
         "train.dataset_name=squares32", f"run_dpath={tmp_path / 'dyn'}", f"tokenizer_dpath={run / 'final_model'}"],
    )  # fmt: skip
    assert "16 px" in err and "32 px" in err


def run_summary(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data.episode_store", "summary", str(root)],
        capture_output=True, text=True, cwd=REPO_DPATH,
    )  # fmt: skip


def test_damaged_episodes_are_counted_by_training_and_named_by_the_store_summary(capsys, tmp_path):
    root = tmp_path / "stores"
    write_synthetic_store(root / "squares", ["envA", "envB"], num_sessions=10, num_frames=24, image_size=16)
    flipped, cut = sorted((root / "squares").rglob("*.gre"))[:2]
    data = bytearray(flipped.read_bytes())
    data[-40] ^= 0xFF  # one flipped byte inside the last zstd chunk: same size, so only decoding finds it
    flipped.write_bytes(bytes(data))
    truncate(cut)  # cut by hand: the store leaves it out when it opens
    result = run_summary(root / "squares")
    assert result.returncode == 1 and "2 damaged" in result.stdout, result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"damaged: {cut.stem}: ") and "truncated" in line for line in lines)
    assert any(line.startswith(f"damaged: {flipped.stem}: ") for line in lines)
    assert "1 unreadable at open, 1 failed to decode" in result.stdout
    assert "set aside" not in result.stdout  # no writer set anything aside: a hand-cut file is not that
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main("train", train_args(root, tmp_path / "run", "train.num_train_steps=30",
                                            "train.validation.every_steps=0", "train.balanced=false"))  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "1 unreadable when the store was opened" in out  # counted although no read reached it
    assert f"python -m data.episode_store summary {root / 'squares'}" in out


def test_the_store_summary_names_files_a_writer_set_aside(tmp_path):
    from data.episode_store import rebuild_index

    root = tmp_path / "squares"
    write_synthetic_store(root, ["envA"], num_sessions=4, num_frames=24, image_size=16)
    truncate(sorted(root.rglob("*.gre"))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuild_index(root)  # a writer's repair renames the unreadable file aside
    result = run_summary(root)
    assert result.returncode == 0 and "0 damaged" in result.stdout, result.stdout
    assert "1 episode files set aside by a writer's repair" in result.stdout


def test_the_store_summary_of_a_missing_store_is_one_line(tmp_path):
    result = run_summary(tmp_path / "nonexistent")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no episode store at"), lines


def test_a_second_generate_on_the_same_shard_is_one_line(capsys, tmp_path):
    from data_generation.generator import generation_lock

    out = tmp_path / "block"
    out.mkdir()
    with generation_lock(out, shard_index=0):
        err = one_line_error(
            capsys, ["generate", "config=synthetic/block", "n_sessions=2", f"output_dpath={out}"]
        )
    assert "another generate run" in err and "shard_index" in err


def broken_yaml_files(dpath: Path) -> dict[str, Path]:
    """One broken YAML file per way of breaking one (what a text editor or a bad copy leaves)."""
    dpath.mkdir(parents=True, exist_ok=True)
    contents = {
        "unclosed_list": b"train:\n  batch_size: [1, 2\n  lr: 3\n",
        "bad_indent": b"train: 1\n   batch_size: 2\n",
        "nul_byte": b"train:\n  batch_size: 2\x00\n",
        "not_utf8": b"train:\n  batch_size: \xff\xfe\n",
        "tab_indent": b"train:\n\tbatch_size: 2\n",
    }
    files = {name: dpath / f"{name}.yaml" for name in contents}
    for name, fpath in files.items():
        fpath.write_bytes(contents[name])
    return files


@pytest.mark.parametrize("name", ["unclosed_list", "bad_indent", "nul_byte", "not_utf8", "tab_indent"])
def test_a_config_that_is_not_yaml_is_one_line_naming_the_file(capsys, tmp_path, name):
    fpath = broken_yaml_files(tmp_path)[name]
    err = one_line_error(capsys, ["genie_redux", "train", f"config={fpath}"])
    assert f"{fpath} is not valid YAML (" in err and "fix that file" in err, err


@pytest.fixture
def broken_configs_dpath(tmp_path, monkeypatch) -> Path:
    """A copy of configs/ the training stack reads, with one unrelated broken file in it."""
    dpath = tmp_path / "configs"
    shutil.copytree(cli.CONFIG_DPATH, dpath)
    (dpath / "my_broken.yaml").write_text("train:\n  batch_size: [1\n")
    monkeypatch.setattr(cli, "CONFIG_DPATH", dpath)
    return dpath


def test_a_broken_file_in_configs_is_named_and_does_not_break_the_others(capsys, broken_configs_dpath):
    err = one_line_error(capsys, ["genie_redux", "train", "config=tokenizr"])
    assert "unknown config 'tokenizr' (did you mean tokenizer?)" in err
    err = one_line_error(capsys, ["genie_redux", "train", "config=my_broken"])
    assert f"{broken_configs_dpath / 'my_broken.yaml'} is not valid YAML (line 3" in err
    with pytest.raises(SystemExit) as exit_info:  # --help lists the configs despite the broken one
        launcher_main(["genie_redux", "train", "--help"])
    assert exit_info.value.code == 0 and "my_broken" in capsys.readouterr().out


def test_a_broken_partial_is_named_with_the_config_that_uses_it(capsys, broken_configs_dpath):
    (broken_configs_dpath / "_base.yaml").write_bytes(b"train:\n  seed: \x00\n")
    err = one_line_error(capsys, ["genie_redux", "train", "config=tokenizer", "train.batch_size=2"])
    assert f"{broken_configs_dpath / '_base.yaml'} is not valid YAML" in err
    assert "used by config=tokenizer" in err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["variant=foo"], "unknown variant (agent) 'foo'; choose one of: random"),
        (["image_size=33"], "image_size=33 fits no model"),
        (["image_size=33"], "use a multiple of 4, e.g. image_size=32 or image_size=36"),
        (["n_sessions=0"], "n_sessions must be >= 1"),
        (["num_shards=0"], "num_shards must be >= 1"),
        (["shard_index=5", "num_shards=2"], "shard_index must be in 0..1 with num_shards=2"),
        (["shard_index=-1"], "shard_index must be in 0..0"),
        (["n_workers=0"], "n_workers must be >= 1"),
        (["n_steps_max=0"], "n_steps_max must be >= 1"),
        (["agent.repeat_prob=1.5"], "agent.repeat_prob must be in [0, 1)"),
        (["+agent.speed=2"], "bad agent options"),
        (["variant=policy"], "variant=policy needs agent.checkpoint_dpath"),
    ],
)
def test_generate_checks_every_setting_before_a_lock_or_a_folder(capsys, tmp_path, overrides, message):
    out = tmp_path / "block"
    err = one_line_error(capsys, ["generate", "config=synthetic/block", f"output_dpath={out}", *overrides])
    assert message in err
    assert not out.exists()  # no .generate-shardNNN.lock, no empty shards/


def test_agent_training_with_no_envs_is_one_line(capsys, tmp_path):
    err = one_line_error(
        capsys, ["agent", "train", "collection.train.config.num_envs=0", f"run_dpath={tmp_path / 'run'}"]
    )
    assert "collection.train.config.num_envs must be >= 1 (got 0)" in err
    assert not (tmp_path / "run").exists()
