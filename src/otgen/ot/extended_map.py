"""Piecewise linear extension of the semi-discrete OT map, and its singular facets.

The semi-discrete map ∇u_h sends a whole cell W_i to one target y_i (AE-OT eq. 22): sampling
it only reproduces the training codes. AE-OT-GAN §3.2 extends it piecewise linearly:

1. a source sample x lies in cell W_i; its *neighbouring cells* are read off the top-k
   supporting planes ⟨x, y_j⟩ + h_j at x (the cells whose planes are nearest to u_h there);
2. the barycentric coordinates λ of x with respect to the centroids c_j of those cells
   (``Σ λ_j c_j = x``, ``Σ λ_j = 1``, λ ≥ 0) are computed;
3. if every pair of those cells is *regular*, x is mapped to ``Σ λ_j y_j`` (the same
   combination of the targets, a simplex of the complex); otherwise x keeps ``y_i``.

A pair (i, j) is regular when the angle between the normals ``(y_i, −1)/‖·‖`` and
``(y_j, −1)/‖·‖`` of its two supporting planes is below θ (AE-OT §4: a large angle is a
ridge of u_h, whose projection is the singular set Σ_1 where the OT map is discontinuous).
The angle depends on the units of y relative to the source cube, so ``scale`` multiplies
the targets inside the normals (the cells do not depend on it: scaling every y_i by s and h
by s leaves every argmax unchanged).

Cell centroids and the facet list come from one Monte Carlo pass (:func:`cell_statistics`):
the pair (best, second-best) cell of each sample whose score gap is below δ lies in a slab
of width δ/‖y_i − y_j‖ around the facet W_i ∩ W_j, so ``#slab / (N δ) · ‖y_i − y_j‖``
estimates the facet's (d−1)-measure (the numerator of the Hessian eq. 27).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from otgen.errors import OTGenError
from otgen.ot.semidiscrete import SemiDiscreteResult, SourceSampler, cell_statistics, top_scores
from otgen.utils.checks import ArrayLike, as_points, check_int, check_positive, same_dim


def normal_angles(yi: torch.Tensor, yj: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Angle (radians) between the plane normals (s·y_i, −1) and (s·y_j, −1), row-wise."""
    ones = torch.ones(*yi.shape[:-1], 1, dtype=yi.dtype, device=yi.device)
    ni = torch.cat([scale * yi, -ones], -1)
    nj = torch.cat([scale * yj, -ones], -1)
    cos = (ni * nj).sum(-1) / (ni.norm(dim=-1) * nj.norm(dim=-1))
    return torch.arccos(cos.clamp(-1.0, 1.0))


@dataclass(frozen=True)
class Facets:
    """Facets W_i ∩ W_j seen by the Monte Carlo pass (one row per unordered pair i < j)."""

    pairs: torch.Tensor  # (m, 2) int64
    measure: torch.Tensor  # (m,) estimated (d−1)-dimensional μ-measure of the facet
    angle: torch.Tensor  # (m,) angle between the plane normals (radians)
    singular: torch.Tensor  # (m,) bool, angle >= theta
    theta: float

    @property
    def n_singular(self) -> int:
        return int(self.singular.sum())

    def singular_pairs(self) -> torch.Tensor:
        return self.pairs[self.singular]


