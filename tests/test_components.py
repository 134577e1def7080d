"""Components: fused attention vs a naive reference, ST-block locality and causality, KV cache, quantizer."""

from __future__ import annotations

import math

import torch

from models.components import Attention, FrameCache, STBlock, STTransformer, VectorQuantizer
from models.components.position import spatial_encoding


def naive_attention(attn: Attention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    q, k, v = attn.split_heads(x)  # [N, H, L, hd]
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    if causal:
        length = x.shape[1]
        scores = scores.masked_fill(~torch.ones(length, length, dtype=torch.bool).tril(), float("-inf"))
    out = scores.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(x.shape))


def test_sdpa_attention_matches_naive_reference():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(3, 7, 32)
    for causal in (False, True):
        torch.testing.assert_close(
            attn(x, is_causal=causal)[0], naive_attention(attn, x, causal), atol=1e-5, rtol=1e-5
        )


def test_attention_with_past_kv_equals_full_causal_attention():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 6, 32)
    full = attn(x, is_causal=True)[0]
    _, past = attn(x[:, :4], is_causal=True)
    torch.testing.assert_close(
        attn(x[:, 4:], is_causal=True, past_kv=past)[0], full[:, 4:], atol=1e-5, rtol=1e-5
    )


def test_spatial_attention_does_not_mix_frames():
    torch.manual_seed(0)
    block = STBlock(32, 4)
    with torch.no_grad():  # silence temporal attention: whatever crosses frames now would be spatial's fault
        block.temporal.proj.weight.zero_()
        block.temporal.proj.bias.zero_()
    x = torch.randn(2, 5, 6, 32)
    perturbed = x.clone()
    perturbed[:, 2] += torch.randn(2, 6, 32)
    base, changed = block(x)[0], block(perturbed)[0]
    frames_changed = [(t, not torch.allclose(base[:, t], changed[:, t])) for t in range(5)]
    assert frames_changed == [(0, False), (1, False), (2, True), (3, False), (4, False)]


def test_st_transformer_is_causal_in_time_and_mixes_space():
    torch.manual_seed(0)
    model = STTransformer(32, 2, 4).eval()
    x = torch.randn(1, 6, 5, 32)
    perturbed = x.clone()
    # one token of frame 3, by a random vector: a constant added to every channel is what pre-norm removes
    perturbed[:, 3, 0] += torch.randn(32)
    base, changed = model(x), model(perturbed)
    torch.testing.assert_close(changed[:, :3], base[:, :3])
    assert not torch.allclose(changed[:, 3:, 1:], base[:, 3:, 1:])  # reached other tokens and later frames


