"""WorldModel inference API: cached == uncached, MaskGIT steps matter, seeds reproduce, API errors."""

from __future__ import annotations

import pytest
import torch

from models.maskgit import masked_fraction, maskgit_sample
from models.presets import build
from models.world_model import WorldModel


def tiny_world_model(kind: str = "genie_redux_guided", use_cache: bool = True) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(build(kind, "tiny"), use_cache=use_cache)


def prime(batch: int = 2, frames: int = 4):
    generator = torch.Generator().manual_seed(2)
    return torch.rand(batch, frames, 3, 16, 16, generator=generator), torch.randint(
        0, 7, (batch, frames - 1), generator=generator
    )


@pytest.mark.parametrize("kind", ["genie_redux", "genie_redux_guided"])
def test_cached_generation_equals_uncached_across_many_window_slides(kind):
    frames, prime_actions = prime()
    actions = torch.randint(0, 7, (2, 40), generator=torch.Generator().manual_seed(3))  # 4 + 40 >> 16 frames
    cached = tiny_world_model(kind, use_cache=True).rollout(
        frames, actions, steps=4, seed=7, prime_actions=prime_actions
    )
    uncached = tiny_world_model(kind, use_cache=False).rollout(
        frames, actions, steps=4, seed=7, prime_actions=prime_actions
    )
    assert cached.shape == (2, 40, 3, 16, 16)
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=1e-5)


def test_window_slides_by_dropping_cache_entries_so_state_stays_bounded():
    wm = tiny_world_model()
    frames, prime_actions = prime()
    wm.reset(frames, prime_actions)
    sizes = []
    for t in range(30):
        wm.step(torch.tensor([t % 7, (t + 1) % 7]), steps=1)
        sizes.append((wm.dynamics_cache.num_frames, wm.decoder_cache.num_frames, wm.token_history.shape[1]))
    # 4 prime frames + 30 generated: every cache and the history stop growing at the window (16 frames)
    assert sizes[0] == (5, 5, 5) and sizes[11] == (16, 16, 16) and set(sizes[11:]) == {(16, 16, 16)}


def test_maskgit_step_count_changes_the_sample_and_seed_reproduces_it():
    wm = tiny_world_model()
    frames, prime_actions = prime()
    actions = torch.tensor([[1, 2, 3], [4, 5, 6]])
    samples = {
        steps: wm.rollout(frames, actions, steps=steps, seed=0, prime_actions=prime_actions)
        for steps in (1, 8, 25)
    }
    assert not torch.equal(samples[1], samples[8]) and not torch.equal(samples[8], samples[25])
    torch.testing.assert_close(
        wm.rollout(frames, actions, steps=8, seed=0, prime_actions=prime_actions), samples[8]
    )
    assert not torch.equal(
        wm.rollout(frames, actions, steps=8, seed=1, prime_actions=prime_actions), samples[8]
    )


def test_an_annealed_temperature_samples_its_last_step_greedily():
    """anneal_temperature scales the token temperature by the share of steps left (upstream's one-go
    sampler): one step is then greedy whatever the temperature; more steps sample early and commit the
    last tokens by argmax."""
    logits = torch.randn(3, 20, 16, generator=torch.Generator().manual_seed(0))  # [B, N, K], fixed per token
    greedy = maskgit_sample(lambda ids: logits, 3, 20, 16, torch.device("cpu"), steps=1, temperature=0.0)[0]
    hot = maskgit_sample(lambda ids: logits, 3, 20, 16, torch.device("cpu"), steps=1, temperature=5.0,
                         generator=torch.Generator().manual_seed(1), anneal_temperature=True)[0]  # fmt: skip
    assert torch.equal(hot, greedy)
    fixed, annealed = (
        maskgit_sample(lambda ids: logits, 3, 20, 16, torch.device("cpu"), steps=4, temperature=5.0,
                       generator=torch.Generator().manual_seed(1), anneal_temperature=anneal)[0]
        for anneal in (False, True)
    )  # fmt: skip
    argmax = logits.argmax(-1)
    # at temperature 5 most tokens drawn at a fixed temperature miss the argmax; annealed, the tokens
    # committed at the last step (a cosine schedule leaves most for the late steps) are argmax
    assert (fixed == argmax).float().mean() < 0.5 < (annealed == argmax).float().mean()
    wm = tiny_world_model()
    frames, prime_actions = prime()
    actions = torch.tensor([[1, 2, 3], [4, 5, 6]])
    one_step = {anneal: wm.rollout(frames, actions, steps=1, temperature=3.0, prime_actions=prime_actions,
                                   anneal_temperature=anneal) for anneal in (False, True)}  # fmt: skip
    greedy_frames = wm.rollout(frames, actions, steps=1, temperature=0.0, prime_actions=prime_actions)
    assert torch.equal(one_step[True], greedy_frames) and not torch.equal(one_step[False], greedy_frames)


def test_step_returns_frames_and_logits_and_one_go_generates_jointly():
    wm = tiny_world_model()
    frames, prime_actions = prime()
    wm.reset(frames, prime_actions)
    result = wm.step(torch.tensor([0, 1]), steps=3, generator=torch.Generator().manual_seed(0))
    assert result.frames.shape == (2, 3, 16, 16) and result.token_logits.shape == (
        2,
        16,
        wm.model.tokenizer.config.codebook_size,
    )
    assert result.frames.min() >= 0 and result.frames.max() <= 1
    one_go = wm.rollout(
        frames, torch.tensor([[1, 2, 3], [4, 5, 6]]), method="one_go", steps=6, prime_actions=prime_actions
    )
    assert one_go.shape == (2, 3, 3, 16, 16)
    with pytest.raises(ValueError, match="one_go needs"):
        wm.rollout(frames, torch.zeros(2, 14, dtype=torch.long), method="one_go", prime_actions=prime_actions)


def test_maskgit_schedules_end_fully_unmasked():
    assert masked_fraction(0.0, "cosine") == 1.0 and abs(masked_fraction(1.0, "cosine")) < 1e-12
    assert masked_fraction(0.5, "linear") == 0.5
    assert masked_fraction(0.5, "cosine") > 0.5  # cosine unmasks slowly first
    with pytest.raises(ValueError, match="schedule"):
        masked_fraction(0.5, "exp")


def test_action_source_rules():
    guided = tiny_world_model("genie_redux_guided")
    latent = tiny_world_model("genie_redux")
    frames, _ = prime()
    assert guided.is_action_guided and guided.num_actions == 8
    assert not latent.is_action_guided and latent.num_actions == 7
    with pytest.raises(ValueError, match="no LAM"):
        guided.infer_actions(frames)
    with pytest.raises(ValueError, match="needs prime_actions"):
        guided.reset(frames)
    assert latent.infer_actions(frames).shape == (2, 3)
    latent.reset(frames)  # GenieRedux infers the prime actions with its LAM
    with pytest.raises(ValueError, match="genie_redux"):
        WorldModel(build("tokenizer", "tiny"))
