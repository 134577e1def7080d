"""The actor-critic trainer under Lightning Fabric: epochs of collection, then training on sequences.

    run_dpath/
        config.yaml        the resolved training config
        metrics.jsonl      one row per epoch (returns, episode length, env steps/s, losses)
        checkpoints/last/, previous/, best_reward/   (agents/checkpoint.py)

Kill it at any point and rerun the same command: it resumes from `last` (model, optimizer, RNG, the
envs' own snapshot, LSTM state and episode tallies), so the next update is the one the uninterrupted
run would have made; metric rows past that checkpoint are dropped.

With `common.num_processes` N > 1 (started by the launcher, agents/cli.py) the N processes form one
DDP group: each steps its own envs from its own seed (`seed + rank * SEED_STRIDE`; rank 0 plays what a
single process would), gradients are all-reduced, every epoch's episodes are gathered from all of them,
and rank 0 alone writes metrics and checkpoints (with every process's collector and env snapshot, so
each resumes its own envs).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from lightning.fabric import Fabric

from agents.actor_critic import build_actor_critic
from agents.checkpoint import read_tensors, resume_checkpoint, write_checkpoint
from agents.config import AgentTrainConfig, upgrade_saved_config
from agents.losses import ALGORITHMS, sequence_loss
from agents.returns import advantages as gae
from agents.reward_shaping import RewardShaping
from agents.rewards import RewardSource, WorldModelRewardSettings, build_reward_source
from agents.rollout import Collector, EpisodeTally, Rollout, cut_sequences
from common.atomic import atomic_write_text
from common.errors import UserError
from common.paths import run_config_fpath
from common.processes import is_launched_worker
from common.progress import progress_bar
from common.seeds import SEED_STRIDE
from common.state_files import join_bytes, load_optimizer_tensors, optimizer_tensors, read_yaml, split_bytes
from data.actions import action_ids
from envs import make_vec_env


def check_config(config: AgentTrainConfig) -> None:
    training, steps = config.actor_critic, config.steps
    if steps.num_envs < 1:
        raise UserError(
            f"collection.train.config.num_envs must be >= 1 (got {steps.num_envs}); e.g. collection.train.config.num_envs=32"
        )
    if training.algorithm not in ALGORITHMS:
        raise UserError(
            f"training.actor_critic.algorithm must be one of {ALGORITHMS} (got '{training.algorithm}')"
        )
    if steps.num_steps < training.sequence_length:
        raise UserError(
            f"collection.train.config.num_steps ({steps.num_steps}) must be >= training.actor_critic.sequence_length "
            f"({training.sequence_length})"
        )
    if training.algorithm == "ppo" and steps.num_steps % training.sequence_length:
        raise UserError(
            f"ppo cuts each rollout into sequences: collection.train.config.num_steps ({steps.num_steps}) must "
            f"be a multiple of training.actor_critic.sequence_length ({training.sequence_length})"
        )
    if training.start_after < 0 or config.evaluation.every < 0:
        raise UserError("training.actor_critic.start_after and evaluation.every must be >= 0")
    if config.common.device not in ("cpu", "gpu", "cuda", "auto"):
        raise UserError(f"common.device must be cpu or gpu (got '{config.common.device}')")
    if config.common.num_processes < 1:
        raise UserError(f"common.num_processes must be >= 1 (got {config.common.num_processes})")
    if config.common.num_processes > 1 and not is_launched_worker():
        raise UserError(
            f"common.num_processes={config.common.num_processes} needs the launcher to start the processes: "
            "python run.py agent train (or auto_explore train) ... common.num_processes=N"
        )


def reward_source_for(
    config: AgentTrainConfig, action_names: tuple[str, ...], device: torch.device | str
) -> RewardSource:
    """The training reward source of `config` (reward.type) for a game with these actions."""
    settings = None
    if config.reward.type == "world_model":
        if not config.world_model_dpath:
            raise UserError(
                "reward.type world_model needs world_model_dpath=<GenieRedux-G checkpoint or its run folder>"
            )
        steps = config.steps
        settings = WorldModelRewardSettings(
            config.world_model_dpath,
            steps.n_preds,
            steps.context_frames,
            str(device),
            steps.world_model_precision,
            config.reward.unscored,
        )
    image_size = config.collection.image_size
    return build_reward_source(config.reward.type, settings, action_ids(action_names), image_size, device)


def epsilon_at(config: AgentTrainConfig, epoch: int) -> float:
    """Linear decay from epsilon_start to epsilon_end over epsilon_decay_epochs, then constant."""
    c = config.steps
    progress = min(1.0, epoch / c.epsilon_decay_epochs) if c.epsilon_decay_epochs > 0 else 1.0
    return c.epsilon + (c.epsilon_end - c.epsilon) * progress


class AgentTrainer:
    def __init__(self, config: AgentTrainConfig, run_dpath: Path) -> None:
        check_config(config)
        self.config, self.run_dpath = config, Path(run_dpath)
        self.checkpoints_dpath = self.run_dpath / "checkpoints"
        common = config.common
        if common.num_threads > 0:
            torch.set_num_threads(common.num_threads)
        is_ddp = common.num_processes > 1
        self.fabric = Fabric(accelerator=common.device, devices=common.num_processes,
                             strategy="ddp" if is_ddp else "auto", precision=common.precision)  # fmt: skip
        if is_ddp:
            self.fabric.launch()  # joins the process group the launcher (torchrun) set up
        self.rank, self.world_size = self.fabric.global_rank, self.fabric.world_size
        self.is_main = self.fabric.is_global_zero
        seed = common.seed + SEED_STRIDE * self.rank  # this process's envs, actions and minibatch order
        self.fabric.seed_everything(seed, verbose=False)  # DDP then gives every process rank 0's weights
        collection, steps = config.collection, config.steps
        levels = tuple(collection.levels) if collection.levels is not None else None
        self.vec_env = make_vec_env(collection.games, steps.num_envs, collection.image_size, seed,
                                    collection.frame_skip, levels=levels,
                                    max_episode_steps=collection.max_episode_steps)  # fmt: skip
        self.num_actions = len(self.vec_env.action_names)
        model = build_actor_critic(self.num_actions, collection.image_size, config.agent.size)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.actor_critic.learning_rate, eps=1e-5)
        self.model, self.optimizer = self.fabric.setup(model, optimizer)
        self.model.mark_forward_method("step")
        reward = config.reward
        shaping = RewardShaping(steps.num_envs, reward.normalize, reward.center, config.actor_critic.gamma)
        self.collector = Collector(self.vec_env, self.build_reward(), steps.num_steps, steps.reward_scale,
                                   shaping, reward.episodic)  # fmt: skip
        self.generator = torch.Generator().manual_seed(seed)  # actions and minibatch order
        self.epoch, self.env_steps, self.wall_s = 0, 0, 0.0
        self.best_score: float | None = None
        self.recent_returns: deque[float] = deque(maxlen=config.checkpoint.best_window)
        self.replay: deque[Rollout] = deque(maxlen=config.actor_critic.replay_epochs)
        self._prepare_run_dpath()

    def build_reward(self) -> RewardSource:
        """The training reward source of this config (reward.type); sized by its first reset."""
        return reward_source_for(self.config, self.vec_env.action_names, self.fabric.device)

    # -- run folder, resume ------------------------------------------------------------------------
    def _prepare_run_dpath(self) -> None:
        config_fpath = run_config_fpath(self.run_dpath)
        current = self.config.to_dict()
        if config_fpath.is_file():
            try:
                saved = upgrade_saved_config(read_yaml(config_fpath))
            except ValueError as error:
                raise UserError(
                    f"{error}; restore it from the config of checkpoints/last, or choose a new run_dpath"
                ) from None
            # a resumed run may be extended, and named by its folder or by resume_id
            for section, key in (("common", "epochs"), ("common", "resume_id"), ("common", "resume_ckpt_id")):
                saved[section][key] = current[section][key]
            saved["run_dpath"], saved["runs_dpath"] = current["run_dpath"], current["runs_dpath"]
            if saved != current:
                raise UserError(
                    f"{self.run_dpath} holds a run with another config; resume it with the same "
                    f"settings (only common.epochs may change) or choose a new run_dpath"
                )
        if self.is_main:
            self.run_dpath.mkdir(parents=True, exist_ok=True)
            atomic_write_text(config_fpath, yaml.safe_dump(current, sort_keys=False))
        self.fabric.barrier()
        last = resume_checkpoint(self.checkpoints_dpath)
        if last is not None:
            self._resume(last)
        if self.is_main:
            self._trim_metrics()
        self.fabric.barrier()  # nothing reads the run folder before rank 0 has put it in order

    def _resume(self, dpath: Path) -> None:
        state = json.loads((dpath / "trainer_state.json").read_text())
        self.model.load_state_dict(read_tensors(dpath, "model"))
        load_optimizer_tensors(self.optimizer, read_tensors(dpath, "optimizer"), state["optimizer"])
        stem, snapshot_key = process_state_names(self.rank)
        collector = read_tensors(dpath, stem)
        self.generator.set_state(collector.pop("generator"))
        env_tensors = {k: v for k, v in collector.items() if k.startswith("env.")}
        self.collector.load_state_tensors({k: v for k, v in collector.items() if not k.startswith("env.")})
        if state[snapshot_key] is not None:
            self.vec_env.set_state(join_bytes(state[snapshot_key], env_tensors))
        else:
            print(
                "warning: these envs cannot snapshot; resumed episodes restart (the next update will differ)"
            )
        self.epoch, self.env_steps, self.wall_s = state["epoch"], state["env_steps"], state["wall_s"]
        self.best_score = state["best_score"]
        self.recent_returns.extend(state["recent_returns"])
        if self.is_main:
            print(f"resumed {self.run_dpath} at epoch {self.epoch} ({self.env_steps} env steps)")

    def _trim_metrics(self) -> None:
        """Drop metric rows of epochs after the checkpoint we resumed from (they will be redone)."""
        fpath = self.run_dpath / "metrics.jsonl"
        if fpath.is_file():
            rows = [line for line in fpath.read_text().splitlines() if line.strip()]
            kept = [line for line in rows if json.loads(line)["epoch"] <= self.epoch]
            if len(kept) != len(rows):
                fpath.write_text("".join(line + "\n" for line in kept))

    def _save(self, name: str) -> None:
        """Every process calls it (for the same names, in the same order); rank 0 writes."""
        module = self.model.module if hasattr(self.model, "module") else self.model
        self._check_weights_agree(module)
        tensors: dict[str, dict[str, torch.Tensor]] = {"model": dict(module.state_dict())}
        state: dict[str, Any] = {
            "epoch": self.epoch, "env_steps": self.env_steps, "wall_s": self.wall_s, "best_score": self.best_score,
            "num_actions": self.num_actions, "action_names": list(self.vec_env.action_names),
            "num_processes": self.world_size,
        }  # fmt: skip
        if name == "last":
            optimizer, optimizer_meta = optimizer_tensors(self.optimizer)
            state |= {"optimizer": optimizer_meta, "recent_returns": list(self.recent_returns)}
            tensors["optimizer"] = optimizer
            for rank, (collector, snapshot) in enumerate(self._gather_to_main(self._process_state())):
                stem, snapshot_key = process_state_names(rank)
                tensors[stem], state[snapshot_key] = collector, snapshot
        if self.is_main:
            write_checkpoint(self.checkpoints_dpath, name, self.config.to_dict(), tensors, state)
        self.fabric.barrier()

    def _process_state(self) -> tuple[dict[str, torch.Tensor], Any]:
        """This process's collector tensors (with its env snapshot's bytes) and the snapshot's metadata."""
        collector = self.collector.state_tensors() | {"generator": self.generator.get_state()}
        collector = {key: tensor.cpu() for key, tensor in collector.items()}  # gathered as CPU tensors
        return collector, split_bytes(self.vec_env.get_state(), collector)

    def _gather_to_main(self, value: Any) -> list[Any]:
        """[value of rank 0, rank 1, ...] on rank 0 ([] elsewhere); [value] in a single process."""
        if self.world_size == 1:
            return [value]
        gathered = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered or []

    def _all_gather(self, value: Any) -> list[Any]:
        """[value of every rank] on every rank; [value] in a single process."""
        if self.world_size == 1:
            return [value]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def _check_weights_agree(self, module: torch.nn.Module) -> None:
        """DDP keeps every process's weights equal; a checkpoint is written only if they are."""
        if self.world_size == 1:
            return
        checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum()
        sums = [float(s) for s in self._all_gather(float(checksum))]
        if max(sums) != min(sums):
            raise RuntimeError(
                f"the processes' weights differ (parameter sums {sums}): gradients were not synced"
            )

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        epochs = self.config.common.epochs
        steps_per_epoch = self.config.steps.num_envs * self.config.steps.num_steps
        with progress_bar(
            total=epochs, initial=self.epoch, unit="epoch", desc="agent", disable=not self.is_main
        ) as bar:
            while self.epoch < epochs:
                row = self.run_epoch()
                bar.update(1)
                bar.set_postfix(env_steps=self.env_steps, steps_per_s=f"{row['env_steps_per_s']:.0f}",
                                ret=_fmt(row["recent_return_mean"]), refresh=False)  # fmt: skip
                if self.epoch % self.config.checkpoint.every == 0 or self.epoch == epochs:
                    self._save("last")
        if self.is_main:
            print(f"done: {self.epoch} epochs, {self.env_steps} env steps ({steps_per_epoch * self.world_size} "
                  f"per epoch) in {self.wall_s:.0f}s; run folder {self.run_dpath}")  # fmt: skip

    def run_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        epsilon = epsilon_at(self.config, self.epoch)
        self.model.eval()
        rollout, tally = self.collector.collect(self.model, epsilon, self.generator, self.fabric.device)
        collect_s = time.perf_counter() - started
        self.model.train()
        if self.epoch < self.config.actor_critic.start_after:  # warm-up: the replay fills, no update yet
            self.replay.append(rollout)
            losses = {}
        else:
            losses = self.mean_over_processes(self.train_on(rollout))
        tally = self.gathered_tally(tally)
        epoch_s = time.perf_counter() - started
        epoch_steps = rollout.actions.numel() * self.world_size
        self.epoch += 1
        self.env_steps += epoch_steps
        self.wall_s += epoch_s
        self.recent_returns.extend(tally.reward_returns)
        row = {
            "epoch": self.epoch, "env_steps": self.env_steps, "wall_s": round(self.wall_s, 2),
            "env_steps_per_s": epoch_steps / epoch_s, "collect_s": collect_s,
            "train_s": epoch_s - collect_s, "epsilon": epsilon, "episodes": len(tally.lengths),
            "return_mean": _mean(tally.game_returns), "reward_return_mean": _mean(tally.reward_returns),
            "episode_length_mean": _mean(tally.lengths),
            "recent_return_mean": _mean(list(self.recent_returns)), **losses,
        }  # fmt: skip
        if self.is_main:
            with open(self.run_dpath / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
        every = self.config.evaluation.every
        if every and self.epoch % every == 0 and self.is_main:
            self.evaluate()
        is_full = len(self.recent_returns) >= self.recent_returns.maxlen
        if is_full and (self.best_score is None or row["recent_return_mean"] > self.best_score):
            self.best_score = row["recent_return_mean"]
            self._save("best_reward")
        return row

    def gathered_tally(self, tally: EpisodeTally) -> EpisodeTally:
        """The episodes every process finished this epoch, rank by rank (the same on every process)."""
        if self.world_size == 1:
            return tally
        merged = EpisodeTally()
        for part in self._all_gather(tally):
            merged.game_returns += part.game_returns
            merged.reward_returns += part.reward_returns
            merged.lengths += part.lengths
        return merged

    def mean_over_processes(self, losses: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1 or not losses:
            return losses
        names = sorted(losses)
        means = self.fabric.all_reduce(torch.tensor([losses[n] for n in names]), reduce_op="mean")
        return dict(zip(names, means.tolist()))

    def train_on(self, rollout: Rollout) -> dict[str, float]:
        t = self.config.actor_critic
        self.replay.append(rollout)
        if t.algorithm == "ppo":
            rollout.advantages, rollout.returns = gae(
                rollout.rewards, rollout.values, rollout.dones, t.gamma, t.lam
            )
            batches = self._ppo_batches(rollout)
        else:
            batches = self._replay_batches()
        totals: dict[str, float] = {}
        for batch in batches:
            state = (batch.state[0].to(self.fabric.device), batch.state[1].to(self.fabric.device))
            logits, values, _ = self.model(batch.frames.to(self.fabric.device), state,
                                           batch.firsts.to(self.fabric.device))  # fmt: skip
            terms = sequence_loss(logits, values, _to(batch, self.fabric.device), t.algorithm, t.gamma, t.lam, t.clip,
                                  t.entropy_coef, t.value_coef, t.normalize_advantages)  # fmt: skip
            self.optimizer.zero_grad(set_to_none=True)
            self.fabric.backward(terms.loss)
            if t.max_grad_norm > 0:
                self.fabric.clip_gradients(self.model, self.optimizer, max_norm=t.max_grad_norm)
            self.optimizer.step()
            for name in ("loss", "policy_loss", "value_loss", "entropy", "clip_fraction"):
                totals[name] = totals.get(name, 0.0) + float(getattr(terms, name).detach())
            totals["gradient_steps"] = totals.get("gradient_steps", 0.0) + 1
        steps = totals.pop("gradient_steps", 1.0)
        return {name: value / steps for name, value in totals.items()}

    def _ppo_batches(self, rollout: Rollout):
        """ppo_epochs passes over every aligned (env, start) sequence of the rollout, shuffled."""
        t = self.config.actor_critic
        num_steps, num_envs = rollout.actions.shape
        starts = torch.arange(0, num_steps, t.sequence_length)
        envs, starts = torch.meshgrid(torch.arange(num_envs), starts, indexing="ij")
        envs, starts = envs.flatten(), starts.flatten()
        for _ in range(t.ppo_epochs):
            order = torch.randperm(len(envs), generator=self.generator)
            for chunk in order.split(t.batch_size):
                yield cut_sequences(rollout, envs[chunk], starts[chunk], t.sequence_length)

    def _replay_batches(self):
        """steps_per_epoch batches of sequences at random (env, start) of a random replayed rollout."""
        t = self.config.actor_critic
        for _ in range(t.steps_per_epoch):
            rollout = self.replay[int(torch.randint(len(self.replay), (), generator=self.generator))]
            num_steps, num_envs = rollout.actions.shape
            envs = torch.randint(num_envs, (t.batch_size,), generator=self.generator)
            starts = torch.randint(
                num_steps - t.sequence_length + 1, (t.batch_size,), generator=self.generator
            )
            yield cut_sequences(rollout, envs, starts, t.sequence_length)

    def evaluate(self) -> list[dict[str, Any]]:
        """One long episode per game with the current policy -> rows in eval.jsonl, gifs in eval/."""
        from agents.evaluate import evaluate_agent

        module = self.model.module if hasattr(self.model, "module") else self.model
        _, rows = evaluate_agent(module, self.config, self.reward_builder(), self.run_dpath / "eval",
                                 f"epoch_{self.epoch:04d}", seed=self.config.common.seed)  # fmt: skip
        with open(self.run_dpath / "eval.jsonl", "a") as handle:
            for row in rows:
                handle.write(json.dumps({"epoch": self.epoch, "env_steps": self.env_steps, **row}) + "\n")
        return rows

    def reward_builder(self) -> Callable[[tuple[str, ...]], RewardSource]:
        return lambda action_names: reward_source_for(self.config, action_names, self.fabric.device)

    def close(self) -> None:
        # the process group is left to the process's exit: torch 2.13's destroy_process_group can deadlock
        # on gloo (it joins gloo's threads holding the GIL while one of them waits for it)
        self.vec_env.close()


def process_state_names(rank: int) -> tuple[str, str]:
    """(collector tensors' file stem, trainer_state key of its env snapshot) for process `rank`."""
    return (
        ("collector", "env_snapshot") if rank == 0 else (f"collector_rank{rank}", f"env_snapshot_rank{rank}")
    )


def _to(batch, device: torch.device):
    """The batch's tensors on `device` (on CPU, the same tensors: `.to` of a tensor already there is itself)."""
    fields = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in vars(batch).items()}
    return type(batch)(**fields)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _mean(values: list[float] | list[int]) -> float | None:
    return float(np.mean(values)) if len(values) else None
