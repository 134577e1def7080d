"""MaskGIT dynamics: masking distribution, causality, config switches that matter, overfitting."""

from __future__ import annotations

import inspect

import pytest
import torch

from models.dynamics import DynamicsModel
from models.presets import KINDS, build, part_configs


def tiny_dynamics(**overrides) -> DynamicsModel:
    torch.manual_seed(0)
    return build("genie_redux_guided", "tiny", dynamics=overrides).dynamics


def random_inputs(model: DynamicsModel, batch: int = 2, frames: int = 5):
    torch.manual_seed(1)
    token_ids = torch.randint(0, model.config.codebook_size, (batch, frames, 4, 4))
    actions = torch.randn(batch, frames - 1, model.config.dim)
    return token_ids, actions


def test_mask_rate_is_uniform_between_half_and_one_per_sample_and_frame():
    model = tiny_dynamics()
    generator = torch.Generator().manual_seed(0)
    mask = model.sample_mask(torch.Size((2000, 4, 256)), torch.device("cpu"), generator)
    assert not mask[:, 0].any()  # first frame is context
    rates = mask[:, 1:].float().mean(-1).flatten()  # one rate per (sample, frame)
    assert rates.min() > 0.4 and rates.max() <= 1.0
    assert abs(rates.mean().item() - 0.75) < 0.01
    assert abs(rates.std().item() - 0.5 / 12**0.5) < 0.01  # U(0.5, 1) has std 0.144
    assert abs((rates < 0.625).float().mean().item() - 0.25) < 0.03  # quartiles of U(0.5, 1)


@pytest.mark.parametrize("conditioning", ["additive", "prepend"])
def test_dynamics_logits_are_causal_in_time(conditioning):
    model = tiny_dynamics(action_conditioning=conditioning).eval()
    token_ids, actions = random_inputs(model)
    frame_actions = model.frame_actions(actions)
    perturbed = token_ids.clone()
    perturbed[:, 3] = (perturbed[:, 3] + 1) % model.config.codebook_size
    base, changed = model.logits(token_ids, frame_actions), model.logits(perturbed, frame_actions)
    assert base.shape == (2, 5, 16, model.config.codebook_size)
    torch.testing.assert_close(changed[:, :3], base[:, :3])
    assert not torch.allclose(changed[:, 3:], base[:, 3:])
    later_action = frame_actions.clone()
    later_action[:, 4] += 1.0  # action a_3 conditions frame 4 only
    torch.testing.assert_close(model.logits(token_ids, later_action)[:, :4], base[:, :4])


def test_config_switches_change_the_model():
    default = tiny_dynamics().config  # the measured defaults (docs/models.md)
    assert (default.action_conditioning, default.tdce, default.token_input_skip) == ("additive", True, True)
    plain = tiny_dynamics(action_conditioning="additive", token_input_skip=False)
    prepend = tiny_dynamics(action_conditioning="prepend", token_input_skip=False)
    skip = tiny_dynamics(action_conditioning="additive", token_input_skip=True)
    names = {n for n, _ in plain.named_parameters()}
    assert {n for n, _ in prepend.named_parameters()} - names == {"action_token_type"}
    assert {n for n, _ in skip.named_parameters()} - names == {
        "code_proj.weight",
        "code_proj.bias",
        "mask_code",
    }
    with pytest.raises(ValueError, match="action_conditioning"):
        tiny_dynamics(action_conditioning="concat")
    with pytest.raises(ValueError, match="unknown dynamics config key"):
        part_configs("tiny", "genie_redux", {"dynamics": {"tdce_weigth": 2.0}})


def test_clean_context_training_conditions_each_frame_on_the_clean_past():
    """fraction 1: frame t's prediction sees the clean frames before it (as at inference), so what was
    masked in frame t-1 does not matter to it; fraction 0 (Genie's regime): it sees masked frames."""
    clean_model = tiny_dynamics(clean_context_fraction=1.0).eval()
    masked_model = tiny_dynamics(clean_context_fraction=0.0).eval()
    masked_model.load_state_dict(clean_model.state_dict())
    token_ids, actions = random_inputs(clean_model)
    frame_actions = clean_model.frame_actions(actions)
    mask = torch.zeros(2, 5, 16, dtype=torch.bool)
    mask[:, 1:, ::2] = True  # half of every frame after the first is masked
    inputs = torch.where(
        mask, torch.full_like(mask, clean_model.mask_id, dtype=torch.long), token_ids.flatten(2)
    )
    more_masked = inputs.clone()
    more_masked[:, 2, 1::2] = clean_model.mask_id  # frame 2 now fully masked
    clean = [
        clean_model.logits_clean_context(token_ids, x.view_as(token_ids), frame_actions)
        for x in (inputs, more_masked)
    ]
    torch.testing.assert_close(
        clean[0][:, 3:], clean[1][:, 3:]
    )  # later frames saw the clean frame 2 both times
    assert not torch.allclose(clean[0][:, 2], clean[1][:, 2])  # frame 2's own prediction did change
    genie = [masked_model.logits(x.view_as(token_ids), frame_actions) for x in (inputs, more_masked)]
    assert not torch.allclose(genie[0][:, 3:], genie[1][:, 3:])  # Genie's regime: the masking reaches on


