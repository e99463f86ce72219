"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", §4).

KID is the squared maximum mean discrepancy between the real and generated feature
distributions under the cubic polynomial kernel

    k(x, y) = (xᵀy / d + 1)³                                        (d = feature dimension)

estimated with the *unbiased* U-statistic (Gretton et al. 2012, Lemma 6)::

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j)
             − 2/m² Σ_{i,j} k(x_i, y_j)

Unlike FID it has an unbiased estimator, so it can be negative when both sets come from the
same distribution, and its expectation does not depend on the sample size. Protocol (as in the
paper's code and torch-fidelity): 100 subsets of m = 1,000 samples drawn without replacement
from each set, reporting the mean and standard deviation over subsets. Subsets come from a
seeded NumPy generator. With fewer than ``subset_size`` samples in a set, KID is refused (as in
torch-fidelity) rather than silently computed on smaller subsets, whose scores are not
comparable (the estimator's variance grows as m shrinks): pass a smaller ``subset_size``
explicitly, or ``allow_smaller_subsets=True`` to use the smaller set size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otgen.errors import OTGenError
from otgen.metrics._inputs import as_features, same_features
from otgen.utils.checks import ArrayLike, check_int

N_SUBSETS = 100
SUBSET_SIZE = 1000


@dataclass(frozen=True)
class KernelInceptionDistance:
    mean: float  # mean over subsets of the unbiased MMD² estimate
    std: float  # standard deviation over subsets
    subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3) -> np.ndarray:
    """Gram matrix (xᵀy / d + 1)^degree of the rows of x (n, d) and y (m, d)."""
    k = x @ y.T / x.shape[1] + 1.0
    if degree == 3:  # k·k·k is several times faster than the generic float power
        return k * k * k
    return k**degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD² from the three Gram matrices (m×m, m×m, m×m); see the module docstring."""
    m = k_xx.shape[0]
    if m < 2 or k_yy.shape[0] != m or k_xy.shape != (m, m):
        raise OTGenError("mmd2_unbiased needs square Gram matrices of equal size m >= 2")
    # Diagonal terms k(x_i, x_i) are excluded: they are what makes the V-statistic biased.
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.mean())


def kid(
    feat_real: ArrayLike,
    feat_fake: ArrayLike,
    *,
    subsets: int = N_SUBSETS,
    subset_size: int = SUBSET_SIZE,
    seed: int = 0,
    allow_smaller_subsets: bool = False,
) -> KernelInceptionDistance:
    """KID between feature sets (n, d) and (m, d): mean/std of MMD²_u over random subsets."""
    x = as_features(feat_real, "feat_real", min_n=2)
    y = as_features(feat_fake, "feat_fake", min_n=2)
    same_features(x, y, "feat_real", "feat_fake")
    subsets = check_int(subsets, "subsets")
    m = check_int(subset_size, "subset_size", minimum=2)
    have = min(x.shape[0], y.shape[0])
    if have < m and not allow_smaller_subsets:
        raise OTGenError(
            f"KID subsets of {m} samples need at least {m} per set, have "
            f"{x.shape[0]} real and {y.shape[0]} generated; pass subset_size=<= {have} "
            "or allow_smaller_subsets=True"
        )
    m = min(m, have)
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values[s] = mmd2_unbiased(
            polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys)
        )
    return KernelInceptionDistance(float(values.mean()), float(values.std()), subsets, m)
