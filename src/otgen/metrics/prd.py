"""Precision and recall for distributions (PRD; Sajjadi et al. 2018, NeurIPS).

For a reference distribution P (real data) and an evaluated one Q (the model), both given as
histograms over the same finite set of bins Ω, the PRD curve is the set of pairs (Thm. 1/Eq. 3)

    α(λ) = Σ_ω min(λ P(ω), Q(ω))      (precision)
    β(λ) = Σ_ω min(P(ω), Q(ω)/λ) = α(λ)/λ   (recall)

for slopes λ = tan θ, θ in 1,001 equally spaced angles of (0, π/2) (ε = 1e-10 away from the
ends, §4). Features are turned into histograms (§4): the union of real and generated features is
clustered by mini-batch k-means into 20 clusters and each set's normalised cluster histogram is
taken; this is repeated 10 times with different clusterings and the precision/recall curves are
averaged. The curve is summarised by max F₈ (weights recall: "does Q cover P?") and max F₁/₈
(weights precision: "is Q inside P?"), with F_β = (1 + β²) P R / (β² P + R) (§4, Eq. 5).

Choices: each run's k-means has seed ``seed + run`` (reproducible). Like the official code
(``enforce_balance=True``), sets of different sizes are refused by default: the clustering of
the union is then dominated by the larger set; pass ``enforce_balance=False`` to accept them.

Argument order: write ``prd(feat_real=..., feat_fake=...)``, the names and order of
:func:`~otgen.metrics.fid.fid`, ``kid`` and ``prdc``. The historical positional form
``prd(eval_feats, ref_feats)`` (generated first, as in the official code) still works but warns,
because ``prd(real, fake)`` written by analogy with ``fid`` would silently swap precision and
recall.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from otgen.errors import OTGenError
from otgen.metrics._inputs import as_features, same_features
from otgen.utils.checks import ArrayLike, check_int, check_positive

NUM_CLUSTERS = 20
NUM_ANGLES = 1001
NUM_RUNS = 10
BETA = 8.0
_EPS_ANGLE = 1e-10  # keeps θ away from 0 and π/2, where λ = tan θ is 0 or infinite
_HIST_TOL = 1e-6


@dataclass(frozen=True)
class PRDResult:
    precision: np.ndarray  # (num_angles,) α(λ), averaged over runs
    recall: np.ndarray  # (num_angles,) β(λ), averaged over runs
    f_beta: float  # max F_8 (recall-weighted)
    f_beta_inv: float  # max F_1/8 (precision-weighted)
    beta: float = BETA


def prd_from_histograms(
    eval_dist: ArrayLike, ref_dist: ArrayLike, *, num_angles: int = NUM_ANGLES
) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve (precision α(λ), recall β(λ)) of histogram Q = eval_dist w.r.t. P = ref_dist."""
    q = _check_hist(eval_dist, "eval_dist")
    p = _check_hist(ref_dist, "ref_dist")
    if q.shape != p.shape:
        raise OTGenError(f"histograms have different numbers of bins ({q.size} vs {p.size})")
    num_angles = check_int(num_angles, "num_angles", minimum=2)
    slopes = np.tan(np.linspace(_EPS_ANGLE, np.pi / 2 - _EPS_ANGLE, num_angles))
    precision = np.minimum(slopes[:, None] * p[None, :], q[None, :]).sum(axis=1)
    recall = precision / slopes
    # Both are ≤ 1 mathematically (α ≤ Σ Q, β ≤ Σ P); clip the round-off at the ends.
    return np.clip(precision, 0.0, 1.0), np.clip(recall, 0.0, 1.0)