@dataclass(frozen=True)
class ExtendedMap:
    """The piecewise linear extended OT map of AE-OT-GAN §3.2 (call it on source samples)."""

    result: SemiDiscreteResult
    centroids: torch.Tensor  # (n, d) cell centroids (NaN for cells with no sample)
    facets: Facets
    theta: float
    scale: float
    k: int  # candidate cells per sample (own cell first)

    def __call__(self, x: ArrayLike) -> torch.Tensor:
        return self.map(x)[0]

    def map(self, x: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(mapped points (m, d), bool mask of samples mapped piecewise linearly).

        Candidate simplices: the sample's own cell plus d of its next ``k − 1`` best cells,
        tried in order of their planes' heights at x; the first one whose centroid simplex
        contains x and whose cell pairs are all regular is used.
        """
        res = self.result
        xt = as_points(x, "x", device=res.y.device).double()
        same_dim(xt, res.y, "x", "targets")
        d = res.dim
        _, idx = top_scores(xt.float(), res.y.float(), res.h.float(), self.k)
        out = res.y.double()[idx[:, 0]].clone()
        done = torch.zeros(len(xt), dtype=torch.bool, device=xt.device)
        if idx.shape[1] < d + 1:  # fewer targets than a simplex needs: plain OT map
            return out, done
        y = res.y.double()
        a, b = torch.triu_indices(d + 1, d + 1, 1, device=xt.device)
        for rest in _combinations(idx.shape[1] - 1, d):
            cols = torch.tensor([0, *[r + 1 for r in rest]], device=xt.device)
            todo = (~done).nonzero(as_tuple=True)[0]
            if len(todo) == 0:
                break
            sub = idx[todo][:, cols]  # (m', d+1)
            lam, inside = _barycentric(xt[todo], self.centroids[sub])
            yi = y[sub]
            regular = (normal_angles(yi[:, a], yi[:, b], self.scale) < self.theta).all(1)
            ok = inside & regular
            rows = todo[ok]
            out[rows] = torch.einsum("mk,mkd->md", lam[ok], yi[ok])
            done[rows] = True
        return out, done


def _combinations(m: int, r: int, limit: int = 64) -> list[tuple[int, ...]]:
    """r-subsets of range(m) in lexicographic (best-first) order, at most ``limit``."""
    from itertools import combinations, islice

    return list(islice(combinations(range(m), r), limit))


def _barycentric(x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentric coordinates of x (m, d) in the simplices c (m, d+1, d); inside mask."""
    m, k, _ = c.shape
    a = torch.cat([c.transpose(1, 2), torch.ones(m, 1, k, dtype=c.dtype, device=c.device)], 1)
    rhs = torch.cat([x, torch.ones(m, 1, dtype=x.dtype, device=x.device)], 1)
    finite = torch.isfinite(a).flatten(1).all(1)
    a = torch.where(finite[:, None, None], a, torch.eye(k, dtype=a.dtype, device=a.device))
    # Degenerate simplices (flat centroid sets) give no usable coordinates: flagged, not NaN.
    ok = finite & (torch.linalg.det(a).abs() > 1e-12)
    a = torch.where(ok[:, None, None], a, torch.eye(k, dtype=a.dtype, device=a.device))
    lam = torch.linalg.solve(a, rhs)
    inside = ok & (lam >= -1e-9).all(1)
    return lam, inside


def extend(
    result: SemiDiscreteResult,
    *,
    theta: float = 0.7,
    scale: float = 1.0,
    n_samples: int | None = None,
    neighbours: int | None = None,
    slab: float = 0.05,
    seed: int = 1,
) -> ExtendedMap:
    """Build the extended map: one MC pass for centroids and facets, then the θ test.

    ``theta``: regular/singular threshold on the normal angle (radians; 0.7 in the authors'
    reference generator). ``scale``: multiplies y inside the normals (see module docstring).
    ``n_samples``: source samples of the pass (default 100·n, the AE-OT paper's choice);
    ``neighbours``: candidate cells per sample (default d + 3; the simplices tried are the
    own cell plus d of the others, at most 64 of them). ``slab``: fraction of samples used
    for the facet slab.
    """
    if not isinstance(result, SemiDiscreteResult):
        raise OTGenError("extend() needs a SemiDiscreteResult from otgen.ot.semidiscrete.solve")
    theta = check_positive(theta, "theta")
    scale = check_positive(scale, "scale")
    n, d = result.y.shape
    n_samples = check_int(n_samples or 100 * n, "n_samples")
    check_positive(slab, "slab")
    y = result.y.double()
    delta = _slab_width(result, slab, seed)
    stats = cell_statistics(
        y,
        result.h.double(),
        SourceSampler(d, result.source, seed=seed),
        n_samples,
        centroids=True,
        delta=delta,
    )
    return ExtendedMap(
        result=result,
        centroids=stats.centroids(),
        facets=_facets(stats, y, theta, scale),
        theta=theta,
        scale=scale,
        k=check_int(neighbours or d + 3, "neighbours", minimum=d + 1),
    )


def _slab_width(result: SemiDiscreteResult, slab: float, seed: int) -> float:
    x = SourceSampler(result.dim, result.source, seed=seed + 7919).draw(20000)
    s, _ = top_scores(x.to(result.y).float(), result.y.float(), result.h.float(), 2)
    if s.shape[1] < 2:
        return 1.0
    return max(float(torch.quantile((s[:, 0] - s[:, 1]).double(), slab)), 1e-12)


def _facets(stats, y: torch.Tensor, theta: float, scale: float) -> Facets:
    i, j, count = stats.pair_list()
    dist = (y[i] - y[j]).norm(dim=1)
    # Both sides of the facet contribute a slab of width δ/‖y_i − y_j‖: halve the sum.
    measure = count / (2 * stats.n_samples * stats.delta) * dist
    angle = normal_angles(y[i], y[j], scale)
    pairs = torch.stack([i, j], 1)
    return Facets(pairs, measure, angle, angle >= theta, theta)