def test_clean_context_fraction_splits_the_batch():
    model = tiny_dynamics(clean_context_fraction=0.5)
    token_ids, actions = random_inputs(model, batch=4)
    calls = []
    original_clean, original_plain = model.clean_context_features, model.transformer.forward
    model.clean_context_features = lambda *a: calls.append(("clean", a[0].shape[0])) or original_clean(*a)
    model.transformer.forward = lambda *a, **k: (
        calls.append(("masked", a[0].shape[0])) or original_plain(*a, **k)
    )
    out = model(token_ids, actions)
    assert calls == [("clean", 2), ("masked", 2)] and out.masked_logits.shape[0] == int(out.mask.sum())
    with pytest.raises(ValueError, match="clean_context_fraction"):
        tiny_dynamics(clean_context_fraction=1.5)


def test_context_noise_corrupts_only_the_visible_context_never_the_targets():
    """context_noise: each sample's visible tokens get a share ~ U(0, rate) of random codes (what a frame by
    frame rollout's own errors look like); the loss still asks for the true codes; 0 leaves training as it was."""
    model = tiny_dynamics(context_noise=0.5, clean_context_fraction=1.0)
    token_ids, actions = random_inputs(model, batch=64)
    flat = token_ids.flatten(2)
    noisy = model.noisy_context(flat, torch.Generator().manual_seed(0))
    changed = (noisy != flat).float().mean(dim=(1, 2))  # [B]: each sample's share
    assert 0.15 < float(changed.mean()) < 0.35  # E[U(0, 0.5)] = 0.25 (a random code can equal the old one)
    assert (
        float(changed.max()) <= 0.7 and float(changed.std()) > 0.05
    )  # per-sample rates up to 0.5 (80 tokens each)
    seen = {}
    original = model.clean_context_features

    def recording(clean, masked, frame_actions):
        seen["context"] = clean
        return original(clean, masked, frame_actions)

    model.clean_context_features = recording
    out = model(token_ids, actions)
    assert not torch.equal(seen["context"], token_ids)  # the context the model saw was noised
    masked_targets = flat[out.mask]
    # the loss is the cross-entropy against the clean tokens at the masked positions
    expected = torch.nn.functional.cross_entropy(out.masked_logits, masked_targets)
    torch.testing.assert_close(out.metrics["ce"], expected)
    # off: the same draws and the same loss as a model without the key
    off, plain = tiny_dynamics(context_noise=0.0), tiny_dynamics()
    torch.manual_seed(3)
    loss_off = off(token_ids, actions).loss
    torch.manual_seed(3)
    torch.testing.assert_close(loss_off, plain(token_ids, actions).loss)
    with pytest.raises(ValueError, match="context_noise"):
        tiny_dynamics(context_noise=1.5)


def test_tdce_is_zero_on_the_true_code_grows_with_the_distance_of_the_predicted_mass_and_has_gradient():
    model = tiny_dynamics(tdce=True)
    assert model.config.tdce_weight == 3.0  # upstream's lambda
    codes = torch.zeros(model.config.codebook_size, model.config.code_dim)
    codes[0, 0], codes[1, 0], codes[1, 1], codes[2, 0] = 1.0, 1.0, 1.0, -1.0  # cos to code 0: 1, 0.71, -1
    model.set_code_vectors(torch.nn.functional.normalize(codes + 1e-9, dim=-1))
    targets = torch.zeros(3, dtype=torch.long)
    logits = torch.full((3, model.config.codebook_size), -1e4)
    logits[0, 0] = logits[1, 1] = logits[2, 2] = 1e4  # all mass on code 0 (true), 1 (near), 2 (opposite)
    penalty = model.tdce_penalty(logits, targets)
    torch.testing.assert_close(penalty, torch.tensor([0.0, 1 - 2**-0.5, 2.0]), atol=1e-4, rtol=0)
    soft = torch.zeros(2, model.config.codebook_size, requires_grad=True)  # uniform mass: gradient flows
    model.tdce_penalty(soft, targets[:2]).sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    token_ids, actions = random_inputs(model)
    with_tdce = model(token_ids, actions, torch.Generator().manual_seed(0))
    expected = with_tdce.metrics["ce"] + 3.0 * with_tdce.metrics["tdce_penalty"]
    torch.testing.assert_close(with_tdce.loss.detach(), expected)
    with pytest.raises(ValueError, match="code vectors"):
        DynamicsModel(model.config)(token_ids, actions)  # a bare dynamics has no tokenizer's codes


