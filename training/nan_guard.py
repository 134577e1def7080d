"""Skip optimizer steps whose loss or gradient is not finite; stop after too many in a row.

One bad batch (a corrupt frame, a bf16 overflow) should cost one step, not the run; a run that keeps
producing NaN has diverged, and continuing would only overwrite good checkpoints with garbage.
"""

from __future__ import annotations

import math
import warnings

from common.errors import UserError


class TrainingDivergedError(UserError):
    """Raised after `max_consecutive` non-finite steps in a row."""


class NanGuard:
    def __init__(self, max_consecutive: int, consecutive: int = 0) -> None:
        if max_consecutive < 1:
            raise UserError(f"train.nan_guard.max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.consecutive = consecutive

    def should_step(self, step: int, loss: float, grad_norm: float) -> bool:
        """True when the update is finite; otherwise warn, count, and raise once the limit is hit."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.consecutive = 0
            return True
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise TrainingDivergedError(
                f"training diverged: {self.consecutive} non-finite steps in a row up to step {step}; "
                "resume from an earlier checkpoint with a lower train.optimizer.lr_max"
            )
        warnings.warn(
            f"step {step}: non-finite loss {loss} / grad norm {grad_norm}; update skipped "
            f"({self.consecutive}/{self.max_consecutive} in a row)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
