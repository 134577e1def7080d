"""The overrides a short single-process world-model training needs, in one place.

The named configs (configs/*.yaml) encode the papers' multi-GPU runs; the demo and the experiments
train small models on one CPU process for a few hundred or thousand steps. `training_overrides` turns
such a plan into the `genie_redux train` overrides, so every chain sets the same keys the same way
(warm-up a tenth of the run, validation and checkpoints at its middle and end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# GenieRedux-G's learning rate in the CPU recipe (peak -> end of the cosine): measured on CoinRun at 10
# CPU-minutes, 2 seeds, 20.5 dB autoregressive against 18.4 at 3e-3 and 13.7 at 1e-3
# (experiments/results/fidelity_batch1, _batch2); pipelines/configs/demo.yaml trains the demo with it too.
DYNAMICS_LR_MAX, DYNAMICS_LR_MIN = 1e-2, 1e-3


@dataclass(frozen=True)
class TrainingPlan:
    dataset_root_dpath: Path  # folder holding the episode store
    dataset_name: str  # the store's name under it (the generate config that wrote it)
    run_dpath: Path
    num_train_steps: int
    batch_size: int = 8
    lr_max: float = 1e-3  # tiny models tolerate (and at these step counts need) more than the paper's 1e-4
    lr_min: float = 1e-4
    model: str = "tiny"  # size preset
    image_size: int | None = 32  # None: the preset's
    grad_clip: float = 1.0  # the papers' 10 is for their batch of 84+
    num_workers: int = 1
    saves: int = 2  # checkpoints and validations over the run (at its end and evenly before)
    eval_protocol: bool = True  # validation also runs the evaluation protocol
    extra: tuple[str, ...] = field(default_factory=tuple)  # further overrides, e.g. model_overrides


def training_overrides(plan: TrainingPlan) -> list[str]:
    every_steps = max(1, plan.num_train_steps // max(1, plan.saves))
    overrides = [
        f"model={plan.model}",
        *([f"+model_overrides.image_size={plan.image_size}"] if plan.image_size else []),
        f"train.dataset_root_dpath={plan.dataset_root_dpath}",
        f"train.dataset_name={plan.dataset_name}",
        f"train.num_train_steps={plan.num_train_steps}",
        f"train.batch_size={plan.batch_size}",
        "train.num_processes=1",  # one CPU process, whatever the config's GPU layout
        "train.grad_accum=1",
        f"train.grad_clip={plan.grad_clip}",
        f"train.optimizer.lr_max={plan.lr_max}",
        f"train.optimizer.lr_min={plan.lr_min}",
        f"train.schedule.warmup_steps={max(1, plan.num_train_steps // 10)}",
        f"train.checkpoint.every_steps={every_steps}",
        f"train.validation.every_steps={every_steps}",
        f"train.num_workers={plan.num_workers}",
        f"run_dpath={plan.run_dpath}",
    ]
    if not plan.eval_protocol:
        overrides.append("train.validation.eval_protocol=false")
    return [*overrides, *plan.extra]
