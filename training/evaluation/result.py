"""What one evaluation run produced: the numbers (JSON-ready) and a few clips to show as gifs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Display names of the headline metrics, in table order; the keys are those of EvalResult.metrics.
METRIC_LABELS: dict[str, str] = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "psnr_copy_last": "PSNR (dB), copying the last prime frame",
    "ssim_copy_last": "SSIM, copying the last prime frame",
    "fid": "FID",
    "delta_psnr_genie": "ΔPSNR@t, Genie (all actions random)",
    "delta_psnr_upstream": "ΔPSNR@t, upstream variant (last action random)",
}


@dataclass
class Clip:
    """One sequence to show: columns of uint8 `[T, H, W, 3]` frames (prime frames included), same T."""

    title: str
    columns: dict[str, np.ndarray]


@dataclass
class EvalResult:
    mode: str  # "replication" (real/inferred actions) or "control" (one fixed action per rollout)
    metrics: dict[str, float | None]  # keys of METRIC_LABELS; None = not computed (see notes)
    psnr_per_frame: list[float]  # mean PSNR of generated frame 1..N
    ssim_per_frame: list[float]
    per_game: dict[str, dict[str, float | int]]  # env name -> psnr, ssim, psnr_copy, ssim_copy, num_sequences
    num_sequences: int
    settings: dict[str, Any]
    # the trivial baseline scored the same way: every frame predicted as the last prime frame
    psnr_per_frame_copy: list[float] = field(default_factory=list)
    ssim_per_frame_copy: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    # the play checks (training/evaluation/play_checks.py), when asked for: "action_response", "drift"
    play: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Everything but the clips, with NaN written as null (JSON has no NaN)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {key: clean(item) for key, item in value.items()}
            if isinstance(value, list):
                return [clean(item) for item in value]
            return value

        return clean(
            {
                "mode": self.mode,
                "metrics": self.metrics,
                "psnr_per_frame": self.psnr_per_frame,
                "ssim_per_frame": self.ssim_per_frame,
                "psnr_per_frame_copy": self.psnr_per_frame_copy,
                "ssim_per_frame_copy": self.ssim_per_frame_copy,
                "per_game": self.per_game,
                "num_sequences": self.num_sequences,
                "settings": self.settings,
                "notes": self.notes,
                "play": self.play,
            }
        )


def read_eval_figures(results_fpath: Path) -> dict[str, Any]:
    """An evaluation's results.json -> its metrics and per-frame PSNR curve ({} if it is not there)."""
    if not results_fpath.is_file():
        return {}
    result = json.loads(results_fpath.read_text())
    return {**result["metrics"], "psnr_per_frame": [round(v, 3) for v in result.get("psnr_per_frame", [])]}