def test_cached_forward_equals_full_forward():
    torch.manual_seed(0)
    model = STTransformer(32, 3, 4).eval()
    x = torch.randn(2, 5, 4, 32)
    full = model(x)
    out, kv = model.forward_cached(x[:, :2], None)
    cache = FrameCache(kv)
    pieces = [out]
    for t in range(2, 5):
        out, kv = model.forward_cached(x[:, t : t + 1], cache)
        cache = cache.appended(kv)
        pieces.append(out)
    assert cache.num_frames == 5
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_inference_attention_runs_on_the_fused_cpu_kernel():
    """Per-head masks (the spatial bias, the relative time bias) go to SDPA as 4-D: with a 3-D mask the
    fused CPU kernel refuses and every call takes the unfused math path (softmax over explicit scores)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = STTransformer(32, 2, 4, grid=(2, 2)).eval()
    x = torch.randn(2, 3, 4, 32)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        _, kv = model.forward_cached(x[:, :2], None)  # spatial + causal temporal attention
        model.forward_cached(x[:, 2:], FrameCache(kv))  # one new frame against the cache
    names = {event.key for event in prof.key_averages()}
    assert any("flash_attention" in name for name in names), sorted(names)
    assert "aten::_softmax" not in names  # the math path's explicit softmax


def test_spatial_position_encodings_distinguish_every_patch():
    spatial = spatial_encoding(4, 5, 32)
    assert torch.cdist(spatial, spatial).add(torch.eye(20)).min() > 1e-3


def test_relative_time_gives_identical_frames_identical_outputs_at_every_t():
    """No frame index reaches the tokens: an unchanged input stays unchanged along the clip."""
    torch.manual_seed(0)
    model = STTransformer(32, 2, 4).eval()
    frame = torch.randn(1, 1, 5, 32)
    out = model(frame.expand(1, 9, 5, 32).contiguous())  # [1, 9, 5, 32]
    torch.testing.assert_close(out, out[:, :1].expand_as(out), atol=1e-5, rtol=1e-5)


def test_temporal_bias_prefers_recent_frames_and_is_learned():
    attn = Attention(32, 4, relative_time=True)
    slopes = attn.slopes()
    assert (slopes > 0).all() and slopes[0] > slopes[-1]  # head 0 strongly recent, the last nearly flat
    x = torch.randn(2, 6, 32, requires_grad=True)
    attn(x, is_causal=True)[0].sum().backward()
    assert attn.log_time_slopes.grad is not None and attn.log_time_slopes.grad.abs().sum() > 0


def test_attention_window_hides_keys_older_than_the_window():
    torch.manual_seed(0)
    attn = Attention(32, 4, relative_time=True)
    x = torch.randn(2, 8, 32)
    base = attn(x, is_causal=True, window=3)[0]
    old, recent = x.clone(), x.clone()
    old[:, 4] += 5.0  # 3 frames before frame 7: outside its window of 3 (frames 5, 6, 7)
    recent[:, 5] += 5.0
    torch.testing.assert_close(attn(old, is_causal=True, window=3)[0][:, 7], base[:, 7])
    assert not torch.allclose(attn(recent, is_causal=True, window=3)[0][:, 7], base[:, 7])


def test_two_stream_training_sees_exactly_what_cached_inference_sees():
    """Masked frame t in training == the same masked frame generated after the clean frames < t."""
    torch.manual_seed(0)
    model = STTransformer(32, 3, 4).eval()
    clean, masked = torch.randn(2, 5, 4, 32), torch.randn(2, 5, 4, 32)
    trained = model.forward_two_stream(clean, masked)  # [2, 5, 4, 32]
    for t in range(5):
        cache = FrameCache(model.forward_cached(clean[:, :t], None)[1]) if t > 0 else None
        inferred = model.forward_cached(masked[:, t : t + 1], cache)[0]
        torch.testing.assert_close(trained[:, t : t + 1], inferred, atol=1e-5, rtol=1e-5)


def test_quantizer_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(8, 4)
    quantizer = VectorQuantizer(16, 4, dead_code_threshold=0.0).eval()
    out = quantizer(encoder(torch.randn(10, 8)))
    (out.quantized.square().sum() * 0 + out.quantized.sum()).backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    codebook = quantizer.normalized_codebook()
    torch.testing.assert_close(out.quantized.detach(), codebook[out.indices])  # forward value is the code


def test_quantizer_picks_nearest_code_and_reports_usage():
    quantizer = VectorQuantizer(4, 2, dead_code_threshold=0.0).eval()
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    out = quantizer(torch.tensor([[2.0, 0.1], [0.1, 3.0], [0.2, 2.0], [-0.1, -5.0]]))
    assert out.indices.tolist() == [0, 1, 1, 3]
    assert out.metrics["usage"].item() == 0.75
    expected_perplexity = math.exp(-(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5)))
    assert abs(out.metrics["perplexity"].item() - expected_perplexity) < 1e-5


SPRITE_CENTRES = torch.nn.functional.normalize(
    torch.randn(17, 8, generator=torch.Generator().manual_seed(7)), dim=-1
)  # [17, 8]: 0 = background


def low_entropy_encodings(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Game-frame-like encodings [2048, 8]: 90 % one background direction, 10 % spread over 16 sprites."""
    labels = torch.where(
        torch.rand(2048, generator=generator) < 0.9,
        torch.zeros(2048, dtype=torch.long),
        torch.randint(1, 17, (2048,), generator=generator),
    )
    encodings = SPRITE_CENTRES[labels] + 0.02 * torch.randn(2048, 8, generator=generator)
    return encodings, labels


