import math

import pytest
import torch

from otgen.data.toy import TOY_DATASETS, modes, sample
from otgen.errors import OTGenError

N = 40_000


def _assert_close(actual, expected, *, rtol=1.3e-6, atol=1e-5):
    # torch.allclose, not torch.testing (whose first call costs seconds of lazy imports)
    err = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, rtol=rtol, atol=float(atol)), f"max error {err}"


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shape_dtype_and_seeded_determinism(name):
    a = sample(name, 500, seed=3)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, sample(name, 500, seed=3))
    assert not torch.equal(a, sample(name, 500, seed=4))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(sample(name, 100, generator=g1), sample(name, 100, generator=g2))


def test_exact_mode_centres_and_stds():
    means, std = modes("grid25")
    ticks = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    assert std == 0.05 and means.shape == (25, 2)
    assert {tuple(m.tolist()) for m in means} == {
        (i, j) for i in ticks.tolist() for j in ticks.tolist()
    }
    means, std = modes("ring8")
    assert std == 0.01
    _assert_close(means.norm(dim=1), torch.ones(8))
    _assert_close(means[2], torch.tensor([0.0, 1.0]), atol=1e-7, rtol=0)
    means, std = modes("gauss25-dot")
    assert std == pytest.approx(0.05 / 2.828)
    assert means.max().item() == pytest.approx(4 / 2.828)
    means, std = modes("gauss4")
    assert std == 1.0
    _assert_close(means.norm(dim=1), torch.full((4,), 4.0))
    _assert_close(means.abs(), torch.full((4, 2), 4 / math.sqrt(2)))


@pytest.mark.parametrize("name", ["grid25", "ring8", "gauss25-dot", "gauss4"])
def test_sample_statistics_match_the_mixture(name):
    x = sample(name, N, seed=0).double()
    means, std = modes(name)
    means = means.double()
    label = torch.cdist(x, means).argmin(1)
    resid = x - means[label]
    if name != "gauss4":  # well separated: nearest-mode residuals are the Gaussian noise
        assert resid.mean(0).abs().max() < 4 * std / math.sqrt(N)
        assert resid.std(0).sub(std).abs().max() < 0.03 * std
        counts = torch.bincount(label, minlength=len(means)).double()
        expected = N / len(means)
        assert (counts - expected).abs().max() < 5 * math.sqrt(expected)
    # overall mean and covariance of an equal-weight mixture
    _assert_close(x.mean(0), means.mean(0), atol=0.05 * means.abs().max(), rtol=0)
    cov = torch.cov(x.T)
    mix_cov = torch.cov(means.T, correction=0) + std**2 * torch.eye(2, dtype=torch.float64)
    _assert_close(cov, mix_cov, atol=0.03 * mix_cov.diag().max(), rtol=0)


def test_gauss25_dot_modes_are_exactly_balanced():
    x = sample("gauss25-dot", 2500, seed=1).double()
    counts = torch.bincount(torch.cdist(x, modes("gauss25-dot")[0].double()).argmin(1))
    assert counts.tolist() == [100] * 25


def test_swissroll_scale_and_no_modes():
    x = sample("swissroll", 5000, seed=0)
    # make_swiss_roll: t in [1.5π, 4.5π], points t·(cos t, sin t) (+ noise), then / 7.5
    r = x.norm(dim=1)
    assert r.max() < (4.5 * math.pi + 1.0) / 7.5 and r.min() > (1.5 * math.pi - 1.0) / 7.5
    with pytest.raises(OTGenError, match="no modes"):
        modes("swissroll")


def test_bad_inputs():
    with pytest.raises(OTGenError, match="grid25"):
        sample("grid24", 10)
    with pytest.raises(OTGenError, match="grid25"):
        modes("nope")
    with pytest.raises(OTGenError):
        sample("ring8", 0)
    with pytest.raises(OTGenError):
        sample("ring8", 10, seed=1, generator=torch.Generator())
    with pytest.raises(OTGenError):
        sample("ring8", 2.5)
