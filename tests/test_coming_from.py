"""docs/coming-from.md: its examples run as doctests, and the conventions it states hold."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import ot
import pytest
import torch

from otgen.errors import OTGenError
from otgen.ot.exact import emd2
from otgen.ot.semidiscrete import assign
from otgen.ot.sinkhorn import sinkhorn, sinkhorn_divergence

DOC = Path(__file__).resolve().parents[1] / "docs" / "coming-from.md"


def _problem(seed: int = 0, n: int = 30, m: int = 25):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 0.5
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, m)
    return x, y, a / a.sum(), b / b.sum()


def test_doc_examples_run_with_the_numbers_shown():
    pytest.importorskip("geomloss")  # imported here first: pykeops may print on import
    result = doctest.testfile(
        str(DOC),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted > 20 and result.failed == 0


def test_emd2_in_pot_order_is_refused_with_the_right_call():
    x, y, a, b = _problem()
    M = ot.dist(x, y)
    with pytest.raises(OTGenError, match=r"emd2\(a=a, b=b, C=M\)"):
        emd2(a, b, M)
    assert emd2(a=a, b=b, C=M) == pytest.approx(ot.emd2(a, b, M), rel=1e-12)


def test_pot_sinkhorn2_is_otgen_cost_with_reg_as_eps():
    x, y, a, b = _problem(1)
    M = ot.dist(x, y)
    pot = float(ot.sinkhorn2(a, b, M, reg=0.2, stopThr=1e-13, numItermax=100_000))
    res = sinkhorn(a=a, b=b, C=M, eps=0.2, tol=1e-10)
    assert float(res.cost) == pytest.approx(pot, rel=1e-7)


def test_ott_regularised_cost_is_value_plus_marginal_entropies():
    x, y, a, b = _problem(2)
    M = ot.dist(x, y)
    eps = 0.3
    res = sinkhorn(a=a, b=b, C=M, eps=eps, tol=1e-11)
    P = res.plan().double().numpy()
    ott_cost = (P * M).sum() + eps * (P * np.log(P / np.outer(a, b))).sum()
    ent = -(a * np.log(a)).sum() - (b * np.log(b)).sum()
    assert ott_cost == pytest.approx(float(res.value) + eps * ent, rel=1e-8)


def test_geomloss_blur_relation():
    geomloss = pytest.importorskip("geomloss")
    x, y, _, _ = _problem(3)
    X, Y = torch.tensor(x), torch.tensor(y)
    eps = 0.4
    ours = float(sinkhorn_divergence(X, Y, eps=eps, tol=1e-12))
    # GeomLoss does one update per ε stage, so it converges as scaling → 1 (0.9: 2.7e-2 low,
    # 0.99: 1.1e-3, 0.9995: 1.6e-6 relative here).
    loss = geomloss.SamplesLoss(
        "sinkhorn", p=2, blur=np.sqrt(eps / 2), scaling=0.9995, backend="tensorized"
    )
    assert ours == pytest.approx(2 * float(loss(X, Y)), rel=1e-5)


def test_semidiscrete_heights_from_laguerre_potentials():
    rng = np.random.default_rng(4)
    y, g = rng.normal(size=(30, 3)), rng.normal(size=30)
    pts = rng.normal(size=(400, 3))
    laguerre = (((pts[:, None] - y[None]) ** 2).sum(-1) - g).argmin(1)
    assert (assign(pts, y, (g - (y**2).sum(1)) / 2).numpy() == laguerre).all()
    # The naive h = g (no |y|² term, no halving) assigns differently: the relation matters.
    assert (assign(pts, y, g).numpy() != laguerre).any()
