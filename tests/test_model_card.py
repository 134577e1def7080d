"""Checkpoints as the ecosystem expects them: every saved world model carries a model card (README.md: kind,
preset, frame size, data, steps, its last validation and evaluation, the command that made it), and
`WorldModel.from_pretrained` takes a local folder or a hub repo id (offline here: a cached snapshot loads,
anything else is one line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState

from common.launcher import main as launcher_main
from data.store_synthetic import write_synthetic_store
from models.checkpoint import load_model, model_card_fpath, record_evaluation, save_checkpoint
from models.presets import build
from models.world_model import WorldModel


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def table_row(card: str, name: str) -> str:
    (row,) = [line for line in card.splitlines() if line.startswith(f"| {name} |")]
    return row.split("|")[2].strip()


@pytest.fixture
def guided_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    extra = {
        "step": 7,
        "trained_on": {
            "store_dpath": "/data/block",
            "games": ["a", "b"],
            "train_episodes": 9,
            "train_frames": 180,
        },
        "last_validation": {"step": 6, "val/loss": 2.5, "val/eval_psnr": 21.25},
        "command": "python run.py genie_redux train config=genie_redux_guided_cpu",
    }
    return save_checkpoint(build("genie_redux_guided", "tiny"), tmp_path / "run" / "best_model", extra)


def test_a_saved_world_model_carries_its_card(guided_checkpoint):
    card = model_card_fpath(guided_checkpoint).read_text()
    assert front_matter(card) == {
        "library_name": "genie-redux",
        "tags": ["world-model", "genie", "genie-redux-guided"],
    }
    assert table_row(card, "kind") == "`genie_redux_guided`" and table_row(card, "preset") == "`tiny`"
    assert table_row(card, "frame size").startswith("16 x 16 px, patch 4, 16-frame windows")
    params = sum(p.numel() for p in load_model(guided_checkpoint).parameters())
    assert table_row(card, "parameters") == f"{params / 1e6:.2f} M"
    assert table_row(card, "trained on") == "`/data/block`: 9 training episodes, 180 frames of 2 games (a, b)"
    assert table_row(card, "steps") == "7"
    assert table_row(card, "made by") == "`python run.py genie_redux train config=genie_redux_guided_cpu`"
    assert "## Last validation (step 6)" in card and table_row(card, "val/eval_psnr") == "21.25"
    assert "8 named actions" in table_row(card, "actions")


def test_an_evaluation_is_added_to_the_card_and_nothing_else_changes(guided_checkpoint):
    config_bytes = (guided_checkpoint / "config.yaml").read_bytes()
    weights_bytes = (guided_checkpoint / "model.safetensors").read_bytes()
    evaluation = {
        "metrics": {"replication/psnr": 24.5, "replication/ssim": 0.75},
        "dataset": "/d",
        "split": "test",
    }
    record_evaluation(guided_checkpoint.parent, evaluation)  # a run folder names its best_model
    card = model_card_fpath(guided_checkpoint).read_text()
    assert "## Last evaluation" in card and table_row(card, "replication/psnr") == "24.5"
    assert "## Last validation (step 6)" in card  # still there
    assert (guided_checkpoint / "config.yaml").read_bytes() == config_bytes
    assert (guided_checkpoint / "model.safetensors").read_bytes() == weights_bytes


def test_a_checkpoint_saved_before_cards_loads_and_gets_one_when_evaluated(guided_checkpoint):
    model_card_fpath(guided_checkpoint).unlink()
    config = yaml.safe_load((guided_checkpoint / "config.yaml").read_text())
    del config["num_parameters"]
    config["extra"] = {"step": 3}
    (guided_checkpoint / "config.yaml").write_text(yaml.safe_dump(config))
    assert WorldModel.from_pretrained(guided_checkpoint).num_actions == 8
    record_evaluation(guided_checkpoint, {"metrics": {"replication/psnr": 20.0}})
    card = model_card_fpath(guided_checkpoint).read_text()
    assert table_row(card, "trained on") == "not recorded" and table_row(card, "steps") == "3"


def test_from_pretrained_takes_a_checkpoint_or_a_run_folder(guided_checkpoint):
    direct = WorldModel.from_pretrained(guided_checkpoint)
    from_run = WorldModel.from_pretrained(str(guided_checkpoint.parent))
    reference = WorldModel.from_checkpoint(guided_checkpoint)
    for model in (direct, from_run):
        for (name, tensor), (_, expected) in zip(
            model.model.state_dict().items(), reference.model.state_dict().items()
        ):
            assert torch.equal(tensor, expected), name


def test_a_hub_repo_id_offline_is_one_line(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError) as error:
        WorldModel.from_pretrained("someone/some-world-model", cache_dpath=tmp_path / "cache")
    message = str(error.value)
    assert "\n" not in message and message.startswith("cannot get hub repo someone/some-world-model")
    assert "hf download someone/some-world-model --local-dir DIR" in message
    with pytest.raises(ValueError, match="neither a folder on this machine nor a hub repo id"):
        WorldModel.from_pretrained(tmp_path / "no" / "such" / "folder")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # the client not installed
    with pytest.raises(ValueError, match=r"needs huggingface_hub \(pip install huggingface_hub\)"):
        WorldModel.from_pretrained("someone/some-world-model")


def test_a_hub_snapshot_in_the_cache_loads_offline(monkeypatch, tmp_path, guided_checkpoint):
    """A repo the hub client downloaded before: its cache layout (models--owner--name/refs, snapshots/<commit>)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dpath = tmp_path / "cache" / "models--someone--block-world-model"
    snapshot = repo_dpath / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for fpath in guided_checkpoint.iterdir():
        (snapshot / fpath.name).write_bytes(fpath.read_bytes())
    (repo_dpath / "refs").mkdir()
    (repo_dpath / "refs" / "main").write_text(commit)
    world_model = WorldModel.from_pretrained("someone/block-world-model", cache_dpath=tmp_path / "cache")
    reference = WorldModel.from_checkpoint(guided_checkpoint)
    assert torch.equal(world_model.model.action_embed.weight, reference.model.action_embed.weight)


