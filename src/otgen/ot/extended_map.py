"""Piecewise linear extension of the semi-discrete OT map, and its singular facets.

The semi-discrete map ∇u_h sends a whole cell W_i to one target y_i (AE-OT eq. 22): sampling
it only reproduces the training codes. AE-OT-GAN §3.2 extends it piecewise linearly:

1. a source sample x lies in cell W_i; the centroids c_j of the cells are triangulated
   (Delaunay, the triangles between mass centres of the paper's Fig. 3);
2. the barycentric coordinates λ of x in the simplex containing it (``Σ λ_j c_j = x``,
   ``Σ λ_j = 1``, λ ≥ 0) are computed;
3. if every pair of that simplex's cells is *regular*, x is mapped to ``Σ λ_j y_j`` (the
   same combination of the targets, a simplex of the complex); otherwise x keeps ``y_i``.

Only samples inside the convex hull of the centroids can be interpolated. In high dimension
with few cells that is a small share of the cube (most of its volume lies near the faces,
outside every centroid): ``benchmarks/extended_map.py`` measures it.

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

import numpy as np
import torch
from scipy.spatial import QhullError as _QhullError

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
    k: int  # nearest centroids searched for a sample's Delaunay simplex (d > 3)

    def __call__(self, x: ArrayLike) -> torch.Tensor:
        return self.map(x)[0]

    def map(self, x: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(mapped points (m, d), bool mask of samples mapped piecewise linearly).

        x is mapped to ``Σ λ_j y_j`` when the Delaunay simplex of the centroids containing it
        (:meth:`simplices`) has only regular pairs of cells, and to its own cell's target
        otherwise (which includes every x outside the convex hull of the centroids).
        """
        res = self.result
        xt = as_points(x, "x", device=res.y.device).double()
        same_dim(xt, res.y, "x", "targets")
        y = res.y.double()
        out = y[res.assign(xt)]
        lam, verts = self.simplices(xt)
        found = verts[:, 0] >= 0
        v = verts.clamp_min(0)
        a, b = torch.triu_indices(v.shape[1], v.shape[1], 1, device=v.device)
        # Padding repeats a vertex (angle 0), so only the simplex's own pairs can fail.
        regular = (normal_angles(y[v[:, a]], y[v[:, b]], self.scale) < self.theta).all(1)
        ok = found & regular
        out[ok] = torch.einsum("mk,mkd->md", lam[ok], y[v[ok]])
        return out, ok

    def simplices(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Barycentric coordinates of x in the Delaunay triangulation of the centroids.

        Returns (λ (m, d+1), cell indices (m, d+1)); rows outside the triangulation have
        index −1. In d ≤ 3 the whole triangulation is built (qhull). Above, it is found per
        sample from the *lifting map*: among convex combinations Σλ_j c_j = x, Σλ_j = 1,
        λ ≥ 0, the one minimising Σλ_j ‖c_j − x‖² is supported on the Delaunay simplex
        containing x (it is the lower convex hull of the points (c_j, ‖c_j‖²) above x).
        That linear programme runs over the ``k`` centroids nearest x, so it returns the
        Delaunay simplex of those candidates, which is the global one when its vertices are
        among them.
        """
        x = x.double()
        cells = torch.isfinite(self.centroids).all(1).nonzero(as_tuple=True)[0]
        if x.shape[1] <= 3 and len(cells) > x.shape[1] + 1:
            try:
                return _delaunay_qhull(x, self.centroids[cells].double(), cells)
            except _QhullError:  # flat centroid set: the LP below handles it
                pass
        return _delaunay_lp(x, self.centroids[cells].double(), cells, self.k)


def _delaunay_qhull(x, c, cells):
    from scipy.spatial import Delaunay

    tri = Delaunay(c.cpu().numpy())
    xn = x.cpu().numpy()
    s = tri.find_simplex(xn)
    d = x.shape[1]
    t = tri.transform[s]  # (m, d+1, d): inverse affine map and offset of each simplex
    part = np.einsum("mij,mj->mi", t[:, :d], xn - t[:, d])
    lam = np.concatenate([part, 1 - part.sum(1, keepdims=True)], 1)
    verts = np.where(s[:, None] >= 0, cells.cpu().numpy()[tri.simplices[s]], -1)
    return torch.from_numpy(lam).to(x), torch.from_numpy(verts).to(x.device)


def _delaunay_lp(x, c, cells, k):
    from scipy.optimize import linprog

    m, d = x.shape
    lam = torch.zeros(m, d + 1, dtype=torch.float64)
    verts = torch.full((m, d + 1), -1, dtype=torch.int64)
    near = _nearest(x, c, min(k, len(c)))
    cand = c[near]  # (m, k, d)
    # x outside the bounding box of its candidates is outside their hull: skip the LP.
    inside_box = ((cand.amin(1) <= x) & (x <= cand.amax(1))).all(1)
    for row in inside_box.nonzero(as_tuple=True)[0].tolist():
        cr, xr = cand[row].cpu().numpy(), x[row].cpu().numpy()
        sol = linprog(
            ((cr - xr) ** 2).sum(1),
            A_eq=np.vstack([cr.T, np.ones(len(cr))]),
            b_eq=np.append(xr, 1.0),
            bounds=(0, None),
            method="highs",
        )
        if sol.status != 0:  # infeasible: x is outside the candidates' hull
            continue
        support = np.argsort(-sol.x)[: d + 1]
        w = np.clip(sol.x[support], 0, None)
        lam[row] = torch.from_numpy(w / w.sum())
        verts[row] = cells[near[row, torch.from_numpy(support)]].cpu()
        verts[row, torch.from_numpy(w <= 0)] = verts[row, 0]
    return lam.to(x), verts.to(x.device)


def _nearest(x: torch.Tensor, c: torch.Tensor, k: int, rows: int = 1024) -> torch.Tensor:
    """Indices of the k rows of c nearest each row of x, in blocks of rows."""
    return torch.cat(
        [
            torch.cdist(x[i : i + rows], c).topk(k, largest=False).indices
            for i in range(0, len(x), rows)
        ]
    )


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
    ``neighbours``: nearest centroids searched per sample for its Delaunay simplex when
    d > 3 (default 8(d + 1)). ``slab``: fraction of samples used for the facet slab.
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
        k=check_int(neighbours or 8 * (d + 1), "neighbours", minimum=d + 1),
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
