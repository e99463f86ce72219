import pytest
import torch

from otgen.errors import OTGenError
from otgen.ot.costs import cost_matrix, lse_reduce, reduce_chunks


def _brute(x, y):
    return ((x.unsqueeze(-2) - y.unsqueeze(-3)) ** 2).sum(-1)


def test_sqeuclidean_matches_brute_force_and_batches():
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(cost_matrix(x, y), _brute(x, y))
    xb, yb = torch.randn(4, 7, 3), torch.randn(4, 5, 3)
    cb = cost_matrix(xb, yb)
    assert cb.shape == (4, 7, 5)
    torch.testing.assert_close(cb[2], cost_matrix(xb[2], yb[2]))


def test_sqeuclidean_clamped_at_zero_under_cancellation():
    # Large coordinates: |x|^2 + |y|^2 - 2<x, y> cancels catastrophically in float32.
    x = 1e3 + torch.rand(200, 2)
    c = cost_matrix(x, x)
    assert bool((c >= 0).all())
    # the diagonal is 0 up to the float32 rounding of |x|^2 ~ 2e6 (the reason for the clamp)
    assert float(c.diagonal().max()) < 1e-6 * float((x**2).sum(-1).max())


def test_euclidean_has_finite_gradient_at_coincident_points():
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    c = cost_matrix(x, x.detach(), "euclidean")
    torch.testing.assert_close(c, _brute(x, x).sqrt(), atol=1e-6, rtol=1e-6)
    c.sum().backward()
    assert bool(torch.isfinite(x.grad).all())


def test_callable_cost_and_bad_inputs():
    l1 = lambda x, y: (x.unsqueeze(-2) - y.unsqueeze(-3)).abs().sum(-1)  # noqa: E731
    x, y = torch.randn(4, 2), torch.randn(3, 2)
    torch.testing.assert_close(cost_matrix(x, y, l1), l1(x, y))
    with pytest.raises(OTGenError, match="unknown cost"):
        cost_matrix(x, y, "manhattan")
    with pytest.raises(OTGenError, match="different dimensions"):
        cost_matrix(x, torch.randn(3, 5))
    with pytest.raises(OTGenError, match="NaN"):
        cost_matrix(torch.tensor([[float("nan"), 0.0]]), y)
    with pytest.raises(OTGenError, match="empty"):
        cost_matrix(torch.zeros(0, 2), y)


@pytest.mark.parametrize("dim", [-1, -2])
def test_lse_reduce_equals_dense_logsumexp(dim):
    x, y = torch.randn(2, 23, 3, dtype=torch.float64), torch.randn(2, 17, 3, dtype=torch.float64)
    eps = 0.3
    h = torch.randn(2, 17 if dim == -1 else 23, dtype=torch.float64)
    hb = h.unsqueeze(-2) if dim == -1 else h.unsqueeze(-1)
    want = torch.logsumexp(hb - _brute(x, y) / eps, dim=dim)
    for chunk in (1, 5, 100):
        got = lse_reduce(x, y, h, eps, dim=dim, chunk_size=chunk)
        torch.testing.assert_close(got, want)


def test_reduce_chunks_generic_argmin():
    x, y = torch.randn(31, 2), torch.randn(9, 2)
    got = reduce_chunks(x, y, lambda c, _: c.argmin(-1), chunk_size=4)
    assert torch.equal(got, cost_matrix(x, y).argmin(-1))


# ---------------------------------------------------------------- fused online kernel


def _fused_case(seed=0, n=70, m=50):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, n, 2, generator=g, dtype=torch.float64)
    y = torch.rand(1, m, 2, generator=g, dtype=torch.float64)
    return x, y, torch.randn(1, m, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("dim", [-1, -2])
@pytest.mark.parametrize("offset", [0.0, 200.0, -200.0])
def test_fused_lse_matches_exact_for_any_shift(dim, offset):
    # A good shift gives one exact pass; shifts off by +-200 under/overflow the sums and those
    # rows must be redone exactly (not returned as -inf / inf / floor mass).
    from otgen.ot import costs

    x, y, h = _fused_case()
    if dim == -2:
        h = torch.randn(1, 70, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 0.01
    ref = costs.lse_reduce(x, y, h, eps, dim=dim)
    out = costs.fused_lse(x, y, h, eps, ref + offset, dim=dim, kernel=costs._shifted_lse_rows)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-10)


def test_fused_cost_sums_give_the_plan_cost():
    from otgen.ot import costs

    x, y, h = _fused_case(2)
    eps, f = 0.02, torch.zeros(1, 70, dtype=torch.float64)
    lse = costs.lse_reduce(x, y, h, eps)
    s = costs.fused_lse(x, y, h, eps, lse, cost_sums=True, kernel=costs._shifted_cost_rows)
    C = costs.cost_matrix(x, y)
    P = torch.exp(f[..., None] + h[:, None, :] - C / eps)
    torch.testing.assert_close((torch.exp(lse) * s).sum(), (P * C).sum())
