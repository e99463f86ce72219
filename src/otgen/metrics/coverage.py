"""Class coverage of generated samples, read by a classifier (the image analogue of PacGAN's modes).

A trained classifier labels each generated sample by its arg-max logit. With q the normalised
histogram of predicted classes and p the class distribution of the data (from its labels, or
uniform when none are given):

    classes covered = #{c : q_c > 0}
    reverse KL      = KL(q ‖ p) = Σ_c q_c ln(q_c / p_c)        (natural log; 0 ln 0 = 0)

This mirrors PacGAN's reverse KL over modes (``otgen.metrics.modes``), with the data's own class
frequencies in place of the uniform distribution; it is +inf when the generator produces a
class that has no data (p_c = 0 < q_c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from otgen.errors import OTGenError
from otgen.metrics._inputs import as_features
from otgen.utils.checks import ArrayLike

_DIST_TOL = 1e-6


@dataclass(frozen=True)
class ClassCoverage:
    counts: tuple[int, ...]  # generated samples predicted in each class
    fractions: tuple[float, ...]  # q, the normalised counts
    data_fractions: tuple[float, ...]  # p, the data's class distribution
    classes_covered: int  # classes with at least one generated sample
    num_classes: int
    reverse_kl: float  # KL(q || p), natural log


def class_coverage(
    logits: ArrayLike,
    data_labels: ArrayLike | None = None,
    *,
    data_dist: ArrayLike | None = None,
) -> ClassCoverage:
    """Coverage of the classes by generated samples, from the classifier's ``logits`` (n, K).

    The data distribution p comes from integer ``data_labels`` (its class frequencies), or is
    given directly as ``data_dist`` (K,), or is uniform when neither is given.
    """
    z = as_features(logits, "logits")
    num_classes = z.shape[1]
    counts = np.bincount(z.argmax(axis=1), minlength=num_classes)
    q = counts / counts.sum()
    p = _data_distribution(data_labels, data_dist, num_classes)
    return ClassCoverage(
        counts=tuple(int(c) for c in counts),
        fractions=tuple(float(v) for v in q),
        data_fractions=tuple(float(v) for v in p),
        classes_covered=int((counts > 0).sum()),
        num_classes=num_classes,
        reverse_kl=reverse_kl(q, p),
    )


def reverse_kl(q: np.ndarray, p: np.ndarray) -> float:
    """KL(q ‖ p) in nats for histograms q, p; 0 ln 0 = 0 and +inf when q > 0 = p somewhere."""
    support = q > 0
    if (p[support] <= 0).any():
        return math.inf
    return float(max((q[support] * np.log(q[support] / p[support])).sum(), 0.0))


def _data_distribution(
    labels: ArrayLike | None, dist: ArrayLike | None, num_classes: int
) -> np.ndarray:
    if labels is not None and dist is not None:
        raise OTGenError("give data_labels or data_dist, not both")
    if dist is not None:
        p = np.asarray(dist.detach().cpu() if hasattr(dist, "detach") else dist, np.float64)
        if p.shape != (num_classes,) or not np.isfinite(p).all() or (p < 0).any():
            raise OTGenError(f"data_dist must be {num_classes} finite non-negative numbers")
        if abs(p.sum() - 1.0) > _DIST_TOL:
            raise OTGenError(f"data_dist must sum to 1 (sums to {p.sum():.6g})")
        return p
    if labels is None:
        return np.full(num_classes, 1.0 / num_classes)
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels).ravel()
    if y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise OTGenError("data_labels must be a non-empty array of integer class labels")
    if y.min() < 0 or y.max() >= num_classes:
        raise OTGenError(
            f"data_labels must lie in [0, {num_classes - 1}] (the classifier has "
            f"{num_classes} classes), got [{y.min()}, {y.max()}]"
        )
    return np.bincount(y, minlength=num_classes) / y.size


def plot_class_coverage(cov: ClassCoverage, path, *, title: str = "class coverage"):
    """Bar chart of the generated class histogram q beside the data's p; PNG at ``path``."""
    from matplotlib.figure import Figure

    from otgen.utils.io import atomic_write

    fig = Figure(figsize=(max(4.0, 0.45 * cov.num_classes + 1.5), 3.2))
    ax = fig.add_subplot()
    idx = np.arange(cov.num_classes)
    ax.bar(idx - 0.2, cov.data_fractions, width=0.4, label="data p", color="tab:red", alpha=0.7)
    ax.bar(idx + 0.2, cov.fractions, width=0.4, label="generated q", color="tab:blue")
    ax.set(
        xticks=idx,
        xlabel="predicted class",
        ylabel="fraction",
        title=f"{title}: {cov.classes_covered}/{cov.num_classes} classes, "
        f"KL(q‖p) = {cov.reverse_kl:.3f}",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
