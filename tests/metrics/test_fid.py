import numpy as np
import pytest
import scipy.linalg
import torch

from otgen.errors import DataNotFoundError, OTGenError
from otgen.metrics.fid import feature_stats, fid, fid_from_stats, load_stats, save_stats


def _rotated_cov(scales, angle):
    c, s = np.cos(angle), np.sin(angle)
    rot = np.eye(len(scales))
    rot[:2, :2] = [[c, -s], [s, c]]
    return rot @ np.diag(scales) @ rot.T


def _reference_fid(x, y):
    """Independent implementation: explicit moments and scipy's general matrix square root."""
    mu1, mu2 = x.sum(0) / len(x), y.sum(0) / len(y)
    s1 = (x - mu1).T @ (x - mu1) / (len(x) - 1)
    s2 = (y - mu2).T @ (y - mu2) / (len(y) - 1)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_of_gaussian_samples_matches_closed_form():
    """Large-n FID is within 5 delta-method standard deviations (+ the O(1/n) bias) of W2²."""
    rng = np.random.default_rng(0)
    n, d = 100_000, 3
    mu1, mu2 = np.zeros(d), np.array([0.5, -0.3, 0.2])
    s1, s2 = np.diag([1.0, 0.5, 2.0]), _rotated_cov([2.0, 0.3, 1.0], 0.7)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    r1 = scipy.linalg.sqrtm(s1).real
    cross = scipy.linalg.sqrtm(r1 @ s2 @ r1).real
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * cross)
    # Delta method: dFID/dμ = ±2Δμ; dFID/dΣ1 = I − T, dFID/dΣ2 = I − T⁻¹ with T the OT map
    # matrix; Var tr(AΣ̂) = 2 tr((AΣ)²)/n for Gaussian samples.
    t = np.linalg.inv(r1) @ cross @ np.linalg.inv(r1)
    a1, a2 = np.eye(d) - t, np.eye(d) - np.linalg.inv(t)
    dmu = mu1 - mu2
    var = (
        4 * dmu @ (s1 + s2) @ dmu
        + 2 * np.trace((a1 @ s1) @ (a1 @ s1))
        + 2 * np.trace((a2 @ s2) @ (a2 @ s2))
    ) / n
    bias = 10 * d * np.trace(s1 + s2) / n  # E‖μ̂1 − μ̂2‖² adds tr(Σ1+Σ2)/n; curvature O(d/n)
    assert abs(fid(x, y) - exact) < 5 * np.sqrt(var) + bias


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 20)) * np.linspace(0.1, 3, 20)
    assert fid(x, x) < 1e-10 * np.trace(np.cov(x, rowvar=False))


def test_fid_matches_independent_numpy_formula():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(16, 16))
    x = rng.normal(size=(300, 16)) @ a
    y = rng.normal(size=(250, 16)) @ a.T + 0.3
    assert fid(x, y) == pytest.approx(_reference_fid(x, y), rel=1e-8)


def test_singular_covariances_give_exact_shift():
    """n < d: Σ is singular; FID(x, x + c) must still be exactly ‖c‖² (no ε·I offset bias)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 50))
    c = rng.normal(size=50)
    assert fid(x, x + c) == pytest.approx(float(c @ c), rel=1e-9)


def test_stats_file_round_trip_and_agreement(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(300, 8)) * 1.5
    mu, sigma = feature_stats(x)
    path = save_stats(tmp_path / "real_stats.npz", mu, sigma)
    assert path == tmp_path / "real_stats.npz" and sorted(p.name for p in tmp_path.iterdir()) == [
        "real_stats.npz"
    ]
    with np.load(path) as f:  # pytorch-fid reads exactly these two keys
        assert sorted(f.files) == ["mu", "sigma"]
        np.testing.assert_array_equal(f["mu"], x.mean(0))
        np.testing.assert_allclose(f["sigma"], np.cov(x, rowvar=False), rtol=1e-12)
    mu2, sigma2 = load_stats(path)
    assert fid_from_stats(mu2, sigma2, *feature_stats(y)) == pytest.approx(
        _reference_fid(x, y), rel=1e-8
    )
    assert fid_from_stats(mu2, sigma2, *feature_stats(y)) == fid(x, y)


def test_torch_and_numpy_inputs_agree():
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(0))
    y = x * 2 + 1
    assert fid(x, y) == pytest.approx(fid(x.numpy(), y.numpy()), rel=1e-6)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "different feature dimensions"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN"),
    ],
)
def test_bad_features_raise(x, y, match):
    with pytest.raises(OTGenError, match=match):
        fid(x, y)


def test_bad_stats_raise(tmp_path):
    with pytest.raises(OTGenError, match="different feature dimensions"):
        fid_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(OTGenError, match="not symmetric"):
        fid_from_stats(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), np.eye(2))
    with pytest.raises(OTGenError, match="positive semi-definite"):
        fid_from_stats(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(DataNotFoundError):
        load_stats(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", m=np.zeros(2))
    with pytest.raises(OTGenError, match="'mu' and 'sigma'"):
        load_stats(tmp_path / "other.npz")


def test_package_exports_functions_not_modules():
    import otgen.metrics as metrics
    import otgen.metrics.kid  # noqa: F401  (importing a submodule must not shadow the function)

    assert metrics.fid is fid and callable(metrics.kid) and callable(metrics.prdc)
    assert metrics.save_stats is save_stats
    with pytest.raises(AttributeError):
        metrics.no_such_metric  # noqa: B018
