"""Inference in bf16: the path CUDA takes by default (precision "auto"), checked on CPU autocast against
fp32 for the world model itself, evaluation, the player's env and the AutoExplore reward.

Margins (untrained tiny models): greedy MaskGIT picks the same token at >= 90 % of positions and bf16
frames are >= 30 dB PSNR from the fp32 frames for GenieRedux-G (measured 97.5 %, 39 dB); for GenieRedux,
whose LAM also infers the prime clip's actions in bf16 (a flipped latent action changes every frame after
it), >= 80 % and >= 24 dB (measured 87-91 %, 26.6-29.2 dB); evaluation PSNR moves by <= 0.5 dB, the
AutoExplore reward (in [0, 1]) by <= 0.01.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.errors import UserError
from models.presets import build
from models.world_model import WorldModel, autocast_dtype
from training.evaluation.metrics import psnr


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


MIN_TOKEN_AGREEMENT, MIN_PSNR_DB = 0.9, 30.0
MARGINS = {"genie_redux_guided": (MIN_TOKEN_AGREEMENT, MIN_PSNR_DB), "genie_redux": (0.8, 24.0)}


def test_auto_is_bf16_on_cuda_and_fp32_elsewhere():
    assert autocast_dtype("auto", "cuda") == autocast_dtype("auto", torch.device("cuda:1")) == torch.bfloat16
    assert autocast_dtype("auto", "cpu") is None and autocast_dtype("fp32", "cuda") is None
    assert autocast_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown inference precision 'fp16'"):
        WorldModel(build("genie_redux_guided", "tiny"), precision="fp16")


def rollouts(kind: str, method: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """precision -> (frames, the generated frames' tokens) of one greedy rollout of a tiny model."""
    torch.manual_seed(0)
    model = build(kind, "tiny")
    g = torch.Generator().manual_seed(1)
    prime = torch.rand(4, 3, 3, 16, 16, generator=g)  # [B, T0, 3, H, W]
    prime_actions = torch.randint(0, 7, (4, 2), generator=g) if kind == "genie_redux_guided" else None
    actions = torch.randint(0, 7, (4, 5), generator=g)  # [B, N]
    out = {}
    for precision in ("auto", "fp32", "bf16"):
        wm = WorldModel(model, precision=precision)
        frames = wm.rollout(prime, actions, method, steps=4, temperature=0.0, prime_actions=prime_actions)
        out[precision] = (frames, wm.token_history[:, -actions.shape[1] :].clone())
    return out


@pytest.mark.parametrize("method", ["autoregressive", "one_go"])
@pytest.mark.parametrize("kind", ["genie_redux_guided", "genie_redux"])
def test_bf16_generation_agrees_with_fp32(kind, method):
    out = rollouts(kind, method)
    assert torch.equal(out["auto"][0], out["fp32"][0])  # auto on CPU is plain fp32
    (frames32, tokens32), (frames16, tokens16) = out["fp32"], out["bf16"]
    assert frames16.dtype == torch.float32  # outputs are fp32 whatever ran inside
    assert not torch.equal(frames16, frames32)  # autocast really ran in bf16
    min_agreement, min_psnr = MARGINS[kind]
    assert (tokens16 == tokens32).float().mean() >= min_agreement
    assert psnr(frames16, frames32) >= min_psnr


def test_evaluation_in_bf16_is_within_half_a_db_of_fp32():
    from benchmarks.bench_eval import synthetic_batches
    from training.evaluation.protocol import EnvTable, evaluate
    from training.evaluation.settings import EvalSettings

    torch.manual_seed(0)
    model = build("genie_redux_guided", "tiny")
    batches = synthetic_batches(num_sequences=4, batch_size=2, num_frames=6, image_size=16)
    settings = EvalSettings(num_first_frames=2, sample_num_frames=4, inference_steps=2, num_sequences=4,
                            delta_psnr_frame=2, num_gifs=0, inference_method="autoregressive")  # fmt: skip
    results = {
        precision: evaluate(
            WorldModel(model, precision=precision),
            batches,
            settings,
            EnvTable(("synthetic",)),
            device="cpu",
            show_progress=False,
        )  # fmt: skip
        for precision in ("fp32", "bf16")
    }
    fp32, bf16 = (results[p].metrics["psnr"] for p in ("fp32", "bf16"))
    assert abs(fp32 - bf16) <= 0.5, (fp32, bf16)


def test_evaluation_and_the_player_refuse_an_unknown_precision(tiny_world_model_dpath, tmp_path):
    from omegaconf import OmegaConf

    from play.cli import check_settings
    from training.evaluation.run import load_world_model

    with pytest.raises(UserError, match="eval.precision=fp16 is unknown"):
        load_world_model(str(tiny_world_model_dpath), torch.device("cpu"), 16, "fp16")
    assert load_world_model(str(tiny_world_model_dpath), torch.device("cpu"), 16, "bf16").precision == "bf16"
    player = OmegaConf.load("play/configs/play.yaml")
    player.precision = "fp16"
    with pytest.raises(UserError, match="precision=fp16 is unknown"):
        check_settings(player)


def test_the_player_env_in_bf16_tracks_fp32(tiny_world_model_dpath, tiny_play_store):
    from envs.start_clips import StartPicker
    from models.checkpoint import load_model
    from play.session import PlaySession

    model = load_model(tiny_world_model_dpath, "cpu")
    picker = StartPicker(tiny_play_store, 16, 2)
    frames = {}
    for precision in ("fp32", "bf16"):
        session = PlaySession(model, picker, 2, maskgit_steps=2, temperature=0.0, precision=precision)
        session.start(seed=0)
        assert session.env.sessions.world_model.precision == precision
        frames[precision] = np.stack([session.env.step(1)[0] for _ in range(4)])  # uint8 [4, S, S, 3]
    as_float = {p: torch.from_numpy(f).permute(0, 3, 1, 2)[None].float() / 255 for p, f in frames.items()}
    assert psnr(as_float["bf16"], as_float["fp32"]) >= MIN_PSNR_DB


def test_the_auto_explore_reward_in_bf16_tracks_fp32(tiny_world_model_dpath):
    from agents.rewards import WorldModelRewardSettings, WorldModelUncertaintyReward
    from tests.test_auto_explore_reward import IDS, run_source, scripted_episode

    episode = scripted_episode(4, 10, seed=0)
    rewards = {}
    for precision in ("fp32", "bf16"):
        settings = WorldModelRewardSettings(str(tiny_world_model_dpath), 1, 3, "cpu", precision)
        source = WorldModelUncertaintyReward(settings, IDS, image_size=16)
        assert source.wm.precision == precision
        rewards[precision] = run_source(source, *episode)
    assert not np.array_equal(rewards["fp32"], rewards["bf16"])
    np.testing.assert_allclose(rewards["bf16"], rewards["fp32"], atol=0.01)
