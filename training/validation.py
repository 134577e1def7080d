"""Validation during training: reconstruction / next-frame quality, codebook usage, sample gifs.

Runs on the main process on a fixed validation subset, inside `torch.random.fork_rng` with fixed
seeds, so it neither perturbs the training RNG (exact resume) nor varies between validations.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from models.world_model import WorldModel
from training.evaluation.gifs import save_gif, side_by_side, to_uint8_frames
from training.evaluation.metrics import psnr, ssim
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.settings import EvalSettings

VALIDATION_SEED = 1234  # sampling and masking during validation; fixed so numbers compare across steps


def forked_devices(device: torch.device) -> list[torch.device]:
    """The GPU whose generator validation forks besides the CPU's (none on a CPU run)."""
    return [device] if device.type == "cuda" else []


def validate(
    model: nn.Module,
    kind: str,
    loader: DataLoader,
    validation_cfg: DictConfig,
    samples_dpath: Path,
    step: int,
    device: torch.device,
    eval_settings: EvalSettings | None = None,
    envs: EnvTable | None = None,
) -> dict[str, float]:
    """Metrics named `val/...` averaged over the validation subset; gifs under `samples_dpath`.

    With `eval_settings` (dynamics kinds), the evaluation protocol itself also runs on the same
    windows, whose games `envs` names, and its headline numbers are logged as `val/eval_*`
    (replication PSNR/SSIM, ΔPSNR).
    """
    from data.transforms import frames_to_model

    was_training = model.training
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    used_codes: set[int] = set()
    used_actions: set[int] = set()
    num_batches = 0
    with torch.random.fork_rng(devices=forked_devices(device)), torch.no_grad():
        torch.manual_seed(VALIDATION_SEED)
        for batch_index, batch in enumerate(loader):
            frames = frames_to_model(batch["frames"].to(device))  # [B, T, 3, H, W]
            actions = batch["actions"].to(device)  # [B, T-1]
            output = model(frames, actions)  # every kind takes (frames, actions=None)
            sums["val/loss"] += float(output.loss)
            gif_count = validation_cfg.num_gifs if batch_index == 0 else 0
            if kind == "tokenizer":
                batch_metrics = tokenizer_batch(model, frames, used_codes, samples_dpath, step, gif_count)
            else:
                batch_metrics = dynamics_batch(
                    model, frames, actions, validation_cfg, used_actions, samples_dpath, step, gif_count
                )
            for name, value in batch_metrics.items():
                sums[name] += value
            num_batches += 1
        protocol_metrics = run_protocol(model, loader, eval_settings, envs, device) if eval_settings else {}
    model.train(was_training)
    metrics = {name: value / max(num_batches, 1) for name, value in sums.items()} | protocol_metrics
    if kind == "tokenizer":
        metrics["val/codebook_usage"] = len(used_codes) / model.config.codebook_size
    elif kind == "genie_redux":
        metrics["val/lam_codebook_usage"] = len(used_actions) / model.num_actions
    return metrics


def tokenizer_batch(
    model: nn.Module,
    frames: torch.Tensor,
    used_codes: set[int],
    samples_dpath: Path,
    step: int,
    num_gifs: int,
) -> dict[str, float]:
    token_ids = model.encode(frames)  # [B, T, h, w]
    reconstruction = model.decode(token_ids).clamp(0, 1)  # [B, T, 3, H, W]
    used_codes.update(token_ids.unique().tolist())
    for index in range(min(num_gifs, frames.shape[0])):
        clip = side_by_side(
            {"recon": to_uint8_frames(reconstruction[index]), "truth": to_uint8_frames(frames[index])}
        )
        save_gif(samples_dpath / f"step{step:07d}_recon{index}.gif", clip)
    return {"val/recon_psnr": psnr(reconstruction, frames), "val/recon_ssim": ssim(reconstruction, frames)}


