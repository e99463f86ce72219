import math

import numpy as np
import ot
import pytest
import torch

from otgen.errors import OTGenError
from otgen.ot.costs import cost_matrix
from otgen.ot.sinkhorn import sinkhorn, sinkhorn_divergence, transport_cost

D = torch.float64


def _cloud(n, d=2, seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=dtype)


def _weights(n, seed):
    g = torch.Generator().manual_seed(seed)
    w = 0.5 + torch.rand(n, generator=g, dtype=D)
    return w / w.sum()


def _l1_error(P, a, b):
    return float((P.sum(-1) - a).abs().sum() + (P.sum(-2) - b).abs().sum())


def test_recovers_permutation_at_small_eps():
    x = _cloud(30)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(3))
    y = x[perm]
    C = cost_matrix(x, y)
    r = sinkhorn(x, y, eps=1e-4 * float(C.mean()), tol=1e-6, anneal=True)
    assert r.converged
    # x_i is y_j for perm[j] = i: the plan puts (almost) all of row i on that column.
    inv = torch.argsort(perm)
    P = r.plan()
    assert torch.equal(P.argmax(1), inv)
    assert float(P.max(1).values.min()) > 0.99 / 30
    assert r.cost.item() < 1e-4 * float(C.mean())


def test_plan_marginals_and_reported_error():
    x, y = _cloud(40, seed=1), _cloud(25, seed=2)
    a, b = _weights(40, 3), _weights(25, 4)
    r = sinkhorn(x, y, a, b, eps=0.02, tol=1e-7)
    P = r.plan()
    assert r.converged and r.marginal_error <= 1e-7
    assert _l1_error(P, a, b) == pytest.approx(r.marginal_error, rel=1e-3, abs=1e-12)
    torch.testing.assert_close(P.sum(1), a)  # rows are exact after the last half step
    assert r.cost.item() == pytest.approx(float((P * cost_matrix(x, y)).sum()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pot(seed):
    n, m = 50, 40
    x, y = _cloud(n, 3, seed), _cloud(m, 3, seed + 10)
    a, b = _weights(n, seed + 20), _weights(m, seed + 30)
    M = cost_matrix(x, y)
    eps = 0.05 * float(M.mean())
    G = ot.sinkhorn(
        a.numpy(),
        b.numpy(),
        M.numpy(),
        eps,
        method="sinkhorn_log",
        stopThr=1e-12,
        numItermax=100_000,
    )
    pot_cost = float((G * M.numpy()).sum())
    pot_value = pot_cost + eps * float((G * np.log(G)).sum())  # <G, M> - eps H(G)
    for kw in ({}, {"anneal": True}, {"memory": "online", "chunk_size": 7}):
        r = sinkhorn(x, y, a, b, eps=eps, tol=1e-10, **kw)
        assert r.cost.item() == pytest.approx(pot_cost, rel=1e-4)
        assert r.value.item() == pytest.approx(pot_value, rel=1e-4)
    torch.testing.assert_close(r.plan(), torch.from_numpy(G), atol=1e-8, rtol=1e-4)


def _fd(fun, t, direction, h=1e-6):
    return (fun(t + h * direction) - fun(t - h * direction)) / (2 * h)


@pytest.mark.parametrize("grad", ["envelope", "autograd"])
def test_gradients_match_finite_differences(grad):
    x, y = _cloud(12, seed=5), _cloud(9, seed=6)
    a, b = _weights(12, 7), _weights(9, 8)
    eps = 0.05
    kw = dict(eps=eps, tol=1e-12, max_iter=20_000, grad=grad)

    def value(x_, y_, a_, b_):
        return sinkhorn(x_, y_, a_, b_, **kw).value

    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
    value(xr, yr, ar, br).backward()
    g = torch.Generator().manual_seed(9)
    dx, dy = torch.randn(x.shape, generator=g, dtype=D), torch.randn(y.shape, generator=g, dtype=D)
    da = torch.randn(12, generator=g, dtype=D)
    da -= da.mean()  # stay on the simplex
    with torch.no_grad():
        assert float((xr.grad * dx).sum()) == pytest.approx(
            float(_fd(lambda t: value(t, y, a, b), x, dx)), rel=1e-5
        )
        assert float((yr.grad * dy).sum()) == pytest.approx(
            float(_fd(lambda t: value(x, t, a, b), y, dy)), rel=1e-5
        )
        assert float((ar.grad * da).sum()) == pytest.approx(
            float(_fd(lambda t: value(x, y, t, b), a, da)), rel=1e-5
        )


def test_plan_fixed_cost_gradient():
    x, y = _cloud(15, seed=11), _cloud(10, seed=12)
    xr = x.clone().requires_grad_()
    r = sinkhorn(xr, y, eps=0.05, tol=1e-12)
    r.cost.backward()
    x2 = x.clone().requires_grad_()
    transport_cost(x2, y, r.plan()).backward()
    torch.testing.assert_close(xr.grad, x2.grad)
    # d<pi, C>/dx with pi fixed equals the envelope gradient of the entropic value
    x3 = x.clone().requires_grad_()
    sinkhorn(x3, y, eps=0.05, tol=1e-12).value.backward()
    torch.testing.assert_close(xr.grad, x3.grad)


def test_online_equals_dense_including_gradients():
    x, y = _cloud(33, seed=13), _cloud(21, seed=14)
    out = {}
    for mem in ("dense", "online"):
        xr = x.clone().requires_grad_()
        r = sinkhorn(xr, y, eps=0.03, tol=1e-10, memory=mem, chunk_size=8)
        r.value.backward()
        out[mem] = (r.value.detach(), r.f, r.g, xr.grad, r.cost.detach())
    for u, v in zip(out["dense"], out["online"], strict=True):
        torch.testing.assert_close(u, v, rtol=1e-7, atol=1e-9)


def test_cost_matrix_input_and_its_gradient():
    x, y = _cloud(10, seed=15), _cloud(8, seed=16)
    C = cost_matrix(x, y).requires_grad_()
    r = sinkhorn(C=C, eps=0.05, tol=1e-12)
    torch.testing.assert_close(r.value, sinkhorn(x, y, eps=0.05, tol=1e-12).value)
    r.value.backward()
    torch.testing.assert_close(C.grad, r.plan())


def test_batched_equals_loop():
    xb = torch.stack([_cloud(14, seed=s) for s in range(3)])
    yb = torch.stack([_cloud(11, seed=10 + s) for s in range(3)])
    r = sinkhorn(xb, yb, eps=0.04, tol=1e-10)
    assert r.value.shape == (3,) and r.f.shape == (3, 14)
    for k in range(3):
        rk = sinkhorn(xb[k], yb[k], eps=0.04, tol=1e-10)
        torch.testing.assert_close(r.value[k], rk.value)
        torch.testing.assert_close(r.cost[k], rk.cost)
        torch.testing.assert_close(r.plan()[k], rk.plan(), atol=1e-9, rtol=1e-6)


def test_divergence_zero_on_equal_positive_and_symmetric():
    x, y = _cloud(20, seed=17), _cloud(20, seed=18)
    kw = dict(eps=0.05, tol=1e-10)
    assert abs(float(sinkhorn_divergence(x, x, **kw))) < 1e-9
    s_xy = float(sinkhorn_divergence(x, y, **kw))
    assert s_xy > 1e-4
    assert s_xy == pytest.approx(float(sinkhorn_divergence(y, x, **kw)), rel=1e-7)
    # gradient vs finite differences (envelope, self terms included)
    xr = x.clone().requires_grad_()
    sinkhorn_divergence(xr, y, **kw).backward()
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=D)
    with torch.no_grad():
        fd = _fd(lambda t: sinkhorn_divergence(t, y, **kw), x, d)
    assert float((xr.grad * d).sum()) == pytest.approx(float(fd), rel=1e-5)
    # autograd mode agrees
    s_auto = float(sinkhorn_divergence(x, y, grad="autograd", **kw))
    assert s_auto == pytest.approx(s_xy, rel=1e-7)


def test_float32_stable_at_tiny_eps():
    x, y = _cloud(40, seed=19, dtype=torch.float32), _cloud(40, seed=20, dtype=torch.float32)
    eps = 1e-4 * float(cost_matrix(x, y).mean())
    # online LSE in float32 rounds g_j - C_ij to ~6e-8 absolute, i.e. ~2e-3 after dividing
    # by eps here: its marginal accuracy floor is ~1e-3; the absorbed kernel has no such floor.
    # eps ~ 2e-5 max C: float32 rounds the plan's exponent by ~2e-2, so the solve is promoted
    # to float64 (with a warning) rather than report a plan it cannot represent.
    for kw, tol in (({"anneal": True}, 1e-3), ({"anneal": True, "memory": "online"}, 1e-2)):
        with pytest.warns(UserWarning, match="float64"):
            r = sinkhorn(x, y, eps=eps, tol=tol, max_iter=3000, **kw)
        for t in (r.value, r.cost, r.f, r.g, r.plan()):
            assert bool(torch.isfinite(t).all())
        assert r.converged, r.marginal_error
        assert math.isfinite(r.marginal_error)


def test_not_converged_is_reported():
    x, y = _cloud(30, seed=21), _cloud(30, seed=22)
    r = sinkhorn(x, y, eps=1e-3, tol=1e-9, max_iter=3)
    assert r.n_iter == 3 and not r.converged and r.marginal_error > 1e-9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": torch.rand(5, 3)}, "different dimensions"),
        ({"x": torch.tensor([[0.0, float("nan")]])}, "NaN"),
        ({"y": torch.full((3, 2), float("inf"))}, "NaN or Inf"),
        ({"x": torch.zeros(0, 2)}, "empty"),
        ({"a": torch.tensor([0.5, 0.7, -0.2, 0.0])}, "negative"),
        ({"a": torch.tensor([0.5, 0.5, 0.0, 0.0])}, "zero entries"),
        ({"a": torch.tensor([0.5, 0.5])}, "shape"),
        ({"eps": 0.0}, "eps"),
        ({"eps": -1.0}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"tol": 0}, "tol"),
        ({"grad": "unrolled"}, "grad"),
        ({"memory": "disk"}, "memory"),
        ({"anneal": 1.5}, "anneal"),
        ({"memory": "online", "grad": "autograd"}, "dense"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"x": torch.rand(4, 2), "y": torch.rand(3, 2), "eps": 0.1, **kwargs}
    with pytest.raises(OTGenError, match=match):
        sinkhorn(**args)


