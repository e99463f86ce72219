"""Precision, recall, density and coverage (Naeem et al. 2020, ICML, §3–4).

Let X = {x_i} (n real features), Y = {y_j} (m generated), and NND_k(u) the distance from u to
its k-th nearest neighbour inside its own set (itself excluded). With balls
B(u, r) = {v : ‖v − u‖ < r} (strict '<', as in the paper's definition):

    precision = 1/m Σ_j 1[ y_j ∈ ∪_i B(x_i, NND_k(x_i)) ]         (Kynkäänniemi et al. 2019)
    recall    = 1/n Σ_i 1[ x_i ∈ ∪_j B(y_j, NND_k(y_j)) ]
    density   = 1/(k m) Σ_j Σ_i 1[ y_j ∈ B(x_i, NND_k(x_i)) ]          (Eq. 3)
    coverage  = 1/n Σ_i 1[ ∃ j : y_j ∈ B(x_i, NND_k(x_i)) ]            (Eq. 4)

with k = 5 (the paper's recommendation). Density is not bounded by 1 (it is 1 in expectation
for identical distributions); the others lie in [0, 1].

Numerics: all comparisons use *squared* distances from one float64 Gram expansion
‖u‖² + ‖v‖² − 2uᵀv, so radii and distances are rounded identically (no sqrt; exact for
integer-valued data), and the m × n distance matrix is processed in row chunks to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otgen.metrics._inputs import as_features, same_features
from otgen.utils.checks import ArrayLike, check_int

K_NEAREST = 5
_CHUNK = 1024  # rows per distance block: 1024 × 50,000 float64 ≈ 400 MB at worst


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)); clipped at 0 against round-off."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def knn_sq_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row of x."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], _CHUNK):
        d2 = sq_distances(x[s : s + _CHUNK], x)
        # Column k of the partially sorted row: index 0 is the point itself (distance 0).
        out[s : s + _CHUNK] = np.partition(d2, k, axis=1)[:, k]
    return out


def prdc(real: ArrayLike, fake: ArrayLike, *, k: int = K_NEAREST) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` (m, d) against ``real`` (n, d)."""
    k = check_int(k, "k")
    x = as_features(real, "real", min_n=k + 1)
    y = as_features(fake, "fake", min_n=k + 1)
    same_features(x, y, "real", "fake")
    r2 = knn_sq_radii(x, k)  # NND_k(x_i)²
    s2 = knn_sq_radii(y, k)  # NND_k(y_j)²
    in_real_ball_any = np.zeros(y.shape[0], dtype=bool)  # precision, per y_j
    real_covered = np.zeros(x.shape[0], dtype=bool)  # coverage, per x_i
    real_recalled = np.zeros(x.shape[0], dtype=bool)  # recall, per x_i
    density_count = 0
    for s in range(0, y.shape[0], _CHUNK):
        d2 = sq_distances(y[s : s + _CHUNK], x)  # (chunk of y) × n
        inside_real = d2 < r2[None, :]  # y_j ∈ B(x_i, NND_k(x_i))
        in_real_ball_any[s : s + _CHUNK] = inside_real.any(axis=1)
        density_count += int(inside_real.sum())
        real_covered |= inside_real.any(axis=0)
        real_recalled |= (d2 < s2[s : s + _CHUNK, None]).any(axis=0)  # x_i ∈ B(y_j, NND_k(y_j))
    return PRDC(
        precision=float(in_real_ball_any.mean()),
        recall=float(real_recalled.mean()),
        density=density_count / (k * y.shape[0]),
        coverage=float(real_covered.mean()),
        k=k,
    )
