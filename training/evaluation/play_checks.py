"""Two figures of a world model in play, beside the replication protocol: does it answer its keys, and
does long play stay a game screen. Both sample as the player does (its MaskGIT steps and temperature).

Action response: from each start clip, one rollout per action of the game with that action held down,
all with one sampling seed, and one more under the first action with a second seed. `action_mse` is the
mean squared pixel difference between rollouts of different actions, `seed_mse` that between the two
seeds of one action; `ratio` = action_mse / seed_mse says how much more the keys move the picture than the
sampler's own randomness does. A model that ignores its actions has action_mse = 0 (the rollouts share
their seed), so ratio 0; above 1 the keys matter more than chance. Greedy sampling (temperature 0) has
no randomness: seed_mse = 0 and no ratio.

Drift: rollouts of many frames under uniformly random keys of the game. At chosen frames, the PSNR of
each generated frame to the nearest of `reference_frames` real frames of that game (a frame that looks
like some real screen scores high, coloured noise low) and the share of its tokens whose code no real
frame of that game uses (each frame encoded on its own, generated and real alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.datasets import WindowDataset
from data.transforms import frames_to_model
from models.world_model import WorldModel

DRIFT_MARKS = (1, 10, 50, 100, 250, 500, 1000)  # generated frames at which drift is reported


@dataclass(frozen=True)
class PlaySettings:
    response_frames: int = 0  # frames per rollout of the action-response check; 0 skips it
    response_starts: int = 8  # start windows of that check (drawn across games)
    drift_frames: int = 0  # frames of random-key play in the drift check; 0 skips it
    drift_starts: int = 4  # start windows per game of that check
    reference_frames: int = 1024  # real frames per game the drift check compares with
    steps: int = 2  # MaskGIT steps per frame (the player's default)
    temperature: float = 0.5  # the player's default (envs/world_model_env.py DEFAULT_TEMPERATURE)
    seed: int = 0


def start_clips(dataset: WindowDataset, count_per_game: int, seed: int) -> list[tuple[int, dict]]:
    """(env id, window) pairs: `count_per_game` windows of each game, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    picks = []
    for env_id, (start, stop) in enumerate(dataset.env_window_ranges()):
        if stop > start:
            for index in rng.choice(
                np.arange(start, stop), size=min(count_per_game, stop - start), replace=False
            ):
                picks.append((env_id, dataset[int(index)]))
    return picks