@pytest.mark.slow
def test_training_and_evaluation_write_the_card(tmp_path):
    from tests.test_training_e2e import FAST

    write_synthetic_store(
        tmp_path / "squares", ["envA", "envB"], num_sessions=20, num_frames=24, image_size=16
    )
    common = [*FAST, f"train.dataset_root_dpath={tmp_path}", "train.num_train_steps=2",
              "train.validation.every_steps=2", "train.checkpoint.every_steps=2"]  # fmt: skip
    tokenizer = ["genie_redux", "train", "config=tokenizer", *common, f"run_dpath={tmp_path / 'tok'}"]
    assert launcher_main(tokenizer) == 0
    guided = ["genie_redux", "train", "config=genie_redux_guided", *common, f"run_dpath={tmp_path / 'dyn'}",
              f"tokenizer_dpath={tmp_path / 'tok'}", "train.checkpoint.best_metric=val/loss", "train.checkpoint.best_mode=min"]  # fmt: skip
    assert launcher_main(guided) == 0
    metrics = [json.loads(line) for line in (tmp_path / "dyn" / "metrics.jsonl").read_text().splitlines()]
    validation = [m for m in metrics if any(k.startswith("val/") for k in m)][-1]
    for dpath in (
        tmp_path / "dyn" / "best_model",
        tmp_path / "dyn" / "final_model",
        tmp_path / "tok" / "final_model",
    ):
        card = model_card_fpath(dpath).read_text()
        assert table_row(card, "steps") == "2" and table_row(card, "preset") == "`tiny`"
        assert "2 games (envA, envB)" in table_row(card, "trained on")
        assert table_row(card, "made by").startswith("`python run.py genie_redux train config=")
    card = model_card_fpath(tmp_path / "dyn" / "final_model").read_text()
    assert table_row(card, "val/loss") == f"{validation['val/loss']:.4g}"
    step_card = model_card_fpath(
        next((tmp_path / "dyn" / "checkpoints").glob("step_*")) / "model"
    ).read_text()
    assert table_row(step_card, "kind") == "`genie_redux_guided`"

    evaluate = ["genie_redux", "eval", "config=genie_redux_guided", f"eval.model_dpath={tmp_path / 'dyn'}",
                f"train.dataset_root_dpath={tmp_path}", "train.dataset_name=squares", "eval.num_sequences=2",
                "eval.inference_steps=1", "eval.batch_size=2", "eval.num_workers=0", "eval.num_first_frames=1",
                "eval.sample_num_frames=3", "eval.delta_psnr_frame=2", f"eval.output_dpath={tmp_path / 'eval'}"]  # fmt: skip
    assert launcher_main(evaluate) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    card = model_card_fpath(tmp_path / "dyn" / "best_model").read_text()
    assert (
        "## Last evaluation" in card and "`python run.py genie_redux eval config=genie_redux_guided" in card
    )
    assert table_row(card, "replication/psnr") == f"{results['metrics']['psnr']:.4g}"