def f_beta_score(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
    """F_β = (1 + β²) P R / (β² P + R), taken as 0 where P = R = 0."""
    beta2 = check_positive(beta, "beta") ** 2
    num = (1.0 + beta2) * precision * recall
    den = beta2 * precision + recall
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def max_f_beta_pair(
    precision: np.ndarray, recall: np.ndarray, beta: float = BETA
) -> tuple[float, float]:
    """(max F_β, max F_1/β) along a PRD curve."""
    return (
        float(f_beta_score(precision, recall, beta).max()),
        float(f_beta_score(precision, recall, 1.0 / beta).max()),
    )


def cluster_histograms(
    eval_feats: np.ndarray, ref_feats: np.ndarray, *, num_clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histograms of both sets over a k-means clustering of their union."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    data = np.concatenate([eval_feats, ref_feats])
    km = MiniBatchKMeans(n_clusters=num_clusters, n_init=10, random_state=seed)
    # One thread: mini-batches of 1,024 points are too small for OpenMP to pay off, and on a
    # loaded machine its spin-waiting made each fit 40× slower (8 s instead of 0.2 s).
    with threadpool_limits(limits=1):
        labels = km.fit(data).labels_
    n_eval = eval_feats.shape[0]
    q = np.bincount(labels[:n_eval], minlength=num_clusters) / n_eval
    p = np.bincount(labels[n_eval:], minlength=num_clusters) / ref_feats.shape[0]
    return q, p


def prd(
    _fake: ArrayLike | None = None,
    _real: ArrayLike | None = None,
    /,
    *,
    feat_real: ArrayLike | None = None,
    feat_fake: ArrayLike | None = None,
    num_clusters: int = NUM_CLUSTERS,
    num_angles: int = NUM_ANGLES,
    num_runs: int = NUM_RUNS,
    beta: float = BETA,
    seed: int = 0,
    enforce_balance: bool = True,
    eval_feats: ArrayLike | None = None,
    ref_feats: ArrayLike | None = None,
) -> PRDResult:
    """PRD of generated features ``feat_fake`` w.r.t. real ``feat_real`` (§4 protocol).

    Legacy forms: ``prd(eval_feats=fake, ref_feats=real)``, and ``prd(fake, real)`` positional,
    which warns (see the module docstring).
    """
    if _fake is not None or _real is not None:
        warnings.warn(
            "prd(eval_feats, ref_feats) takes the GENERATED features first, unlike fid/kid/"
            "prdc; write prd(feat_real=..., feat_fake=...) to be unambiguous",
            FutureWarning,
            stacklevel=2,
        )
        if eval_feats is not None or ref_feats is not None:
            raise OTGenError("prd: give the feature sets either positionally or by name")
        eval_feats, ref_feats = _fake, _real
    q_raw, p_raw = _resolve_order(eval_feats, ref_feats, feat_real, feat_fake)
    num_clusters = check_int(num_clusters, "num_clusters", minimum=2)
    q_feats = as_features(q_raw, "feat_fake", min_n=num_clusters)
    p_feats = as_features(p_raw, "feat_real", min_n=num_clusters)
    same_features(q_feats, p_feats, "feat_fake", "feat_real")
    if enforce_balance and q_feats.shape[0] != p_feats.shape[0]:
        raise OTGenError(
            f"prd: feat_real has {p_feats.shape[0]} samples and feat_fake "
            f"{q_feats.shape[0]}; PRD compares equal-size sets (as the official code does), "
            "subsample one or pass enforce_balance=False"
        )
    curves = []
    for run in range(check_int(num_runs, "num_runs")):
        q, p = cluster_histograms(q_feats, p_feats, num_clusters=num_clusters, seed=seed + run)
        curves.append(prd_from_histograms(q, p, num_angles=num_angles))
    precision = np.mean([c[0] for c in curves], axis=0)
    recall = np.mean([c[1] for c in curves], axis=0)
    f_b, f_inv = max_f_beta_pair(precision, recall, beta)
    return PRDResult(precision, recall, f_b, f_inv, float(beta))


def _resolve_order(eval_feats, ref_feats, feat_real, feat_fake) -> tuple:
    """(generated, real) from either the keyword form or the legacy (eval, ref) form."""
    legacy = eval_feats is not None or ref_feats is not None
    named = feat_real is not None or feat_fake is not None
    if legacy and named:
        raise OTGenError("prd: give feat_real= and feat_fake=, not also eval_feats/ref_feats")
    if named:
        if feat_real is None or feat_fake is None:
            raise OTGenError("prd needs both feat_real= and feat_fake=")
        return feat_fake, feat_real
    if eval_feats is None or ref_feats is None:
        raise OTGenError("prd needs feat_real= and feat_fake=")
    return eval_feats, ref_feats


def plot_prd(
    curves: PRDResult | Mapping[str, PRDResult], path: str | Path, *, title: str = "PRD"
) -> Path:
    """Plot precision (y) against recall (x) for one or several labelled PRD curves; PNG."""
    from matplotlib.figure import Figure

    from otgen.utils.io import atomic_write

    if isinstance(curves, PRDResult):
        curves = {"model": curves}
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    for label, res in curves.items():
        ax.plot(
            res.recall,
            res.precision,
            lw=1.5,
            label=f"{label} (F8={res.f_beta:.2f}, F1/8={res.f_beta_inv:.2f})",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall β", ylabel="precision α", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))


def _check_hist(h: ArrayLike, name: str) -> np.ndarray:
    h = np.asarray(h.detach().cpu() if hasattr(h, "detach") else h, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise OTGenError(f"{name} must be a non-empty 1-D histogram, got shape {h.shape}")
    if not np.isfinite(h).all() or (h < 0).any():
        raise OTGenError(f"{name} must be finite and non-negative")
    if abs(h.sum() - 1.0) > _HIST_TOL:
        raise OTGenError(f"{name} must sum to 1 (sums to {h.sum():.6g})")
    return h
