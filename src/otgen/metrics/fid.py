"""Fréchet Inception Distance (Heusel et al. 2017), for any feature extractor.

The Fréchet (2-Wasserstein) distance between the Gaussians fitted to two feature sets::

    FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½)

μ is the mean and Σ the unbiased (ddof = 1) covariance of the features, as in pytorch-fid.
The score depends entirely on the extractor: Inception-v3 pool3 is the literature standard for
natural images; for MNIST-like data each paper trains its own classifier, so otgen labels every
score by the extractor that produced it (``FID-fmnist-net``) and never compares across them.

Numerics (why not ``scipy.linalg.sqrtm``): Σ_r Σ_g is not symmetric, so a general (Schur)
square root returns complex values with spurious imaginary parts, and when a covariance is
singular (fewer samples than dimensions, dead ReLU features) it loses accuracy (√ε-size errors,
2e-6 on a 10-sample, 50-d test) or returns non-finite values, where pytorch-fid adds ε·I to both
covariances, which biases the score. Only the *trace* of the root is needed, and
Σ_r Σ_g = S (S Σ_g S) S⁻¹ with S = Σ_r^½ is similar to the symmetric PSD matrix S Σ_g S (for
singular Σ_r, AB and BA still share their non-zero spectrum). So::

    Tr (Σ_r Σ_g)^½ = Σ_i √λ_i(S Σ_g S)

computed with two symmetric eigendecompositions (``eigh``) in float64; eigenvalues at round-off
level (negative or ≤ d·ε·λ_max) are set to 0, since √ would amplify them to √ε. This is exact
for singular covariances and never produces complex numbers.

pytorch-fid's ε·I option: ``fid_from_stats(..., offset=1e-6)`` adds ``offset·I`` to both
covariances, as pytorch-fid does when its ``sqrtm`` of a singular product is not finite. otgen
never needs it for singular covariances (the computation above is exact there), so it is off by
default; use it to reproduce a pytorch-fid number that went through that fallback. If the
eigendecompositions themselves fail (``LinAlgError``, e.g. a badly scaled input), otgen falls
back to ``offset = 1e-6`` automatically and warns.

Statistics files are pytorch-fid compatible: ``.npz`` archives with the arrays ``mu`` (d,) and
``sigma`` (d, d).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from otgen.errors import DataNotFoundError, OTGenError
from otgen.metrics._inputs import as_features, same_features
from otgen.utils.checks import ArrayLike
from otgen.utils.io import atomic_write

# Relative tolerances for accepting user-supplied statistics: a covariance from np.cov is
# symmetric to the last bit and PSD up to round-off of order 1e-16·‖Σ‖.
_SYM_TOL = 1e-6
_PSD_TOL = 1e-6


def feature_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features (n, d), n ≥ 2, in float64."""
    x = as_features(feats, "features", min_n=2)
    mu = x.mean(axis=0)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def fid(feat_real: ArrayLike, feat_fake: ArrayLike) -> float:
    """FID between two feature sets (n, d) and (m, d); see the module docstring."""
    x = as_features(feat_real, "feat_real", min_n=2)
    y = as_features(feat_fake, "feat_fake", min_n=2)
    same_features(x, y, "feat_real", "feat_fake")
    return fid_from_stats(*feature_stats(x), *feature_stats(y))


FALLBACK_OFFSET = 1e-6  # pytorch-fid's default eps


