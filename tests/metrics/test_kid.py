import numpy as np
import pytest

from otgen.errors import OTGenError
from otgen.metrics.kid import kid, mmd2_unbiased, polynomial_kernel


def _explicit_mmd2_u(x, y):
    """The U-statistic written out with loops over pairs i ≠ j."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return xx + yy - 2 * xy


def test_matches_explicit_u_statistic():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.4
    expected = _explicit_mmd2_u(x, y)
    got = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    assert got == pytest.approx(expected, rel=1e-12)
    # One subset of all samples is a permutation of each set: the same number.
    res = kid(x, y, subsets=1, subset_size=6)
    assert res.subset_size == 6 and res.mean == pytest.approx(expected, rel=1e-12)


def test_estimator_is_unbiased_but_v_statistic_is_not():
    """Mean of MMD²_u over 4,000 independent small samples of one distribution is ≈ 0."""
    rng = np.random.default_rng(1)
    m, reps = 10, 4000
    u, v = np.empty(reps), np.empty(reps)
    for r in range(reps):
        x, y = rng.normal(size=(m, 2)), rng.normal(size=(m, 2))
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        u[r] = mmd2_unbiased(kxx, kyy, kxy)
        v[r] = kxx.mean() + kyy.mean() - 2 * kxy.mean()  # biased (includes i = j)
    se = u.std() / np.sqrt(reps)
    assert abs(u.mean()) < 4 * se
    assert v.mean() > 20 * se


def test_kid_of_identical_distributions_is_near_zero():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1200, 8)), rng.normal(size=(1200, 8))
    same = kid(x, y, subsets=8)
    shifted = kid(x, y + 0.5, subsets=8)
    assert same.subset_size == 1000 and same.subsets == 8
    assert abs(same.mean) < 0.01 * shifted.mean
    assert shifted.mean > 10 * shifted.std


def test_same_seed_same_numbers():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 0.1
    a = kid(x, y, subsets=5, subset_size=100, seed=7)
    assert a == kid(x, y, subsets=5, subset_size=100, seed=7)
    assert a != kid(x, y, subsets=5, subset_size=100, seed=8)


def test_bad_inputs_raise():
    with pytest.raises(OTGenError, match="different feature dimensions"):
        kid(np.zeros((10, 3)), np.zeros((10, 2)))
    with pytest.raises(OTGenError, match="at least 2"):
        kid(np.zeros((1, 3)), np.zeros((10, 3)))
    with pytest.raises(OTGenError, match="NaN"):
        kid(np.zeros((10, 3)), np.full((10, 3), np.inf))