def test_quantizer_does_not_collapse_on_low_entropy_encodings():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    quantizer = VectorQuantizer(32, 8).train()
    optimizer = torch.optim.Adam(quantizer.parameters(), lr=1e-2)
    for _ in range(60):
        encodings, labels = low_entropy_encodings(generator)
        out = quantizer(encodings)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    quantizer.eval()
    encodings, labels = low_entropy_encodings(generator)
    out = quantizer(encodings)
    # every sprite keeps a code of its own (not the background's), and the codebook stays spread out
    background_codes = set(out.indices[labels == 0].tolist())
    for sprite in range(1, 17):
        assert not set(out.indices[labels == sprite].tolist()) & background_codes, sprite
    codes = quantizer.normalized_codebook()[out.indices]
    cosine = (codes * torch.nn.functional.normalize(encodings, dim=-1)).sum(-1)
    assert cosine.min() > 0.9, f"worst-represented encoding has cosine {cosine.min():.2f} to its code"
    assert out.metrics["usage"] >= 0.5


def test_dead_codes_move_onto_the_worst_represented_encodings():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 4, dead_code_threshold=0.01, usage_decay=0.5).train()
    axes = torch.eye(4)
    with torch.no_grad():  # code 0 = the common content; codes 1..7 point away from everything
        quantizer.codebook.copy_(torch.cat([axes[:1], -axes[1:2].expand(7, -1)]))
        quantizer.is_initialized.fill_(True)
    common = axes[0].expand(1000, -1)
    rare = torch.nn.functional.normalize(axes[2] + 0.3 * axes[3], dim=0).expand(4, -1)
    encodings = torch.cat([common, rare])  # [1004, 4]
    quantizer(encodings)  # before: every encoding goes to code 0, the rare ones badly
    for _ in range(12):  # unused codes fall below 1 % of a fair share after 7 steps
        out = quantizer(encodings)
    codebook = quantizer.normalized_codebook()
    torch.testing.assert_close(codebook[0], axes[0])  # a used code is never moved
    # the rare encodings (the only ones with quantisation error) received the reset codes
    assert (codebook[out.indices[1000:]] @ rare[0]).min() > 0.999
    assert set(out.indices[1000:].tolist()) != {0}
    for _ in range(12):  # rare (0.4 % of assignments) but real content keeps its code
        out = quantizer(encodings)
    assert (codebook[out.indices[1000:]] @ rare[0]).min() > 0.999


def test_codebook_init_and_resets_never_make_near_duplicate_codes():
    """Few distinct patches (game frames) must get one code each, not hundreds of copies picked by float noise."""
    from models.components.quantizer import MIN_NEW_CODE_DISTANCE

    torch.manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    encodings = directions.repeat_interleave(400, dim=0) + 1e-6 * torch.randn(2000, 8)  # [2000, 8]
    quantizer = VectorQuantizer(64, 8, dead_code_threshold=0.01, usage_decay=0.5).train()
    for _ in range(20):  # init, then many steps in which 59 codes are dead and get reset if they can
        out = quantizer(encodings)
    assert out.indices.unique().numel() == 5  # one code per distinct content
    codebook = quantizer.normalized_codebook()
    near_data = (codebook @ directions.T).max(1).values > 0.99  # codes that sit on some content
    assert int(near_data.sum()) == 5
    # the same content, re-encoded with float noise, keeps its code
    noisy = encodings + 1e-6 * torch.randn_like(encodings)
    torch.testing.assert_close(quantizer.eval()(noisy).indices, out.indices)
    seeded = codebook[near_data]
    sq_distance = 2 - 2 * seeded @ seeded.T
    assert (sq_distance + 4 * torch.eye(5)).min() >= MIN_NEW_CODE_DISTANCE / 2
