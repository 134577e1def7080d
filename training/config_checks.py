"""Check a training config before anything runs or is written: one line per problem, naming the key.

Hydra's strict mode catches unknown keys and the launcher catches type changes; this catches values a
run cannot use (a batch of 0, negative steps, a validation horizon longer than the windows), which
would otherwise fail as a traceback mid-run or, worse, finish and write an untrained model.
"""

from __future__ import annotations

from omegaconf import DictConfig

from common.errors import UserError
from training.evaluation.settings import EvalSettings

MIXED_PRECISION_MODES = ("auto", "bf16", "fp16", "no")
AT_LEAST_ONE = (
    "batch_size", "grad_accum", "num_processes", "num_train_steps", "frame_stride", "log_every_steps",
    "checkpoint.every_steps", "validation.num_batches", "validation.batch_size", "validation.maskgit_steps",
)  # fmt: skip
AT_LEAST_ZERO = (
    "num_workers", "grad_clip", "checkpoint.keep_last", "validation.every_steps", "validation.num_gifs",
    "schedule.warmup_steps", "optimizer.weight_decay",
)  # fmt: skip


def value(train_cfg: DictConfig, dotted: str):  # noqa: ANN201 (any config value)
    node = train_cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def check_train_config(cfg: DictConfig) -> None:
    """UserError for the first value of `cfg.train` (and the eval settings validation uses) that cannot work."""
    tc = cfg.train
    for key in AT_LEAST_ONE:
        if value(tc, key) < 1:
            raise UserError(f"train.{key}={value(tc, key)} must be >= 1")
    for key in AT_LEAST_ZERO:
        if value(tc, key) < 0:
            raise UserError(f"train.{key}={value(tc, key)} must be >= 0")
    if tc.num_frames < 2:
        raise UserError(
            f"train.num_frames={tc.num_frames} must be >= 2 (a window needs a frame and its successor)"
        )
    lr_max, lr_min = tc.optimizer.lr_max, tc.optimizer.lr_min
    if lr_max <= 0 or not 0 <= lr_min <= lr_max:
        raise UserError(f"need 0 < train.optimizer.lr_max and 0 <= lr_min <= lr_max (got {lr_max}, {lr_min})")
    if not 0 < tc.schedule.warmup_start_factor <= 1:
        raise UserError(
            f"train.schedule.warmup_start_factor={tc.schedule.warmup_start_factor} must be in (0, 1]"
        )
    if not all(0 <= beta < 1 for beta in tc.optimizer.betas) or len(tc.optimizer.betas) != 2:
        raise UserError(f"train.optimizer.betas={list(tc.optimizer.betas)} must be two values in [0, 1)")
    if str(tc.mixed_precision) not in MIXED_PRECISION_MODES:
        raise UserError(
            f"train.mixed_precision={tc.mixed_precision} must be one of {', '.join(MIXED_PRECISION_MODES)}"
        )
    if tc.checkpoint.best_mode not in ("max", "min"):
        raise UserError(f"train.checkpoint.best_mode={tc.checkpoint.best_mode} must be max or min")
    if tc.time_budget_min is not None and not float(tc.time_budget_min) > 0:
        raise UserError(f"train.time_budget_min={tc.time_budget_min} must be > 0 minutes (or null)")
    if tc.budget.calibration_steps < 1 or tc.budget.evaluations < 1:
        raise UserError(
            f"train.budget.calibration_steps={tc.budget.calibration_steps} and train.budget.evaluations="
            f"{tc.budget.evaluations} must be >= 1"
        )
    if cfg.kind != "tokenizer" and tc.validation.every_steps > 0:
        check_dynamics_validation(cfg)


def check_dynamics_validation(cfg: DictConfig) -> None:
    """What a dynamics run's validation will ask of its windows, checked before the first step."""
    tc = cfg.train
    if not 1 <= tc.validation.num_prime_frames < tc.num_frames:
        raise UserError(
            f"train.validation.num_prime_frames={tc.validation.num_prime_frames} must be in [1, {tc.num_frames - 1}] "
            f"(train.num_frames={tc.num_frames})"
        )
    if tc.validation.eval_protocol:
        settings = EvalSettings.from_config(cfg.eval)
        if settings.num_frames > tc.num_frames:
            raise UserError(
                f"train.validation.eval_protocol needs train.num_frames >= eval.num_first_frames + "
                f"eval.sample_num_frames ({settings.num_frames}); lower those or set train.validation.eval_protocol=false"
            )
