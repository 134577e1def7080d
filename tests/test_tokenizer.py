"""Video tokenizer: shapes, causality in time, incremental decoding, and overfitting a real game clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.presets import build


def airstriker_clip(num_frames: int = 16, image_size: int = 16) -> torch.Tensor:
    """A real 16-frame clip from stable-retro's bundled ROM: [1, T, 3, S, S] float in [0, 1]."""
    stable_retro = pytest.importorskip("stable_retro")
    from PIL import Image

    env = stable_retro.make("Airstriker-Genesis-v0", render_mode=None)
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        frames = []
        for step in range(200 + 4 * num_frames):  # skip the intro, then keep every 4th frame (frame skip 4)
            obs = env.step(env.action_space.sample())[0]
            if step >= 200 and step % 4 == 0:
                frames.append(np.asarray(Image.fromarray(obs).resize((image_size, image_size), Image.BOX)))
    finally:
        env.close()
    clip = torch.from_numpy(np.stack(frames[:num_frames])).float() / 255.0  # [T, S, S, 3]
    return clip.permute(0, 3, 1, 2)[None]  # [1, T, 3, S, S]


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
def test_tiny_tokenizer_overfits_a_real_clip_above_30db():
    torch.manual_seed(0)
    clip = airstriker_clip()
    tokenizer = build("tokenizer", "tiny")
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=2e-3, weight_decay=0.0)
    for _ in range(1200):
        loss = tokenizer(clip).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokenizer.eval()
    reconstruction = tokenizer.decode(tokenizer.encode(clip))
    psnr = -10 * torch.log10(torch.mean((reconstruction - clip) ** 2))
    assert psnr >= 30.0, f"PSNR {psnr:.1f} dB"