def dynamics_batch(
    model: nn.Module,
    frames: torch.Tensor,
    actions: torch.Tensor,
    validation_cfg: DictConfig,
    used_actions: set[int],
    samples_dpath: Path,
    step: int,
    num_gifs: int,
) -> dict[str, float]:
    """Next-frame PSNR / token accuracy after `num_prime_frames` real frames; rollout gifs."""
    world_model = WorldModel(model)
    num_prime = validation_cfg.num_prime_frames
    if not 1 <= num_prime < frames.shape[1]:
        raise ValueError(
            f"train.validation.num_prime_frames must be in [1, {frames.shape[1] - 1}], got {num_prime}"
        )
    if not world_model.is_action_guided:
        actions = world_model.infer_actions(frames)  # [B, T-1] latent actions
        used_actions.update(actions.unique().tolist())
    world_model.reset(frames[:, :num_prime], actions[:, : num_prime - 1])
    generator = torch.Generator(device=frames.device).manual_seed(VALIDATION_SEED)
    result = world_model.step(
        actions[:, num_prime - 1], steps=validation_cfg.maskgit_steps, generator=generator
    )
    target = frames[:, num_prime]  # [B, 3, H, W]
    # the target frame tokenized in its own context (the tokenizer is causal: tokens depend on history)
    true_tokens = model.tokenize(frames[:, : num_prime + 1])[:, -1].flatten(1)  # [B, h*w]
    token_accuracy = (result.token_logits.argmax(-1) == true_tokens).float().mean()
    metrics = {
        "val/next_frame_psnr": psnr(result.frames[:, None], target[:, None]),
        "val/next_frame_token_accuracy": float(token_accuracy),
    }
    if world_model.is_action_guided:
        metrics["val/action_ce_gap"] = action_ce_gap(
            world_model, actions[:, num_prime - 1], true_tokens, generator
        )
    if num_gifs > 0:
        count = min(num_gifs, frames.shape[0])
        rollout = world_model.rollout(
            frames[:count, :num_prime],
            actions[:count, num_prime - 1 :],
            steps=validation_cfg.maskgit_steps,
            prime_actions=actions[:count, : num_prime - 1],
            seed=VALIDATION_SEED,
        )  # [count, T - num_prime, 3, H, W]
        for index in range(count):
            predicted = torch.cat([frames[index, :num_prime], rollout[index]])
            clip = side_by_side(
                {"rollout": to_uint8_frames(predicted), "truth": to_uint8_frames(frames[index])}
            )
            save_gif(samples_dpath / f"step{step:07d}_rollout{index}.gif", clip)
    return metrics


def action_ce_gap(
    world_model: WorldModel, actions: torch.Tensor, true_tokens: torch.Tensor, generator: torch.Generator
) -> float:
    """How much the real action tells the dynamics about the next frame, in nats per token: its cross-entropy
    on the true next tokens true_tokens [B, h*w] when the actions [B] are shuffled across the batch, minus
    with the real ones (the world model primed, nothing committed). 0 for a model that ignores its actions."""
    shuffled = actions[torch.randperm(actions.shape[0], generator=generator, device=actions.device)]
    ce = {}
    for name, chosen in (("real", actions), ("shuffled", shuffled)):
        logits = world_model.next_frames_logits(chosen[:, None])  # [B, h*w, K]: the masked next frame
        ce[name] = torch.nn.functional.cross_entropy(logits.flatten(0, 1), true_tokens.flatten())
    return float(ce["shuffled"] - ce["real"])


def run_protocol(
    model: nn.Module, loader: DataLoader, settings: EvalSettings, envs: EnvTable | None, device: torch.device
) -> dict[str, float]:
    """The one evaluation protocol (as `genie_redux eval` runs it) on the validation windows."""
    if envs is None:
        raise ValueError("the evaluation protocol needs the env table of the validation windows")
    result = evaluate(WorldModel(model), loader, settings, envs, device=device, show_progress=False)
    return {f"val/eval_{name}": value for name, value in result.metrics.items() if value is not None}
