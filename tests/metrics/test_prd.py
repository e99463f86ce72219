import math

import numpy as np
import pytest

from otgen.errors import OTGenError
from otgen.metrics.prd import (
    f_beta_score,
    max_f_beta_pair,
    plot_prd,
    prd,
    prd_from_histograms,
)


def test_curve_on_hand_made_histograms_matches_definition():
    p = np.array([0.5, 0.5, 0.0, 0.0])  # reference (real)
    q = np.array([0.25, 0.25, 0.3, 0.2])  # evaluated (model): half its mass outside supp P
    precision, recall = prd_from_histograms(q, p, num_angles=1001)
    angles = np.linspace(1e-10, math.pi / 2 - 1e-10, 1001)
    for i in (0, 1, 250, 500, 777, 1000):
        lam = math.tan(angles[i])
        alpha = sum(min(lam * pw, qw) for pw, qw in zip(p, q, strict=True))
        beta = sum(min(pw, qw / lam) for pw, qw in zip(p, q, strict=True))
        assert precision[i] == pytest.approx(alpha, abs=1e-12)
        assert recall[i] == pytest.approx(min(beta, 1.0), abs=1e-9)
    # Limits: λ → ∞ gives precision = Q(supp P) = 0.5; λ → 0 gives recall = P(supp Q) = 1.
    assert precision[-1] == pytest.approx(0.5) and recall[0] == pytest.approx(1.0)
    assert precision.max() == pytest.approx(0.5) and recall.max() == pytest.approx(1.0)


def test_identical_and_disjoint_histograms():
    h = np.array([0.1, 0.2, 0.3, 0.4])
    precision, recall = prd_from_histograms(h, h)
    assert max_f_beta_pair(precision, recall) == pytest.approx((1.0, 1.0), abs=1e-9)
    precision, recall = prd_from_histograms([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5])
    assert precision.max() == 0 and recall.max() == 0
    assert max_f_beta_pair(precision, recall) == (0.0, 0.0)


def test_f_beta_formula():
    p, r = np.array([0.8, 0.0]), np.array([0.4, 0.0])
    f = f_beta_score(p, r, 8.0)
    assert f[0] == pytest.approx(65 * 0.8 * 0.4 / (64 * 0.8 + 0.4)) and f[1] == 0.0


def _two_blobs(rng, n, which=(0, 1)):
    centres = np.array([[-10.0, 0.0], [10.0, 0.0]])
    lab = rng.integers(len(which), size=n)
    return centres[np.asarray(which)[lab]] + rng.normal(size=(n, 2))


def test_mode_dropping_lowers_recall_not_precision():
    rng = np.random.default_rng(0)
    real = _two_blobs(rng, 500)
    same = prd(feat_real=real, feat_fake=_two_blobs(rng, 500), num_runs=2)
    dropped = prd(feat_real=real, feat_fake=_two_blobs(rng, 500, which=(0,)), num_runs=2)
    assert same.f_beta > 0.9 and same.f_beta_inv > 0.9
    assert dropped.f_beta_inv > 0.9  # everything generated is realistic ...
    assert dropped.f_beta < 0.6  # ... but half the data is never produced
    assert same.precision.shape == same.recall.shape == (1001,)


def test_same_seed_same_curve(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 0.5
    kw = dict(feat_real=y, feat_fake=x, num_runs=2, seed=3)
    a, b = prd(**kw), prd(**kw)
    np.testing.assert_array_equal(a.precision, b.precision)
    assert (a.f_beta, a.f_beta_inv) == (b.f_beta, b.f_beta_inv)
    png = plot_prd({"shifted": a}, tmp_path / "prd.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs_raise():
    with pytest.raises(OTGenError, match="sum to 1"):
        prd_from_histograms([0.5, 0.2], [0.5, 0.5])
    with pytest.raises(OTGenError, match="different numbers of bins"):
        prd_from_histograms([1.0], [0.5, 0.5])
    with pytest.raises(OTGenError, match="different feature dimensions"):
        prd(feat_real=np.zeros((50, 3)), feat_fake=np.zeros((50, 2)))
    with pytest.raises(OTGenError, match="at least 20"):
        prd(feat_real=np.zeros((50, 2)), feat_fake=np.zeros((10, 2)))
    with pytest.raises(OTGenError, match="NaN"):
        prd(feat_real=np.zeros((50, 2)), feat_fake=np.full((50, 2), np.nan))