def prime_batch(
    windows: list[dict], num_prime: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> prime frames [B, T0, 3, H, W] in [0, 1] and their actions [B, T0-1]."""
    frames = torch.stack([w["frames"][:num_prime] for w in windows])  # uint8 [B, T0, H, W, 3]
    actions = torch.stack([w["actions"][: num_prime - 1] for w in windows])  # [B, T0-1]
    return frames_to_model(frames, device), actions.to(device)


def action_response(
    world_model: WorldModel,
    dataset: WindowDataset,
    env_actions: list[list[int]],
    settings: PlaySettings,
    num_prime: int,
) -> dict[str, float | int | None]:
    """The action-response figure (module docstring) over `response_starts` start windows."""
    per_game = max(1, -(-settings.response_starts // max(len(dataset.env_names), 1)))
    picks = start_clips(dataset, per_game, settings.seed)[: settings.response_starts]
    device = world_model.device
    action_mse, seed_mse = [], []
    for env_id, window in picks:
        prime, prime_actions = prime_batch([window], num_prime, device)
        rollouts = []
        for action in env_actions[env_id]:
            held = torch.full((1, settings.response_frames), action, dtype=torch.long, device=device)
            rollouts.append(world_model.rollout(prime, held, steps=settings.steps, temperature=settings.temperature,
                                                seed=settings.seed, prime_actions=prime_actions))  # fmt: skip
        first = torch.full(
            (1, settings.response_frames), env_actions[env_id][0], dtype=torch.long, device=device
        )
        other_seed = world_model.rollout(prime, first, steps=settings.steps, temperature=settings.temperature,
                                         seed=settings.seed + 1, prime_actions=prime_actions)  # fmt: skip
        for i in range(len(rollouts)):
            for j in range(i + 1, len(rollouts)):
                action_mse.append(float(((rollouts[i] - rollouts[j]) ** 2).mean()))
        seed_mse.append(float(((rollouts[0] - other_seed) ** 2).mean()))
    mean_action = float(np.mean(action_mse)) if action_mse else 0.0
    mean_seed = float(np.mean(seed_mse)) if seed_mse else 0.0
    return {
        "action_mse": mean_action,
        "seed_mse": mean_seed,
        "ratio": mean_action / mean_seed if mean_seed > 0 else None,
        "num_starts": len(picks),
        "frames": settings.response_frames,
    }


def reference_frames(dataset: WindowDataset, env_id: int, count: int, seed: int) -> torch.Tensor:
    """Up to `count` real frames of one game, uint8 [R, H, W, 3], spread over its episodes."""
    rng = np.random.default_rng(seed)
    records = dataset.env_episodes(env_id)
    frames = []
    per_episode = max(1, -(-count // max(len(records), 1)))
    for record in records:
        chosen = rng.choice(record.num_frames, size=min(per_episode, record.num_frames), replace=False)
        episode = dataset.store.read_frames(record.episode_id, 0, record.num_frames)  # [T, H, W, 3]
        frames.extend(episode[np.sort(chosen)])
    frames = np.stack(frames[:count]) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    return torch.from_numpy(frames)


@torch.no_grad()
def frame_codes(world_model: WorldModel, frames: torch.Tensor) -> torch.Tensor:
    """Each frame [N, 3, H, W] in [0, 1] encoded on its own -> token ids [N, h*w]."""
    codes = [world_model.tokenizer.encode(chunk[:, None]).flatten(1) for chunk in frames.split(256)]
    return torch.cat(codes)


def nearest_real_psnr(frames: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """frames [B, 3, H, W], real [R, 3, H, W] in [0, 1] -> [B]: PSNR to the nearest real frame (at most 100 dB)."""
    flat = real.flatten(1)  # [R, 3*H*W]
    mse = torch.cdist(frames.flatten(1), flat).pow(2).min(dim=1).values / flat.shape[1]  # [B]
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


@torch.no_grad()
def code_set(world_model: WorldModel, real: torch.Tensor) -> torch.Tensor:
    """bool [K]: the codes the frames real [R, 3, H, W] use, each frame encoded on its own."""
    used = torch.zeros(world_model.dynamics.config.codebook_size, dtype=torch.bool, device=real.device)
    used[frame_codes(world_model, real).flatten()] = True
    return used


@torch.no_grad()
def drift(
    world_model: WorldModel,
    dataset: WindowDataset,
    env_actions: list[list[int]],
    settings: PlaySettings,
    num_prime: int,
) -> dict[str, dict[str, list]]:
    """Per game: nearest-real-frame PSNR and unseen-code share at DRIFT_MARKS within drift_frames."""
    device = world_model.device
    marks = [m for m in DRIFT_MARKS if m <= settings.drift_frames]
    picks = start_clips(dataset, settings.drift_starts, settings.seed)
    rng = torch.Generator().manual_seed(settings.seed)
    per_game = {}
    for env_id, name in enumerate(dataset.env_names):
        windows = [w for e, w in picks if e == env_id]
        if not windows:
            continue
        prime, prime_actions = prime_batch(windows, num_prime, device)
        ids = torch.tensor(env_actions[env_id], dtype=torch.long)
        keys = ids[torch.randint(len(ids), (len(windows), settings.drift_frames), generator=rng)].to(device)
        generated = world_model.rollout(prime, keys, steps=settings.steps, temperature=settings.temperature,
                                        seed=settings.seed, prime_actions=prime_actions)  # fmt: skip
        real = frames_to_model(
            reference_frames(dataset, env_id, settings.reference_frames, settings.seed)[None], device
        )[0]  # [R, 3, H, W]
        real_codes = code_set(world_model, real)
        nearest, unseen = [], []
        for mark in marks:
            frames = generated[:, mark - 1]  # [B, 3, H, W]
            nearest.append(float(nearest_real_psnr(frames, real).mean()))
            unseen.append(float((~real_codes[frame_codes(world_model, frames)]).float().mean()))
        per_game[name] = {"frames": marks, "nearest_real_psnr": nearest, "unseen_code_share": unseen}
    return per_game
