"""The one evaluation protocol, used by `genie_redux eval` and by training's validation.

Replication (`action_to_take=-1`): prime the world model with the first frames of a real clip and
roll it out with that clip's actions (GenieRedux-G: the recorded actions; GenieRedux: the LAM's
latent actions inferred from the clip), then compare the generated frames with the real ones.
Control (`action_to_take=k`): roll every sequence out with the fixed action k.

ΔPSNR@t compares the t-th generated frame of the real-action rollout with that of two paired
rollouts with the same prime frames and the same sampling seed: Genie's definition (every action
random) and upstream GenieRedux's variant (only the t-th action random). Sharing the seed makes a
model that ignores actions score exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from common.progress import progress_bar
from common.seeds import SEED_STRIDE
from data.actions import ACTION_VOCABULARY
from data.datasets import WindowDataset
from data.transforms import frames_to_model
from models.world_model import WorldModel
from training.evaluation.fid import FidAccumulator
from training.evaluation.gifs import to_uint8_frames
from training.evaluation.metrics import MetricSums, psnr_per_frame, ssim_per_frame
from training.evaluation.result import Clip, EvalResult
from training.evaluation.settings import EvalSettings


@dataclass(frozen=True)
class EnvTable:
    """The games the evaluated windows come from, indexed by a batch's `env_id`.

    `action_ids[e]`: the vocabulary ids game e has (random and control actions come from these); None
    means every action (latent actions, or stores that predate recorded action sets).
    """

    names: tuple[str, ...] = ("all",)
    action_ids: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if self.action_ids is not None:
            object.__setattr__(self, "action_ids", tuple(tuple(ids) for ids in self.action_ids))

    @classmethod
    def of_dataset(cls, dataset: WindowDataset) -> EnvTable:
        return cls(tuple(dataset.env_names), tuple(tuple(ids) for ids in dataset.env_action_ids()))


def _process_info(accelerator: Any | None) -> tuple[int, int, bool]:
    if accelerator is None:
        return 0, 1, True
    return accelerator.process_index, accelerator.num_processes, accelerator.is_main_process


def _clip_actions(
    world_model: WorldModel, frames: torch.Tensor, batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Actions of the real clip, int64 [B, T-1]: recorded (action-guided) or LAM-inferred."""
    if world_model.is_action_guided:
        # the loader's windows may be longer than the frames the protocol keeps
        return batch["actions"].to(frames.device).long()[:, : frames.shape[1] - 1]
    return world_model.infer_actions(frames)


class _Rollouts:
    """Rolls one batch out with fixed prime frames/actions, settings and seed: action sets are paired."""

    def __init__(
        self,
        world_model: WorldModel,
        prime_frames: torch.Tensor,
        prime_actions: torch.Tensor,
        settings: EvalSettings,
        seed: int,
    ) -> None:
        self.world_model, self.settings, self.seed = world_model, settings, seed
        self.prime_frames, self.prime_actions = prime_frames, prime_actions  # [B, T0, 3, H, W], [B, T0-1]

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        return self.world_model.rollout(
            self.prime_frames,
            actions,
            method=self.settings.inference_method,
            steps=self.settings.inference_steps,
            temperature=self.settings.temperature,
            schedule=self.settings.schedule,
            anneal_temperature=self.settings.anneal_temperature,
            seed=self.seed,
            prime_actions=self.prime_actions,
        )  # [B, N, 3, H, W]


