import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from otgen.errors import OTGenError
from otgen.ot.costs import cost_matrix
from otgen.ot.exact import default_max_iter, emd, emd2


def test_translated_permutation_closed_form():
    # W2^2 between a cloud and its translate is |t|^2, attained by the translation map.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 2, generator=g, dtype=torch.float64)
    perm = torch.randperm(40, generator=g)
    t = torch.tensor([0.01, -0.02], dtype=torch.float64)  # small: translation stays optimal
    y = x[perm] + t
    r = emd(x, y)
    assert r.cost == pytest.approx(float((t**2).sum()), rel=1e-9)
    want = torch.zeros(40, 40, dtype=torch.float64)
    want[perm, torch.arange(40)] = 1 / 40
    torch.testing.assert_close(r.plan, want)
    assert emd2(x, y) == pytest.approx(r.cost)


def test_matches_assignment_and_marginals():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(60, 3, generator=g), torch.rand(60, 3, generator=g)
    C = cost_matrix(x.double(), y.double()).numpy()
    rows, cols = linear_sum_assignment(C)
    r = emd(x, y)
    assert r.cost == pytest.approx(C[rows, cols].mean(), rel=1e-6)
    a = torch.rand(60, generator=g, dtype=torch.float64)
    a /= a.sum()
    r = emd(x, y, a=a)
    torch.testing.assert_close(r.plan.sum(1), a)
    torch.testing.assert_close(r.plan.sum(0), torch.full((60,), 1 / 60, dtype=torch.float64))
    # dual feasibility: f_i + g_j <= C_ij
    assert float((r.f[:, None] + r.g[None, :] - torch.from_numpy(C)).max()) < 1e-5


def test_cap_hit_raises_instead_of_suboptimal_plan():
    x, y = torch.rand(100, 2), torch.rand(100, 2)
    with pytest.raises(OTGenError, match="optimality"):
        emd(x, y, max_iter=10)


def test_default_cap_grows_with_size():
    assert default_max_iter(10, 10) == 100_000
    assert default_max_iter(1000, 2000) == 100 * 1000 * 2000
    assert default_max_iter(10**6, 10**6) == 2_000_000_000


def test_bad_inputs():
    x = torch.rand(5, 2)
    with pytest.raises(OTGenError):
        emd(x, torch.rand(5, 3))
    with pytest.raises(OTGenError):
        emd(x, x, a=np.array([0.5, 0.5, 0.5, -0.5, 0.0]))
    with pytest.raises(OTGenError):
        emd(x, torch.full((4, 2), float("inf")))
    with pytest.raises(OTGenError):
        emd()