# ------------------------------------------------ reported numbers describe the returned plan


def _true_error(r, n, m):
    P = r.plan().double()
    return _l1_error(P, torch.full((n,), 1 / n, dtype=D), torch.full((m,), 1 / m, dtype=D))


@pytest.mark.parametrize("memory", ["dense", "online"])
def test_anneal_cut_short_reports_the_returned_plan(memory):
    # max_iter runs out in the first eps stages: the potentials returned are far from the
    # target-eps solution, and neither the error nor `converged` may say otherwise.
    x, y = _cloud(60, seed=31, dtype=torch.float32), _cloud(60, seed=32, dtype=torch.float32)
    r = sinkhorn(x, y, eps=1e-3, anneal=True, max_iter=2, tol=1e-2, memory=memory)
    true = _true_error(r, 60, 60)
    assert true > 1.0
    assert r.marginal_error == pytest.approx(true, rel=1e-6)
    assert not r.converged


@pytest.mark.parametrize("scale", [1.0, 1e5])
def test_tiny_eps_float32_is_promoted_and_honest(scale):
    # eps = 1e-8 x mean cost: float32 cannot resolve the plan's exponent (it returned a plan
    # of mass 0 with converged=True); cost scale 1e10 (points x 1e5) alike.
    x = _cloud(50, seed=33, dtype=torch.float32) * scale
    y = _cloud(50, seed=34, dtype=torch.float32) * scale
    eps = 1e-8 * float(cost_matrix(x.double(), y.double()).mean())
    with pytest.warns(UserWarning, match="float64"):
        r = sinkhorn(x, y, eps=eps, max_iter=50)
    P = r.plan()
    assert P.dtype == torch.float64
    assert r.marginal_error == pytest.approx(_true_error(r, 50, 50), rel=1e-6, abs=1e-12)
    assert r.converged == (r.marginal_error <= 1e-3)
    C = cost_matrix(x.double(), y.double())
    assert float(r.cost) == pytest.approx(float((P * C).sum()), rel=1e-6)


