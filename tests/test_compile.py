"""torch.compile (inductor, C++ codegen through gcc) on CPU against eager: the tiny tokenizer trained
through the trainer with train.compile=true, a tiny GenieRedux-G training step, and cached generation
through WorldModel(compile=True).

Tolerances: compiled kernels reorder fp32 reductions, so losses match to 1e-4 relative, gradients to
rtol 1e-3 / atol 1e-5, weights after two AdamW steps to rtol 1e-3 / atol 1e-4 for >= 99.9 % of their
elements (Adam divides by the gradient's running size, so an element whose gradient is ~0 moves by
lr-sized steps whose sign the last digits decide: measured 2e-5 on the recency bias, and a spatial-bias
bias beyond 1e-4 in one CI run), generated frames to 1e-4 with >= 99 % of the
greedy tokens equal.
`fallback_random` makes the compiled graph draw the dynamics' masks from the eager RNG, so both see
the same masks. Each compile takes minutes on a shared 2-core CPU: these are slow tests.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config
from accelerate.state import AcceleratorState

from models.presets import build

pytestmark = pytest.mark.slow
# one block per stack: compile time grows with the unrolled graph (1 block: 65 s, 2 blocks: 87 s for the
# guided training step here), and one block holds every kind of layer the preset has
ONE_BLOCK = {"tokenizer": {"num_encoder_blocks": 1, "num_decoder_blocks": 1}, "dynamics": {"num_blocks": 1}}
ONE_BLOCK_TOKENIZER = ("+model_overrides.num_encoder_blocks=1", "+model_overrides.num_decoder_blocks=1")


@pytest.fixture(autouse=True)
def eager_random_in_compiled_graphs():
    torch.set_num_threads(1)
    with inductor_config.patch(fallback_random=True):
        yield
    torch._dynamo.reset()


def test_the_trainer_with_compile_matches_eager_and_saves_loadable_checkpoints(tmp_path):
    from data.store_synthetic import write_synthetic_store
    from models.checkpoint import final_model_dpath, load_model
    from tests.test_training_e2e import FAST, losses, train

    lr_max = next(float(arg.split("=")[1]) for arg in FAST if arg.startswith("train.optimizer.lr_max="))

    write_synthetic_store(tmp_path / "squares", ["envA"], num_sessions=6, num_frames=12, image_size=16)
    common = ("train.num_train_steps=2", "train.validation.every_steps=0", "train.checkpoint.every_steps=2")
    runs = {}
    for mode in ("eager", "compiled"):
        try:
            train("tokenizer", tmp_path / mode, tmp_path, *common, *ONE_BLOCK_TOKENIZER,
                  f"train.compile={mode == 'compiled'}")  # fmt: skip
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)
        runs[mode] = (losses(tmp_path / mode), load_model(final_model_dpath(tmp_path / mode), "cpu"))
    (eager_losses, eager_model), (compiled_losses, compiled_model) = runs["eager"], runs["compiled"]
    assert list(compiled_losses) == [1, 2]
    for step, loss in eager_losses.items():
        assert abs(compiled_losses[step] - loss) <= 1e-4 * abs(loss), step
    compiled_weights = compiled_model.state_dict()  # plain names: the checkpoint holds no compile wrapper
    assert compiled_weights.keys() == eager_model.state_dict().keys()
    num_close = num_elements = 0
    for name, weight in eager_model.state_dict().items():
        if not weight.is_floating_point():  # buffers such as flags: equal or wrong
            assert torch.equal(compiled_weights[name], weight), name
            continue
        difference = (compiled_weights[name] - weight).abs()
        # AdamW moves an element by at most ~lr per step whatever its gradient, so two runs can differ by
        # 2 * lr * steps where a ~0 gradient's sign is decided by the last digits (seen on spatial-bias
        # biases); a compile that broke the gradients would move most elements differently
        assert float(difference.max()) <= 2 * lr_max * 2 + 1e-6, name
        num_close += int((difference <= 1e-4 + 1e-3 * weight.abs()).sum())
        num_elements += weight.numel()
    assert num_close >= 0.999 * num_elements, (num_close, num_elements)


def test_a_compiled_guided_training_step_matches_eager():
    frames = torch.rand(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # [B, T, 3, H, W]
    actions = torch.randint(0, 7, (2, 3), generator=torch.Generator().manual_seed(1))  # [B, T-1]
    results = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = build("genie_redux_guided", "tiny", **ONE_BLOCK).train()
        runner = torch.compile(model) if mode == "compiled" else model
        torch.manual_seed(2)  # the same masks
        loss = runner(frames, actions).loss
        loss.backward()
        results[mode] = (
            float(loss.detach()),
            {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
        )
    (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results["eager"], results["compiled"]
    assert abs(compiled_loss - eager_loss) <= 1e-4 * abs(eager_loss)
    assert compiled_grads.keys() == eager_grads.keys()
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_compiled_cached_generation_matches_eager():
    from models.world_model import WorldModel

    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny", **ONE_BLOCK)
    g = torch.Generator().manual_seed(1)
    prime = torch.rand(2, 3, 3, 16, 16, generator=g)  # [B, T0, 3, H, W]
    prime_actions, actions = (
        torch.randint(0, 7, (2, 2), generator=g),
        torch.randint(0, 7, (2, 4), generator=g),
    )
    out = {}
    for compiled in (False, True):
        wm = WorldModel(model, compile=compiled)
        frames = wm.rollout(prime, actions, steps=2, temperature=0.0, prime_actions=prime_actions)
        out[compiled] = (frames, wm.token_history[:, -4:].clone())
    (eager_frames, eager_tokens), (compiled_frames, compiled_tokens) = out[False], out[True]
    assert (compiled_tokens == eager_tokens).float().mean() >= 0.99
    torch.testing.assert_close(compiled_frames, eager_frames, rtol=0, atol=1e-4)
