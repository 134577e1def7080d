"""Bad input and damaged files: one line naming the fix and a non-zero exit, or, on resume, a warning
and the newest checkpoint that loads. Nothing here may end in a traceback."""

from __future__ import annotations

import json
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


def test_unwritable_run_and_eval_folders_are_one_line(capsys, store_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    err = one_line_error(capsys, ["genie_redux", "train", *train_args(store_root, blocker / "run")])
    assert "cannot create run_dpath=" in err
    err = one_line_error(
        capsys,
        ["genie_redux", "eval", "config=genie_redux_guided", f"train.dataset_root_dpath={store_root}",
         "train.dataset_name=squares", f"eval.model_dpath={tmp_path}", f"eval.output_dpath={blocker / 'eval'}"],
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


@pytest.mark.parametrize("damaged", ["model/model.safetensors", "optimizer.safetensors", "optimizer.json"])
def test_resume_skips_a_damaged_newest_checkpoint(store_root, tmp_path, damaged):
    run = tiny_tokenizer_run(store_root, tmp_path / "tok")
    assert ckpt.completed_steps(run / "checkpoints") == [2, 4]
    truncate(run / "checkpoints" / ckpt.step_dname(4) / damaged)
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


def test_tokenizer_of_another_frame_size_is_one_line(capsys, store_root, tmp_path):
    run = tiny_tokenizer_run(store_root, tmp_path / "tok")  # 16 px
    err = one_line_error(
        capsys,
        ["genie_redux", "train", "config=genie_redux_guided", *FAST, f"train.dataset_root_dpath={store_root}",
         "train.dataset_name=squares32", f"run_dpath={tmp_path / 'dyn'}", f"tokenizer_dpath={run / 'final_model'}"],
    )  # fmt: skip
    assert "16 px" in err and "32 px" in err


def test_a_damaged_episode_is_counted_by_training_and_by_the_store_summary(capsys, tmp_path):
    root = tmp_path / "stores"
    write_synthetic_store(root / "squares", ["envA", "envB"], num_sessions=10, num_frames=24, image_size=16)
    episode = sorted((root / "squares").rglob("*.gre"))[0]
    data = bytearray(episode.read_bytes())
    data[-40] ^= 0xFF  # one flipped byte inside the last zstd chunk: same size, so only decoding finds it
    episode.write_bytes(bytes(data))
    result = subprocess.run(
        [sys.executable, "-m", "data.episode_store", "summary", str(root / "squares")],
        capture_output=True, text=True, cwd=REPO_DPATH,
    )  # fmt: skip
    assert result.returncode == 1 and "1 damaged" in result.stdout and episode.stem in result.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main("train", train_args(root, tmp_path / "run", "train.num_train_steps=30",
                                            "train.validation.every_steps=0", "train.balanced=false"))  # fmt: skip
    assert code == 0
    assert "reads met a damaged episode" in capsys.readouterr().out


def test_a_second_generate_on_the_same_shard_is_one_line(capsys, tmp_path):
    from data_generation.generator import generation_lock

    out = tmp_path / "block"
    out.mkdir()
    with generation_lock(out, shard_index=0):
        err = one_line_error(
            capsys, ["generate", "config=synthetic/block", "n_sessions=2", f"output_dpath={out}"]
        )
    assert "another generate run" in err and "shard_index" in err
