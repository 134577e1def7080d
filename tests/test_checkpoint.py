"""Checkpoints: save -> load gives identical outputs, no pickle, clear errors, atomic overwrite."""

from __future__ import annotations

import pytest
import torch
import yaml

from models.checkpoint import (
    best_model_dpath,
    final_model_dpath,
    find_checkpoint,
    load_model,
    save_checkpoint,
    step_model_dpath,
)
from models.presets import build
from models.world_model import WorldModel


@pytest.mark.parametrize("kind", ["tokenizer", "genie_redux", "genie_redux_guided"])
def test_save_load_gives_identical_outputs(tmp_path, kind):
    torch.manual_seed(0)
    model = build(kind, "tiny", dynamics={"tdce": True} if kind != "tokenizer" else None).eval()
    frames = torch.rand(1, 3, 3, 16, 16)
    save_checkpoint(model, tmp_path / "ckpt", {"step": 12})
    config = yaml.safe_load((tmp_path / "ckpt" / "config.yaml").read_text())
    assert config["kind"] == kind and config["preset"] == "tiny" and config["extra"] == {"step": 12}
    assert config["tokenizer"]["codebook_size"] == 1024  # the tiny preset's
    loaded = load_model(tmp_path / "ckpt", "cpu").eval()
    if kind == "tokenizer":
        torch.testing.assert_close(loaded.encode(frames), model.encode(frames))
        torch.testing.assert_close(loaded(frames).reconstruction, model(frames).reconstruction)
    else:
        assert loaded.dynamics.config.tdce
        actions = torch.tensor([[1, 2]])
        torch.manual_seed(0)
        a = model(frames, actions)
        torch.manual_seed(0)
        b = loaded(frames, actions)
        torch.testing.assert_close(b.masked_logits, a.masked_logits)


def test_world_model_from_checkpoint_reproduces_rollout(tmp_path):
    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny")
    save_checkpoint(model, tmp_path / "ckpt", {})
    frames, actions = torch.rand(1, 2, 3, 16, 16), torch.tensor([[3]])
    expected = WorldModel(model).rollout(frames, torch.tensor([[1, 2]]), steps=3, prime_actions=actions)
    got = WorldModel.from_checkpoint(tmp_path / "ckpt", "cpu").rollout(
        frames, torch.tensor([[1, 2]]), steps=3, prime_actions=actions
    )
    torch.testing.assert_close(got, expected)


def test_wrong_kind_image_size_and_missing_dir_errors(tmp_path):
    save_checkpoint(build("tokenizer", "tiny"), tmp_path / "tok", {})
    with pytest.raises(ValueError, match="holds a 'tokenizer' model, expected 'genie_redux'"):
        load_model(tmp_path / "tok", expected_kind="genie_redux")
    with pytest.raises(ValueError, match="trained at 16 px, expected 64 px"):
        load_model(tmp_path / "tok", expected_image_size=64)
    with pytest.raises(ValueError, match="needs genie_redux"):
        WorldModel.from_checkpoint(tmp_path / "tok")
    with pytest.raises(ValueError, match="not a model checkpoint"):
        load_model(tmp_path / "nothing")


