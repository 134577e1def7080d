"""Fréchet Inception Distance: feature accumulation and the Fréchet distance are ours; Inception is optional.

`FidAccumulator` takes any feature extractor (`float [N, 3, H, W]` in [0, 1] → `[N, D]`), keeps
float64 sums, outer-product sums and counts for the real and generated sets (so processes add them),
and computes the distance from those. Tests pass a tiny extractor and exercise this same code path.

The standard extractor is torch-fidelity's InceptionV3 (2048-d pool features, the weights every FID
paper uses), fed frames nearest-resized to 299 px as upstream GenieRedux feeds torchmetrics' FID (the
same network). It needs torch-fidelity + torchvision and a local weights file: nothing is downloaded.
When either is missing `load_inception` says what to install or where to put which file, and the
caller reports FID as null rather than a number from some other network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError

INCEPTION_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS_NAME}"
)


def frechet_distance(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> float:
    """‖μa − μb‖² + tr(Σa) + tr(Σb) − 2·tr((Σa Σb)^½), in float64.

    tr((Σa Σb)^½) equals the sum of square roots of the eigenvalues of Σa^½ Σb Σa^½, a symmetric PSD
    matrix, so two `eigh` calls replace scipy's general (and sometimes complex-valued) sqrtm.
    """
    mean_a, cov_a, mean_b, cov_b = (x.double() for x in (mean_a, cov_a, mean_b, cov_b))
    eigvals_a, eigvecs_a = torch.linalg.eigh(cov_a)
    sqrt_cov_a = (eigvecs_a * eigvals_a.clamp_min(0).sqrt()) @ eigvecs_a.T  # [D, D]
    product = sqrt_cov_a @ cov_b @ sqrt_cov_a
    trace_sqrt = torch.linalg.eigvalsh((product + product.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mean_a - mean_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return float(distance.clamp_min(0))


class FidAccumulator:
    """Running feature statistics of a real and a generated frame set; `compute()` gives the FID."""

    def __init__(self, feature_extractor: nn.Module, device: torch.device | str = "cpu") -> None:
        self.feature_extractor = feature_extractor.eval().to(device)
        self.device = torch.device(device)
        self.stats: dict[str, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        images = frames.flatten(0, 1) if frames.dim() == 5 else frames  # [N, 3, H, W]
        features = self.feature_extractor(images.to(self.device).float())
        return features.reshape(images.shape[0], -1).double().cpu()  # [N, D]

    def _update(self, name: str, frames: torch.Tensor) -> None:
        features = self._features(frames)
        if name not in self.stats:
            dim = features.shape[1]
            zeros = torch.zeros
            self.stats[name] = {
                "sum": zeros(dim, dtype=torch.float64),
                "outer_sum": zeros(dim, dim, dtype=torch.float64),
                "count": zeros((), dtype=torch.float64),
            }
        stats = self.stats[name]
        stats["sum"] += features.sum(0)
        stats["outer_sum"] += features.T @ features
        stats["count"] += features.shape[0]

    def update(self, real: torch.Tensor, generated: torch.Tensor) -> None:
        """Add frames `[B, T, 3, H, W]` (or `[N, 3, H, W]`) in [0, 1] to the real and generated sets."""
        self._update("real", real)
        self._update("generated", generated)

    def reduce(self, accelerator: object | None) -> None:
        """Sum the statistics over processes (sums and counts, so the result equals one big run)."""
        if accelerator is None or getattr(accelerator, "num_processes", 1) == 1:
            return
        for stats in self.stats.values():
            for key, value in stats.items():
                stats[key] = accelerator.reduce(value.to(accelerator.device), reduction="sum").cpu()

    def _mean_cov(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.stats[name]
        count = stats["count"]
        mean = stats["sum"] / count
        # Unbiased covariance from the sums: (Σ f fᵀ − n μ μᵀ) / (n − 1).
        cov = (stats["outer_sum"] - count * torch.outer(mean, mean)) / (count - 1)
        return mean, cov

    def compute(self) -> float | None:
        """FID between the two sets, or None when either holds fewer than two frames."""
        if any(name not in self.stats or self.stats[name]["count"] < 2 for name in ("real", "generated")):
            return None
        return frechet_distance(*self._mean_cov("real"), *self._mean_cov("generated"))


def default_inception_fpath() -> Path:
    """Where torch-fidelity (and so torchmetrics' FID) looks for the weights: the torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_NAME


class InceptionFeatures(nn.Module):
    """torch-fidelity's FID InceptionV3 as `float [N, 3, H, W]` in [0, 1] → 2048-d pool features."""

    def __init__(self, weights_fpath: Path) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.inception = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_fpath)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception(inception_input(images))[0]  # [N, 2048]


def inception_input(images: torch.Tensor) -> torch.Tensor:
    """float [N, 3, H, W] in [0, 1] -> uint8 [N, 3, 299, 299], nearest-neighbour, as upstream GenieRedux does
    before torchmetrics' FID (torch-fidelity's network would otherwise resize 64 px frames bilinearly, which
    blurs them and gives different, lower FIDs than the papers' protocol)."""
    resized = F.interpolate(images.clamp(0, 1), size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="nearest")
    return (resized * 255).round().to(torch.uint8)


def load_inception(weights_fpath: str | None) -> tuple[nn.Module | None, str]:
    """The InceptionV3 extractor, or None and one line saying what is missing and how to fix it.

    An explicitly given `weights_fpath` that does not exist is a user error; the default cache path
    being empty just means FID is skipped with that line.
    """
    if weights_fpath and not Path(weights_fpath).is_file():
        raise UserError(
            f"eval.fid_weights_fpath={weights_fpath} does not exist; point it at {INCEPTION_WEIGHTS_NAME}"
        )
    fpath = Path(weights_fpath) if weights_fpath else default_inception_fpath()
    if not fpath.is_file():
        return None, (
            f"FID skipped (reported as null): no InceptionV3 weights at {fpath}; download {INCEPTION_WEIGHTS_URL} "
            f"there (or set eval.fid_weights_fpath=<file>)"
        )
    if importlib.util.find_spec("torch_fidelity") is None or importlib.util.find_spec("torchvision") is None:
        return None, (
            "FID skipped (reported as null): InceptionV3 needs torch-fidelity and torchvision; "
            "pip install torch-fidelity torchvision (a torchvision built for your torch)"
        )
    return InceptionFeatures(fpath), f"FID: InceptionV3 pool features from {fpath}"