def test_eps_beyond_float64_is_refused():
    x, y = _cloud(20, seed=35), _cloud(20, seed=36)
    with pytest.raises(OTGenError, match="too small"):
        sinkhorn(x, y, eps=1e-17)


def test_far_from_origin_clouds_keep_an_exact_cost():
    # ||x||^2 ~ 2e5 in float32: the GEMM expansion of |x - y|^2 has absolute errors ~1e-2 =
    # eps unless the clouds are centred first. Reference: the same float32 points in float64.
    x = (_cloud(40, seed=37) + 300).float()
    y = (_cloud(40, seed=38) + 300).float()
    ref = sinkhorn(x.double(), y.double(), eps=0.01)
    r = sinkhorn(x, y, eps=0.01)
    assert r.converged
    assert float(r.cost) == pytest.approx(float(ref.cost), rel=1e-4)


@pytest.mark.parametrize("which", ["x", "y", "C"])
def test_complex_inputs_are_refused(which):
    x, y = _cloud(5, seed=39), _cloud(5, seed=40)
    kw = {"x": x, "y": y}
    if which == "C":
        kw = {"C": cost_matrix(x, y).to(torch.complex128)}
    else:
        kw[which] = kw[which].to(torch.complex128)
    with pytest.raises(OTGenError, match="complex"):
        sinkhorn(**kw, eps=0.1)


def test_numpy_complex_is_refused():
    with pytest.raises(OTGenError, match="complex"):
        sinkhorn(np.ones((3, 2), dtype=complex), np.ones((3, 2)), eps=0.1)


def test_dense_too_large_for_memory_is_refused_before_allocating():
    # 2 x 300k x 300k float32 = 670 GiB: refused with the memory estimate and the online hint.
    x = torch.zeros(300_000, 2).uniform_()
    with pytest.raises(OTGenError, match="memory='online'"):
        sinkhorn(x, x, eps=0.1, memory="dense")


def test_empty_inputs_are_refused():
    with pytest.raises(OTGenError, match="empty"):
        sinkhorn(torch.zeros(0, 2), torch.ones(3, 2), eps=0.1)