def _delta_psnrs(
    rollout: _Rollouts,
    actions: torch.Tensor,
    pred: torch.Tensor,
    future: torch.Tensor,
    t: int,
    allowed: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence ΔPSNR@t [B]: Genie's (all actions random) and upstream's (t-th action random).

    `allowed` [B, num_actions] bool: the actions each sequence's game has; random actions are drawn
    uniformly from those (an action the game never produced was never trained and measures nothing).
    """
    generator = torch.Generator().manual_seed(rollout.seed)
    random_actions = torch.multinomial(
        allowed.float().cpu(), actions.shape[1], replacement=True, generator=generator
    ).to(actions.device)  # [B, N]
    last_random = actions.clone()
    last_random[:, t - 1] = random_actions[:, t - 1]
    target = future[:, t - 1 : t]  # [B, 1, 3, H, W]
    psnr_real = psnr_per_frame(pred[:, t - 1 : t], target)[:, 0]
    psnr_all_random = psnr_per_frame(rollout(random_actions)[:, t - 1 : t], target)[:, 0]
    psnr_last_random = psnr_per_frame(rollout(last_random)[:, t - 1 : t], target)[:, 0]
    return psnr_real - psnr_all_random, psnr_real - psnr_last_random


def _control_clips(
    rollout: _Rollouts,
    frames: torch.Tensor,
    indices: range,
    titles: list[str],
    names: list[str],
    allowed: torch.Tensor,
) -> list[Clip]:
    """Ground truth beside one rollout per action of the sequence's game, all from the same prime frames."""
    prime = rollout.prime_frames  # [B, T0, 3, H, W]
    shown = allowed[list(indices)].any(dim=0).nonzero().flatten().tolist()  # actions any kept clip has
    per_action = {}
    for action in shown:
        actions = torch.full(
            (prime.shape[0], rollout.settings.sample_num_frames), action, device=prime.device
        )
        per_action[action] = rollout(actions)  # [B, N, 3, H, W]
    clips = []
    for index, title in zip(indices, titles):
        columns = {"ground truth": to_uint8_frames(frames[index])}
        for action, pred in per_action.items():
            if allowed[index, action]:
                columns[names[action]] = to_uint8_frames(torch.cat([prime[index], pred[index]]))
        clips.append(Clip(title=title, columns=columns))
    return clips


def _allowed_actions(world_model: WorldModel, envs: EnvTable) -> torch.Tensor:
    """[num_envs, num_actions] bool: which actions each game has (latent actions: all of them)."""
    allowed = torch.ones(len(envs.names), world_model.num_actions, dtype=torch.bool)
    if world_model.is_action_guided and envs.action_ids is not None:
        allowed.zero_()
        for env_id, ids in enumerate(envs.action_ids[: len(envs.names)]):
            allowed[env_id, [i for i in ids if i < world_model.num_actions]] = True
    return allowed


def _action_names(world_model: WorldModel) -> list[str]:
    if world_model.is_action_guided:
        return list(ACTION_VOCABULARY[: world_model.num_actions])
    return [f"latent {i}" for i in range(world_model.num_actions)]


class _Tally:
    """Per-batch sums (per frame, per game, ΔPSNR), FID statistics and the clips kept for gifs."""

    def __init__(self, num_frames: int, env_names: list[str], fid: FidAccumulator | None) -> None:
        num_envs = len(env_names)
        self.env_names, self.fid, self.clips = env_names, fid, []
        # "*_copy": the same figures for the trivial prediction "the last prime frame, repeated"
        self.sums = MetricSums(
            {
                "psnr_frame": (num_frames,),
                "ssim_frame": (num_frames,),
                "psnr_copy_frame": (num_frames,),
                "ssim_copy_frame": (num_frames,),
                "count": (),
                "psnr_game": (num_envs,),
                "ssim_game": (num_envs,),
                "psnr_copy_game": (num_envs,),
                "ssim_copy_game": (num_envs,),
                "count_game": (num_envs,),
                "delta_genie": (),
                "delta_upstream": (),
            }
        )

    @property
    def count(self) -> int:
        return int(self.sums.values["count"])

    def add_frames(
        self, pred: torch.Tensor, future: torch.Tensor, last_prime: torch.Tensor, env_ids: torch.Tensor
    ) -> None:
        """pred, future [B, N, 3, H, W]; last_prime [B, 3, H, W] (the copy baseline's prediction)."""
        copy = last_prime[:, None].expand_as(future)
        batch_size = pred.shape[0]
        for suffix, prediction in (("", pred), ("_copy", copy)):
            psnr_values = psnr_per_frame(prediction, future)  # [B, N]
            ssim_values = ssim_per_frame(prediction, future)
            self.sums.add(f"psnr{suffix}_frame", psnr_values.sum(0))
            self.sums.add(f"ssim{suffix}_frame", ssim_values.sum(0))
            self.sums.add(f"psnr{suffix}_game", psnr_values.mean(1), index=env_ids)
            self.sums.add(f"ssim{suffix}_game", ssim_values.mean(1), index=env_ids)
        self.sums.add("count", batch_size)
        self.sums.add("count_game", torch.ones(batch_size), index=env_ids)
        if self.fid is not None:
            self.fid.update(future, pred)

    def add_deltas(self, delta_genie: torch.Tensor, delta_upstream: torch.Tensor) -> None:
        self.sums.add("delta_genie", delta_genie.sum())
        self.sums.add("delta_upstream", delta_upstream.sum())

    def reduce(self, accelerator: Any | None) -> None:
        self.sums.reduce(accelerator)
        if self.fid is not None:
            self.fid.reduce(accelerator)


def _env_ids(batch: dict[str, torch.Tensor], batch_size: int, env_names: Sequence[str]) -> torch.Tensor:
    """env_id long [B] (all 0 when the batch has none), checked against the names it indexes."""
    if "env_id" not in batch:
        return torch.zeros(batch_size, dtype=torch.long)
    env_ids = batch["env_id"].reshape(-1).cpu().long()
    if int(env_ids.max()) >= len(env_names):
        raise ValueError(
            f"batch has env_id {int(env_ids.max())} but the env table has {len(env_names)} names; pass them all"
        )
    return env_ids


def _replication_clip(title: str, frames: torch.Tensor, prime: torch.Tensor, pred: torch.Tensor) -> Clip:
    """prediction | ground truth for one sequence; both columns start with the same prime frames."""
    columns = {
        "prediction": to_uint8_frames(torch.cat([prime, pred])),
        "ground truth": to_uint8_frames(frames),
    }
    return Clip(title=title, columns=columns)


@dataclass(frozen=True)
class _Plan:
    """What the loop needs, decided once from the settings, the model and the env table."""

    settings: EvalSettings
    device: torch.device
    control_action: int | None  # None: replication with the clips' own actions
    has_delta: bool  # ΔPSNR at settings.delta_psnr_frame is measured
    allowed_by_env: torch.Tensor  # [num_envs, num_actions] bool
    local_target: int  # sequences this process evaluates
    process_index: int
    is_main: bool


def _plan(
    world_model: WorldModel,
    settings: EvalSettings,
    envs: EnvTable,
    accelerator: Any | None,
    device: torch.device | str | None,
) -> _Plan:
    process_index, num_processes, is_main = _process_info(accelerator)
    device = torch.device(device or (accelerator.device if accelerator else world_model.device))
    is_control = settings.is_control
    control_action = (
        settings.control_action(world_model.num_actions, world_model.is_action_guided) if is_control else None
    )
    return _Plan(
        settings=settings,
        device=device,
        control_action=control_action,
        has_delta=control_action is None and settings.delta_psnr_frame <= settings.sample_num_frames,
        allowed_by_env=_allowed_actions(world_model, envs),
        local_target=math.ceil(settings.num_sequences / num_processes),
        process_index=process_index,
        is_main=is_main,
    )


def _batch_clips(
    world_model: WorldModel,
    plan: _Plan,
    envs: EnvTable,
    tally: _Tally,
    rollout: _Rollouts,
    frames: torch.Tensor,
    pred: torch.Tensor,
    env_ids: torch.Tensor,
) -> list[Clip]:
    """The gif clips this batch contributes until `settings.num_gifs` are kept."""
    prime = rollout.prime_frames
    indices = range(min(frames.shape[0], plan.settings.num_gifs - len(tally.clips)))
    if plan.control_action is None:
        return [
            _replication_clip(
                f"{envs.names[int(env_ids[i])]}_seq{len(tally.clips) + i}", frames[i], prime[i], pred[i]
            )
            for i in indices
        ]
    if not indices:
        return []
    titles = [f"{envs.names[int(env_ids[i])]}_control_seq{len(tally.clips) + i}" for i in indices]
    allowed = plan.allowed_by_env[env_ids]
    return _control_clips(rollout, frames, indices, titles, _action_names(world_model), allowed)


def _run_batches(
    world_model: WorldModel,
    loader: Iterable[dict[str, torch.Tensor]],
    plan: _Plan,
    envs: EnvTable,
    tally: _Tally,
    show_progress: bool,
) -> None:
    """The loop: roll every batch out, add its metrics and clips to `tally` until the target is met."""
    settings, device = plan.settings, plan.device
    n, t, t0 = settings.sample_num_frames, settings.delta_psnr_frame, settings.num_first_frames
    progress = progress_bar(
        total=plan.local_target, desc="evaluating", unit="seq", disable=not (plan.is_main and show_progress)
    )
    for batch_index, batch in enumerate(loader):
        if tally.count >= plan.local_target:
            break
        frames = frames_to_model(batch["frames"].to(device))[:, : settings.num_frames]  # [B, T0+N, 3, H, W]
        batch_size = frames.shape[0]
        prime, future = frames[:, :t0], frames[:, t0:]
        clip_actions = _clip_actions(world_model, frames, batch)  # [B, T0+N-1]: action at t leads to t+1
        seed = settings.seed + SEED_STRIDE * plan.process_index + batch_index
        rollout = _Rollouts(world_model, prime, clip_actions[:, : t0 - 1], settings, seed)
        if plan.control_action is None:
            actions = clip_actions[:, t0 - 1 :]  # [B, N]
        else:
            actions = torch.full((batch_size, n), plan.control_action, dtype=torch.long, device=device)
        pred = rollout(actions).float()  # [B, N, 3, H, W]
        env_ids = _env_ids(batch, batch_size, envs.names)
        tally.add_frames(pred, future, prime[:, -1], env_ids)
        if plan.has_delta:
            tally.add_deltas(*_delta_psnrs(rollout, actions, pred, future, t, plan.allowed_by_env[env_ids]))
        tally.clips += _batch_clips(world_model, plan, envs, tally, rollout, frames, pred, env_ids)
        progress.update(batch_size)
    progress.close()


@torch.no_grad()
def evaluate(
    world_model: WorldModel,
    loader: Iterable[dict[str, torch.Tensor]],
    settings: EvalSettings,
    envs: EnvTable,
    *,
    feature_extractor: torch.nn.Module | None = None,
    accelerator: Any | None = None,
    device: torch.device | str | None = None,
    notes: Sequence[str] = (),
    show_progress: bool = True,
) -> EvalResult:
    """Run the protocol over `loader` batches ({"frames" uint8 [B,T,H,W,3], "actions", "env_id"}).

    `envs`: the games `env_id` indexes (`EnvTable.of_dataset(dataset)`). `feature_extractor` enables
    FID (None: FID is null). With an `accelerator`, every process evaluates its shard and sums are
    reduced. `notes`: the caller's lines for the report, before the protocol's own.
    """
    plan = _plan(world_model, settings, envs, accelerator, device)
    fid = FidAccumulator(feature_extractor, plan.device) if feature_extractor is not None else None
    tally = _Tally(settings.sample_num_frames, list(envs.names), fid)
    _run_batches(world_model, loader, plan, envs, tally, show_progress)
    tally.reduce(accelerator)
    return _summarise(settings, tally, plan.has_delta, [*notes, *_notes(plan, envs, tally.count)])


def _notes(plan: _Plan, envs: EnvTable, count: int) -> list[str]:
    """The protocol's own report lines: what was skipped, what the figures mean, what fell short."""
    settings, notes = plan.settings, []
    if plan.control_action is not None and not plan.allowed_by_env[:, plan.control_action].all():
        has_action = plan.allowed_by_env[:, plan.control_action].tolist()
        lacking = [name for name, has in zip(envs.names, has_action) if not has]
        notes.append(
            f"action {settings.action_to_take} is not one of these games' actions (never trained): {', '.join(lacking)}"
        )
    if not plan.has_delta and not settings.is_control:
        notes.append(
            f"ΔPSNR skipped: delta_psnr_frame={settings.delta_psnr_frame} > sample_num_frames={settings.sample_num_frames}"
        )
    if settings.is_control:
        notes.append(
            f"control mode (action {settings.action_to_take}): PSNR/SSIM compare with ground truth that took other actions"
        )
    if count < settings.num_sequences:
        notes.append(
            f"evaluated {count} sequences, fewer than num_sequences={settings.num_sequences} (dataset exhausted)"
        )
    return notes


def _summarise(settings: EvalSettings, tally: _Tally, has_delta: bool, notes: list[str]) -> EvalResult:
    """Turn the (already reduced) sums into means."""
    sums, count = tally.sums, tally.count
    frames = {key: sums.ratio(f"{key}_frame", "count") for key in ("psnr", "ssim", "psnr_copy", "ssim_copy")}
    games = {
        key: sums.ratio(f"{key}_game", "count_game") for key in ("psnr", "ssim", "psnr_copy", "ssim_copy")
    }
    delta = {
        key: float(sums.values[key]) / count if has_delta and count > 0 else None
        for key in ("delta_genie", "delta_upstream")
    }
    per_game = {
        name: {
            **{key: float(values[i]) for key, values in games.items()},
            "num_sequences": int(sums.values["count_game"][i]),
        }
        for i, name in enumerate(tally.env_names)
        if sums.values["count_game"][i] > 0
    }
    return EvalResult(
        mode="control" if settings.is_control else "replication",
        metrics={
            "psnr": float(frames["psnr"].mean()),
            "ssim": float(frames["ssim"].mean()),
            "psnr_copy_last": float(frames["psnr_copy"].mean()),
            "ssim_copy_last": float(frames["ssim_copy"].mean()),
            "fid": tally.fid.compute() if tally.fid is not None else None,
            "delta_psnr_genie": delta["delta_genie"],
            "delta_psnr_upstream": delta["delta_upstream"],
        },
        psnr_per_frame=frames["psnr"].tolist(),
        ssim_per_frame=frames["ssim"].tolist(),
        psnr_per_frame_copy=frames["psnr_copy"].tolist(),
        ssim_per_frame_copy=frames["ssim_copy"].tolist(),
        per_game=per_game,
        num_sequences=count,
        settings=settings.as_dict(),
        notes=list(notes),
        clips=tally.clips,
    )
