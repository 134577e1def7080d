"""The training curve of an agent run: return, episode length and env steps/s against env steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def plot_training_curve(metrics_fpath: Path, out_fpath: Path, window: int = 10) -> Path:
    """metrics.jsonl -> a PNG of three panels (moving means over `window` epochs with episodes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.atomic import atomic_path

    rows = [json.loads(line) for line in Path(metrics_fpath).read_text().splitlines() if line.strip()]
    finished = [r for r in rows if r["return_mean"] is not None]
    if not finished:
        raise ValueError(f"{metrics_fpath} has no finished episodes to plot")
    kernel = np.ones(min(window, len(finished))) / min(window, len(finished))
    steps = np.asarray([r["env_steps"] for r in finished])
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for axis, key, label in zip(
        axes,
        ("return_mean", "episode_length_mean", "env_steps_per_s"),
        ("episode return (game)", "episode length", "env steps/s"),
        strict=True,
    ):
        values = np.asarray([r[key] for r in finished], dtype=float)
        axis.plot(steps, values, alpha=0.3)
        if len(values) >= len(kernel):
            axis.plot(steps[len(kernel) - 1 :], np.convolve(values, kernel, mode="valid"))
        axis.set_xlabel("env steps")
        axis.set_title(label)
    figure.tight_layout()
    with atomic_path(out_fpath) as tmp_fpath:
        figure.savefig(tmp_fpath, format="png", dpi=90)
    plt.close(figure)
    return Path(out_fpath)