def fid_from_stats(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    offset: float = 0.0,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); ``offset`` adds
    ``offset·I`` to both covariances (pytorch-fid's ε option; see the module docstring)."""
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise OTGenError(
            f"statistics have different feature dimensions ({mu1.shape[0]} vs {mu2.shape[0]})"
        )
    if offset < 0 or not np.isfinite(offset):
        raise OTGenError(f"offset must be a finite number >= 0, got {offset!r}")
    if offset:
        sigma1 = sigma1 + offset * np.eye(len(sigma1))
        sigma2 = sigma2 + offset * np.eye(len(sigma2))
    try:
        cross = trace_sqrt_product(sigma1, sigma2)
    except np.linalg.LinAlgError:
        if offset:
            raise
        warnings.warn(
            f"FID: eigendecomposition failed; adding {FALLBACK_OFFSET}·I to both covariances "
            "(pytorch-fid's fallback)",
            RuntimeWarning,
            stacklevel=2,
        )
        return fid_from_stats(mu1, sigma1, mu2, sigma2, offset=FALLBACK_OFFSET)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * cross
    # FID is a squared distance; round-off can only push an exact 0 to about -1e-12·Tr Σ.
    return max(float(value), 0.0)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (Σ₁ Σ₂)^½ for symmetric PSD Σ₁, Σ₂, as Σ √λ(Σ₁^½ Σ₂ Σ₁^½) (see module docstring)."""
    w, u = np.linalg.eigh(sigma1)
    root1 = (u * np.sqrt(_numerical_zero_clip(w))) @ u.T  # Σ₁^½, PSD by construction
    m = root1 @ sigma2 @ root1
    m = 0.5 * (m + m.T)  # symmetric up to round-off; eigh reads one triangle only
    return float(np.sqrt(_numerical_zero_clip(np.linalg.eigvalsh(m))).sum())


def _numerical_zero_clip(lam: np.ndarray) -> np.ndarray:
    """Set eigenvalues indistinguishable from round-off (≤ d·ε·λ_max, numpy's rank rule) to 0.

    √ has an infinite slope at 0: a round-off eigenvalue of 1e-15·λ_max would add √(1e-15·λ_max)
    to the trace per null direction (≈ 1e-6 relative error for n < d features), so such
    eigenvalues are zeroed rather than merely clipped at 0.
    """
    tol = lam.size * np.finfo(np.float64).eps * max(float(lam.max()), 0.0)
    return np.where(lam > tol, lam, 0.0)


def save_stats(path: str | Path, mu: ArrayLike, sigma: ArrayLike) -> Path:
    """Write a pytorch-fid compatible ``.npz`` with arrays ``mu`` and ``sigma`` (atomically)."""
    mu, sigma = _check_stats(mu, sigma, "")

    def write(tmp: Path) -> None:
        # Write through a file handle: np.savez would append ".npz" to the temporary name.
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma)

    return atomic_write(path, write)


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``mu`` and ``sigma`` from a pytorch-fid style ``.npz`` statistics file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"FID statistics file not found: {path}")
    from otgen.data.images import load_numpy

    arrays = load_numpy(path, "FID statistics file")
    if not isinstance(arrays, dict) or "mu" not in arrays or "sigma" not in arrays:
        has = ", ".join(arrays) if isinstance(arrays, dict) else "one bare array"
        raise OTGenError(
            f"{path} is not an FID statistics file (needs arrays 'mu' and 'sigma', has "
            f"{has or 'none'})"
        )
    mu, sigma = arrays["mu"], arrays["sigma"]
    return _check_stats(mu, sigma, "")


def _check_stats(mu: ArrayLike, sigma: ArrayLike, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (mean, covariance) pair: shapes (d,), (d, d); finite; symmetric PSD."""
    if hasattr(mu, "detach"):
        mu = mu.detach().cpu().numpy()
    if hasattr(sigma, "detach"):
        sigma = sigma.detach().cpu().numpy()
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    d = mu.shape[0]
    if mu.ndim != 1 or sigma.shape != (d, d):
        raise OTGenError(
            f"mu{tag} must have shape (d,) and sigma{tag} (d, d); got {mu.shape} and {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise OTGenError(f"mu{tag} or sigma{tag} contains NaN or Inf values")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if np.abs(sigma - sigma.T).max() > _SYM_TOL * scale:
        raise OTGenError(f"sigma{tag} is not symmetric")
    if np.linalg.eigvalsh(sigma)[0] < -_PSD_TOL * scale:
        raise OTGenError(f"sigma{tag} is not positive semi-definite")
    return mu, sigma
