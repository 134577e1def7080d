"""Learning-rate schedule: linear warmup from a fraction of the peak, then cosine decay to the floor.

The cosine half-period ends exactly at `num_train_steps` (upstream's restarted before training ended),
so the last optimizer step runs at `lr_min` and nothing after it climbs back up.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def lr_at_step(
    step: int,
    *,
    lr_max: float,
    lr_min: float,
    warmup_steps: int,
    warmup_start_factor: float,
    num_train_steps: int,
) -> float:
    """Learning rate for the optimizer step with index `step` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        # Linear ramp from warmup_start_factor * lr_max (step 0) up to lr_max (step warmup_steps).
        fraction = step / warmup_steps
        return lr_max * (warmup_start_factor + (1.0 - warmup_start_factor) * fraction)
    decay_steps = max(num_train_steps - 1 - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / decay_steps, 0.0), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    lr_max: float,
    lr_min: float,
    warmup_steps: int,
    warmup_start_factor: float,
    num_train_steps: int | Callable[[], int],
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over `lr_at_step`; its state_dict holds only numbers (the lambda is not saved).

    `num_train_steps` may be a function, read at every step: a time-budgeted run fixes its length after
    its first steps (training/trainer.py), and the schedule then ends there."""
    steps_of = num_train_steps if callable(num_train_steps) else (lambda: num_train_steps)
    if not 0 < lr_min <= lr_max:
        raise ValueError(f"need 0 < lr_min <= lr_max, got lr_min={lr_min}, lr_max={lr_max}")

    def factor(step: int) -> float:
        return (
            lr_at_step(
                step,
                lr_max=lr_max,
                lr_min=lr_min,
                warmup_steps=warmup_steps,
                warmup_start_factor=warmup_start_factor,
                num_train_steps=steps_of(),
            )
            / lr_max
        )

    for group in optimizer.param_groups:
        group["lr"] = lr_max
        group["initial_lr"] = lr_max
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
