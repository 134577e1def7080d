"""Evaluation: frame metrics, FID, the one protocol (`evaluate`), reports and gifs (docs/evaluation.md)."""

from training.evaluation.fid import FidAccumulator, load_inception
from training.evaluation.metrics import delta_psnr, psnr, psnr_per_frame, ssim, ssim_per_frame
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.result import EvalResult
from training.evaluation.settings import EvalSettings

__all__ = [
    "EnvTable",
    "EvalResult",
    "EvalSettings",
    "FidAccumulator",
    "delta_psnr",
    "evaluate",
    "load_inception",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
]
