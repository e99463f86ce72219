"""Extended (piecewise linear) OT map: angles, facet measures, singular facets, mapping."""

import math

import pytest
import torch

from otgen.errors import OTGenError
from otgen.ot import extended_map as em
from otgen.ot import semidiscrete as sd


def test_normal_angle_closed_form():
    yi = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    yj = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    # (0,0,-1) vs (1,0,-1)/√2 -> π/4; (1,0,-1)/√2 vs (-1,0,-1)/√2 -> cos = 0 -> π/2.
    assert em.normal_angles(yi, yj).tolist() == pytest.approx([math.pi / 4, math.pi / 2])
    assert float(em.normal_angles(yi[1:], yj[1:], scale=0.5)[0]) == pytest.approx(
        math.acos((1 - 0.25) / (1 + 0.25))
    )


def test_two_targets_facet_is_the_midline_of_the_square():
    # Equal masses, symmetric targets: the facet is {x_1 = 0} inside the unit square, length 1.
    y = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    res = sd.solve(y, method="newton", tol=2e-3, n_samples=20000)
    ext = em.extend(res, theta=1.0, n_samples=100_000)
    f = ext.facets
    assert f.pairs.tolist() == [[0, 1]]
    assert float(f.measure[0]) == pytest.approx(1.0, rel=0.05)
    assert float(f.angle[0]) == pytest.approx(math.pi / 2) and f.n_singular == 1
    # Centroids of the two half squares: (-1/4, 0) and (1/4, 0).
    assert torch.allclose(
        ext.centroids, torch.tensor([[-0.25, 0.0], [0.25, 0.0]]).double(), atol=5e-3
    )


def _two_clusters(n_per: int = 30):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n_per, 2, generator=g) * 0.05 + torch.tensor([-1.0, 0.0])
    b = torch.randn(n_per, 2, generator=g) * 0.05 + torch.tensor([1.0, 0.0])
    return torch.cat([a, b])


def test_singular_facets_separate_the_clusters_and_samples_never_fall_in_the_gap():
    y = _two_clusters(12)
    res = sd.solve(y, method="averaged", tol=0.1, n_samples=2048, seed=1)
    ext = em.extend(res, theta=0.3, n_samples=20_000)
    side = (y[:, 0] > 0).long()
    cross = side[ext.facets.pairs[:, 0]] != side[ext.facets.pairs[:, 1]]
    assert bool(cross.any())
    assert torch.equal(ext.facets.singular, cross)  # exactly the between-cluster facets
    x = sd.SourceSampler(2, seed=5).draw(1000)
    out, linear = ext.map(x)
    assert linear.float().mean() > 0.3  # a good share is interpolated, not copied
    assert bool((out[:, 0].abs() > 0.7).all())  # nothing generated between the clusters
    # Inside a regular simplex the map is affine: the same combination of targets.
    assert not torch.equal(out[linear], res.y.double()[res.assign(x[linear])])


def test_map_of_a_cell_centroid_is_its_target():
    y = _two_clusters(8)
    res = sd.solve(y, method="averaged", tol=0.1, n_samples=2048, seed=2)
    ext = em.extend(res, theta=math.pi, n_samples=20_000)
    out, linear = ext.map(ext.centroids)
    # λ = e_i at the centroid of cell i (when its simplex contains it), so x -> y_i.
    assert bool(linear.any())
    assert torch.allclose(out[linear], res.y.double()[linear], atol=1e-6)


def test_bad_input():
    res = sd.solve(torch.randn(4, 2), method="adam", tol=None, max_iter=1, n_samples=64)
    with pytest.raises(OTGenError, match="theta"):
        em.extend(res, theta=0.0)
    with pytest.raises(OTGenError, match="SemiDiscreteResult"):
        em.extend("nope")
    ext = em.extend(res, n_samples=2000)
    with pytest.raises(OTGenError, match="dimensions"):
        ext(torch.rand(3, 5))


def _spread_map(n: int, d: int, seed: int = 0) -> em.ExtendedMap:
    y = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    res = sd.solve(y, method="averaged", tol=0.2, n_samples=4096, seed=seed)
    return em.extend(res, theta=math.pi, n_samples=50 * n, seed=seed)


def test_lifting_lp_finds_the_same_delaunay_simplices_as_qhull():
    ext = _spread_map(40, 2)
    x = sd.SourceSampler(2, seed=3).draw(300).double()
    cells = torch.arange(40)
    lam_q, v_q = em._delaunay_qhull(x, ext.centroids, cells)
    lam_lp, v_lp = em._delaunay_lp(x, ext.centroids, cells, k=40)
    assert torch.equal(v_q[:, 0] >= 0, v_lp[:, 0] >= 0)  # same samples inside the hull
    inside = v_q[:, 0] >= 0
    assert inside.float().mean() > 0.5
    # Same simplex and coordinates, whatever the vertex order: compare λ per cell.
    dense_q = torch.zeros(len(x), 40, dtype=torch.float64).scatter_add_(1, v_q.clamp_min(0), lam_q)
    dense_lp = torch.zeros(len(x), 40, dtype=torch.float64).scatter_add_(
        1, v_lp.clamp_min(0), lam_lp
    )
    assert torch.allclose(dense_q[inside], dense_lp[inside], atol=1e-6)


def test_lp_simplices_in_4d_are_delaunay_and_reproduce_x():
    ext = _spread_map(60, 4, seed=1)
    c = ext.centroids
    g = torch.Generator().manual_seed(0)
    # Convex combinations of centroids are inside the hull, so each must find its simplex.
    w = torch.rand(200, 60, generator=g, dtype=torch.float64) ** 8
    x = (w / w.sum(1, keepdim=True)) @ c
    lam, v = ext.simplices(x)
    assert bool((v[:, 0] >= 0).all())
    assert bool((lam >= 0).all()) and torch.allclose(lam.sum(1), torch.ones(200, dtype=lam.dtype))
    assert torch.allclose(torch.einsum("mk,mkd->md", lam, c[v]), x, atol=1e-7)
    # Empty circumsphere: no centroid is strictly closer to the simplex's circumcentre.
    for verts in v[:20]:
        p = c[verts]
        a = 2 * (p[1:] - p[0])
        rhs = (p[1:] ** 2).sum(1) - (p[0] ** 2).sum()
        centre = torch.linalg.lstsq(a, rhs).solution
        radius = (p[0] - centre).norm()
        assert float((c - centre).norm(dim=1).min()) >= float(radius) - 1e-6
    # Far outside the cube no simplex contains x: the map keeps the own cell's target.
    far = torch.full((3, 4), 5.0, dtype=torch.float64)
    out, linear = ext.map(far)
    assert not bool(linear.any())
    assert torch.equal(out, ext.result.y.double()[ext.result.assign(far)])
