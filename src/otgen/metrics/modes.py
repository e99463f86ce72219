"""Mode-collapse metrics of PacGAN (Lin et al. 2018), as reported in AE-OT's Table 2.

Given generated samples and the K mode centres of a Gaussian mixture with common std σ:

1. each sample is assigned to its nearest mode by the normalised distance ``‖x − μ_k‖ / σ``;
2. it is *high quality* when that distance is below ``threshold`` (3, i.e. within 3σ; for
   grid25, σ = 0.05, this is the Euclidean radius 0.15);
3. ``modes`` = number of modes with at least one high-quality sample;
4. ``high_quality`` = high-quality samples / all samples;
5. ``reverse_kl`` = KL(q ‖ uniform) = ln K − H(q) (natural log), where q is the normalised
   histogram of high-quality samples over the K modes.

Convention: PacGAN and AE-OT draw **2,500** generated samples per evaluation and average over
10 runs; :func:`mode_metrics` accepts any number of samples, callers wanting comparable numbers
pass 2,500 (``N_SAMPLES``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from otgen.errors import OTGenError
from otgen.utils.checks import ArrayLike, as_points, check_positive, same_dim

N_SAMPLES = 2500  # samples per evaluation in PacGAN / AE-OT Table 2


@dataclass(frozen=True)
class ModeMetrics:
    """PacGAN mode statistics of one sample set (see the module docstring)."""

    modes: int  # modes with >= 1 high-quality sample
    num_modes: int  # K, modes of the target mixture
    high_quality: float  # fraction of samples within `threshold` normalised distance
    reverse_kl: float  # KL(q || uniform), natural log; inf when no sample is high quality
    counts: tuple[int, ...]  # high-quality samples per mode (length K)
    n_samples: int

    def as_dict(self) -> dict:
        return asdict(self)


def mode_metrics(
    samples: ArrayLike,
    dataset_or_means: str | ArrayLike,
    std: float | None = None,
    *,
    threshold: float = 3.0,
) -> ModeMetrics:
    """PacGAN's modes / high-quality fraction / reverse KL of ``samples`` (n, d).

    ``dataset_or_means`` is a toy dataset name (``grid25``, ``ring8``, ``gauss25-dot``,
    ``gauss4``; its means and std come from :func:`otgen.data.toy.modes`) or a ``(K, d)``
    tensor of mode centres, in which case ``std`` is required.
    """
    x = as_points(samples, "samples").double()
    means, sigma = _resolve_modes(dataset_or_means, std)
    same_dim(x, means, "samples", "means")
    threshold = check_positive(threshold, "threshold")

    # Normalised distance to every mode; torch.cdist on float64 avoids the cancellation of
    # the ‖x‖² + ‖μ‖² − 2⟨x, μ⟩ expansion for points sitting right on a mode.
    dist = torch.cdist(x, means) / sigma
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist < threshold
    k = means.shape[0]
    counts = torch.bincount(nearest[good], minlength=k)
    n_good = int(counts.sum())
    return ModeMetrics(
        modes=int((counts > 0).sum()),
        num_modes=k,
        high_quality=n_good / x.shape[0],
        reverse_kl=_kl_to_uniform(counts) if n_good else math.inf,
        counts=tuple(int(c) for c in counts),
        n_samples=x.shape[0],
    )


def _kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(q ‖ U_K) = Σ q ln(K q) with 0 ln 0 = 0."""
    q = counts.double() / counts.sum()
    q = q[q > 0]
    return float((q * (q * counts.numel()).log()).sum().clamp_min(0.0))


def _resolve_modes(dataset_or_means: str | ArrayLike, std: float | None):
    if isinstance(dataset_or_means, str):
        from otgen.data.toy import modes

        if std is not None:
            raise OTGenError("std is taken from the dataset; pass means to use a custom std")
        means, sigma = modes(dataset_or_means)
        return means.double(), sigma
    if std is None:
        raise OTGenError("std is required when mode means are given explicitly")
    return as_points(dataset_or_means, "means").double(), check_positive(std, "std")
