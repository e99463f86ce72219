"""Input validation shared by the feature-space metrics (FID, KID, PRD, PRDC, IS, coverage).

Every metric works on a float64 NumPy copy of the features: the statistics involved (covariances,
matrix square roots, kernel sums over 10⁶ pairs) lose digits quickly in float32.
"""

from __future__ import annotations

import numpy as np

from otgen.errors import OTGenError
from otgen.utils.checks import ArrayLike, as_points


def as_features(x: ArrayLike, name: str, *, min_n: int = 1) -> np.ndarray:
    """Validate a feature matrix (n, d): finite, non-empty, at least ``min_n`` rows; float64."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    t = as_points(x, name)
    if t.shape[0] < min_n:
        raise OTGenError(f"{name} has {t.shape[0]} samples; at least {min_n} are needed")
    return t.double().numpy()


def same_features(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> None:
    """Raise when two feature matrices do not share their dimension."""
    if x.shape[1] != y.shape[1]:
        raise OTGenError(
            f"{xname} and {yname} have different feature dimensions ({x.shape[1]} vs {y.shape[1]})"
        )
