"""Video tokenizer: shapes, causality in time, incremental decoding, and overfitting a real game clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.presets import build


def game_clip(
    env_name: str = "coinrun", num_frames: int = 16, image_size: int = 16, skip: int = 20, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A real clip played by a seeded random agent through the project's env layer.

    Returns frames [1, T, 3, S, S] float in [0, 1] and the vocabulary action ids [1, T-1] between them.
    CoinRun by default: its camera follows the agent, so the clip has texture and motion (the per-pixel
    mean of the clip scores ~11 dB, copying the previous frame ~20 dB), unlike most Atari screens.
    """
    pytest.importorskip("procgen" if env_name == "coinrun" else "stable_retro")
    from envs import make_env

    env = make_env(env_name, image_size=image_size, seed=seed)
    try:
        obs = env.reset(seed=seed)[0]
        env.action_space.seed(seed)
        frames, actions = [], []
        for step in range(skip + num_frames):
            action = int(env.action_space.sample())
            if step >= skip:  # frames[i] is the observation before actions[i]
                frames.append(obs)
                actions.append(int(env.action_ids[action]))
            obs = env.step(action)[0]
    finally:
        env.close()
    clip = torch.from_numpy(np.stack(frames)).float() / 255.0  # [T, S, S, 3]
    return clip.permute(0, 3, 1, 2)[None], torch.tensor(actions[:-1])[None]  # [1, T, 3, S, S], [1, T-1]


def psnr_db(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return float(-10 * torch.log10(torch.mean((prediction - target) ** 2)))


def overfit_tokenizer(clip: torch.Tensor, num_steps: int, **overrides: int) -> torch.nn.Module:
    """The tiny tokenizer (plus `overrides`) trained on one clip with a fixed seed, in eval mode."""
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny", **overrides)
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=2e-3, weight_decay=0.0)
    for _ in range(num_steps):
        loss = tokenizer(clip).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tokenizer.eval()


def test_encode_decode_shapes_and_range():
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny").eval()
    frames = torch.rand(2, 5, 3, 16, 16)
    token_ids = tokenizer.encode(frames)
    assert token_ids.shape == (2, 5, 4, 4) and token_ids.dtype == torch.int64
    assert int(token_ids.max()) < tokenizer.config.codebook_size
    decoded = tokenizer.decode(token_ids)
    assert decoded.shape == frames.shape
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0


def test_tokenizer_is_causal_in_time():
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny").eval()
    frames = torch.rand(1, 6, 3, 16, 16)
    perturbed = frames.clone()
    perturbed[:, 3] = torch.rand(3, 16, 16)
    with torch.no_grad():
        base, changed = tokenizer(frames).reconstruction, tokenizer(perturbed).reconstruction
    torch.testing.assert_close(changed[:, :3], base[:, :3])
    assert not torch.allclose(changed[:, 3:], base[:, 3:])


def test_incremental_decoding_matches_full_decoding():
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny").eval()
    token_ids = torch.randint(0, tokenizer.config.codebook_size, (2, 5, 4, 4))
    full = tokenizer.decode(token_ids)
    frames, cache = tokenizer.decode_step(token_ids[:, :2], None)
    pieces = [frames]
    for t in range(2, 5):
        frames, cache = tokenizer.decode_step(token_ids[:, t : t + 1], cache)
        pieces.append(frames)
    assert cache.num_frames == 5
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_unknown_override_and_wrong_frame_size_fail_loudly():
    with pytest.raises(ValueError, match="unknown tokenizer config key"):
        build("tokenizer", "tiny", codebok_size=3)
    tokenizer = build("tokenizer", "tiny")
    with pytest.raises(ValueError, match=r"expected frames \[B, T, 3, 16, 16\]"):
        tokenizer.encode(torch.rand(1, 2, 3, 32, 32))


@pytest.mark.slow
def test_tiny_tokenizer_overfits_a_real_clip_above_30db_and_beats_the_mean_frame():
    clip, _ = game_clip()
    tokenizer = overfit_tokenizer(clip, num_steps=800)
    token_ids = tokenizer.encode(clip)
    psnr = psnr_db(tokenizer.decode(token_ids), clip)
    # the per-pixel mean over the clip: what a model that ignores the codes could reach at best
    mean_psnr = psnr_db(clip.mean(dim=1, keepdim=True).expand_as(clip), clip)
    assert psnr >= 30.0, f"PSNR {psnr:.1f} dB"
    assert psnr >= mean_psnr + 10.0, f"PSNR {psnr:.1f} dB vs per-pixel mean {mean_psnr:.1f} dB"
    # a collapsed codebook cannot reach 30 dB on this clip; still, say so directly
    num_tokens = token_ids.numel()
    num_distinct = token_ids.unique().numel()
    assert num_distinct >= num_tokens // 4, f"{num_distinct} distinct codes for {num_tokens} tokens"


def test_encode_step_with_the_cache_equals_encoding_the_whole_clip():
    torch.manual_seed(0)
    tokenizer = build("tokenizer", "tiny").eval()
    frames = torch.rand(2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    whole = tokenizer.encode(frames)  # [2, 5, h, w]
    first, cache = tokenizer.encode_step(frames[:, :3], None)  # prime, then one frame at a time
    second, cache = tokenizer.encode_step(frames[:, 3:4], cache)
    last, cache = tokenizer.encode_step(frames[:, 4:5], cache)
    assert torch.equal(torch.cat([first, second, last], dim=1), whole) and cache.num_frames == 5