def test_overwrite_is_atomic_and_leaves_no_temp_dirs(tmp_path):
    torch.manual_seed(0)
    first, second = build("tokenizer", "tiny"), build("tokenizer", "tiny")
    save_checkpoint(first, tmp_path / "ckpt", {"n": 1})
    save_checkpoint(second, tmp_path / "ckpt", {"n": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    loaded = load_model(tmp_path / "ckpt")
    torch.testing.assert_close(loaded.quantizer.codebook, second.quantizer.codebook)
    assert loaded.extra_config == {"n": 2}
    assert (tmp_path / "ckpt" / "model.safetensors").read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle


def test_genie_built_from_a_tokenizer_checkpoint_uses_its_weights(tmp_path):
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny", codebook_size=32)
    save_checkpoint(tokenizer, tmp_path / "tok", {})
    genie = build("genie_redux", "tiny", tokenizer=load_model(tmp_path / "tok", expected_kind="tokenizer"))
    assert genie.dynamics.config.codebook_size == 32
    torch.testing.assert_close(genie.tokenizer.quantizer.codebook, tokenizer.quantizer.codebook)
    assert not any(p.requires_grad for p in genie.tokenizer.parameters())


def test_loaded_dynamics_uses_the_code_vectors_of_its_own_tokenizer(tmp_path):
    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny", dynamics={"tdce": True, "token_input_skip": True})
    with torch.no_grad():
        model.tokenizer.quantizer.codebook.mul_(-1.0)  # as if trained: not what a fresh build starts with
    model.set_tokenizer(model.tokenizer)
    save_checkpoint(model, tmp_path / "ckpt", {})
    loaded = load_model(tmp_path / "ckpt")
    torch.testing.assert_close(loaded.dynamics.code_vectors, loaded.tokenizer.quantizer.normalized_codebook())
    torch.testing.assert_close(loaded.dynamics.code_vectors, model.dynamics.code_vectors)


def test_a_checkpoint_from_before_relative_time_fails_in_one_line(tmp_path, capsys):
    """Format 1 (absolute frame-index codes) must not load as a shape error or as silently wrong frames."""
    from common.launcher import main as launcher_main

    torch.manual_seed(0)
    save_checkpoint(build("genie_redux_guided", "tiny"), tmp_path / "old", {})
    config_fpath = tmp_path / "old" / "config.yaml"
    config = yaml.safe_load(config_fpath.read_text())
    del config["format_version"]  # what every checkpoint written before format 2 looks like
    config_fpath.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="has format 1 and this version reads format 2"):
        load_model(tmp_path / "old")
    from data.store_synthetic import write_synthetic_store

    write_synthetic_store(tmp_path / "syn", ["envA"], num_sessions=20, num_frames=16, image_size=16)
    code = launcher_main(["genie_redux", "eval", "config=genie_redux_guided", f"eval.model_dpath={tmp_path / 'old'}",
                          f"eval.output_dpath={tmp_path / 'eval'}", f"train.dataset_root_dpath={tmp_path}",
                          "train.dataset_name=syn"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "has format 1" in err, err


def test_a_checkpoint_saved_before_code_vectors_were_a_buffer_loads_and_rederives_them(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny").eval()
    save_checkpoint(model, tmp_path / "m")
    weights_fpath = tmp_path / "m" / "model.safetensors"
    weights = load_file(str(weights_fpath))
    expected = weights.pop("dynamics.code_vectors")
    save_file(weights, str(weights_fpath))  # as written before the buffer existed
    loaded = load_model(tmp_path / "m")
    assert torch.equal(loaded.dynamics.code_vectors, expected)
    weights.pop("dynamics.token_embed.weight")  # a genuinely missing weight still fails, naming it
    save_file(weights, str(weights_fpath))
    with pytest.raises(ValueError, match="missing dynamics.token_embed.weight"):
        load_model(tmp_path / "m")


def test_find_checkpoint_accepts_a_checkpoint_a_run_or_a_step_and_checks_the_kind(tmp_path):
    tokenizer = build("tokenizer", "tiny")
    run = tmp_path / "run"
    save_checkpoint(tokenizer, final_model_dpath(run), {})
    assert find_checkpoint(run) == final_model_dpath(run)  # no best_model/: the final one
    save_checkpoint(tokenizer, best_model_dpath(run), {})
    assert find_checkpoint(run, kind="tokenizer") == best_model_dpath(run)  # best_model/ first
    assert find_checkpoint(final_model_dpath(run)) == final_model_dpath(run)
    step = tmp_path / "checkpoints" / "step_0000002"
    save_checkpoint(tokenizer, step_model_dpath(step), {})
    assert find_checkpoint(step) == step_model_dpath(step)
    with pytest.raises(
        ValueError, match="holds a 'tokenizer' checkpoint, but this run needs a 'genie_redux'"
    ):
        find_checkpoint(run, kind="genie_redux")
    with pytest.raises(ValueError, match="is not a model checkpoint"):
        find_checkpoint(tmp_path / "nothing")
    # WorldModel.from_checkpoint goes through find_checkpoint too: a run directory is enough
    guided = build("genie_redux_guided", "tiny")
    save_checkpoint(guided, best_model_dpath(tmp_path / "dyn"), {})
    assert WorldModel.from_checkpoint(tmp_path / "dyn").num_actions == guided.num_actions
    with pytest.raises(ValueError, match="trained at 16 px, expected 32 px"):
        WorldModel.from_checkpoint(tmp_path / "dyn", expected_image_size=32)