def test_token_input_skip_feeds_the_tokenizers_code_vectors_into_the_input():
    model = build("genie_redux_guided", "tiny", dynamics={"token_input_skip": True})
    dynamics = model.dynamics
    codebook = model.tokenizer.quantizer.normalized_codebook()
    torch.testing.assert_close(dynamics.code_vectors, codebook)  # installed with the tokenizer
    seen = []
    dynamics.code_proj.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    token_ids = torch.randint(0, dynamics.config.codebook_size, (1, 2, 4, 4))
    token_ids[0, 1, 0, 0] = dynamics.mask_id
    skip = dynamics.code_input(token_ids.flatten(2))
    torch.testing.assert_close(seen[0][0, 0], codebook[token_ids[0, 0].flatten()])  # the codes, unchanged
    torch.testing.assert_close(skip[0, 1, 0], dynamics.mask_code)  # masked tokens: the learned mask vector
    other = model.tokenizer.quantizer.normalized_codebook().roll(1, dims=0)  # another tokenizer's codes
    dynamics.set_code_vectors(other)
    assert not torch.allclose(dynamics.code_input(token_ids.flatten(2))[0, 0], skip[0, 0])


def test_guided_model_checks_action_shape_and_range():
    model = build("genie_redux_guided", "tiny")
    frames = torch.rand(1, 3, 3, 16, 16)
    with pytest.raises(ValueError, match="needs actions"):
        model(frames)
    with pytest.raises(ValueError, match=r"action ids must be in \[0, 8\)"):
        model(frames, torch.tensor([[0, 9]]))
    out = model(frames, torch.tensor([[0, 7]]))
    out.loss.backward()
    assert out.latent_actions is None and model.action_embed.weight.grad is not None


@pytest.mark.slow
def test_tiny_dynamics_memorises_real_game_tokens_better_than_copying_the_last_frame():
    from tests.test_tokenizer import game_clip, overfit_tokenizer

    torch.set_num_threads(1)  # the overfit tokens and the training depend on the reduction order
    clip, actions = game_clip()  # CoinRun, 16 frames with the random agent's real actions
    # 64 codes: with the default 1024 every token of this 256-token clip is distinct and copying the
    # previous frame scores 0 %; with 64, codes repeat across frames (copying scores ~35 %)
    tokenizer = overfit_tokenizer(clip, num_steps=400, codebook_size=64)
    token_ids = tokenizer.encode(clip)  # [1, 16, 4, 4]
    # copying frame t-1's tokens: what a model that ignores the dynamics would score
    copy_accuracy = float((token_ids[:, 1:] == token_ids[:, :-1]).float().mean())
    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny", tokenizer=tokenizer)  # the trained tokenizer, frozen
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0
    )
    for _ in range(400):  # 200 steps: 0.91 with one thread, 1.0 with two (the overfit tokens differ)
        loss = model.dynamics(token_ids, model.embed_actions(actions)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model.dynamics(
            token_ids, model.embed_actions(actions), generator=torch.Generator().manual_seed(5)
        )
    accuracy = float(out.metrics["token_accuracy"])
    assert accuracy >= 0.95, out.metrics
    assert copy_accuracy <= 0.75, f"copy-last-frame already scores {copy_accuracy:.2f}: clip too static"
    assert accuracy >= copy_accuracy + 0.2, f"accuracy {accuracy:.2f} vs copy-last-frame {copy_accuracy:.2f}"


def test_build_takes_tokenizer_overrides_or_a_trained_tokenizer():
    with_overrides = build("genie_redux_guided", "tiny", tokenizer={"codebook_size": 64})
    assert with_overrides.tokenizer.config.codebook_size == 64
    assert with_overrides.dynamics.config.codebook_size == 64
    trained = build("tokenizer", "tiny", codebook_size=32)
    frozen = build("genie_redux_guided", "tiny", tokenizer=trained)
    assert frozen.tokenizer is trained and frozen.dynamics.config.codebook_size == 32


@pytest.mark.parametrize("kind", KINDS)
def test_every_trainable_kind_is_called_as_frames_and_actions(kind):
    """The trainer and validation call every kind the same way: model(frames, actions)."""
    torch.manual_seed(0)
    model = build(kind, "tiny")
    frames, actions = torch.rand(2, 3, 3, 16, 16), torch.randint(0, 7, (2, 2))
    output = model(frames, actions)
    assert output.loss.ndim == 0 and torch.isfinite(output.loss)
    assert inspect.signature(model.forward).parameters["actions"].default is None
    if kind == "tokenizer":  # actions carry nothing for the tokenizer: the same loss without them
        torch.testing.assert_close(model(frames).loss, output.loss)
