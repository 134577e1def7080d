"""Components: fused attention vs a naive reference, ST-block locality and causality, KV cache, quantizer."""

from __future__ import annotations

import math

import torch

from models.components import Attention, FrameCache, STBlock, STTransformer, VectorQuantizer
from models.components.position import spatial_encoding, temporal_encoding


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
    perturbed[:, 3, 0] += 1.0  # one token of frame 3
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


def test_position_encodings_distinguish_every_position():
    spatial = spatial_encoding(4, 5, 32)
    temporal = temporal_encoding(0, 30, 32)
    assert torch.cdist(spatial, spatial).add(torch.eye(20)).min() > 1e-3
    assert torch.cdist(temporal, temporal).add(torch.eye(30)).min() > 1e-3


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


def test_dead_codes_move_onto_batch_encodings():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 4, dead_code_threshold=0.5, usage_decay=0.5).train()
    encodings = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0, 0.0, 0.0]]).repeat(32, 1), dim=-1)
    for _ in range(3):
        quantizer(encodings)
    # every code that was never chosen has been moved onto the (single) batch encoding direction
    codebook = quantizer.normalized_codebook()
    torch.testing.assert_close(codebook, encodings[:1].expand(8, -1), atol=1e-2, rtol=0)
