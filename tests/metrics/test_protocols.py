import numpy as np
import pytest
import torch

from otgen.errors import OTGenError
from otgen.metrics.protocols import (
    conv_feature_maps,
    linear_probe,
    max_pooled_features,
    mixing_ratio,
    plot_mixing_ratio,
    probe_features,
)


class Identity:
    """Identity features on low-dim points; 'logits' = the points themselves (for IS)."""

    def __call__(self, x):
        return x

    def logits(self, x):
        return 4.0 * x


def _real_pool(n=2000):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


def bad_sampler(n):
    return torch.randn(n, 2) + 3.0  # uses torch's global RNG, seeded by the protocol


def test_fid_grows_monotonically_with_r_for_a_bad_generator(tmp_path):
    ratios = (0.0, 0.25, 0.5, 0.75, 1.0)
    res = mixing_ratio(_real_pool(), bad_sampler, Identity(), ratios=ratios, n=500, repeats=3)
    fid = res.mean("fid")
    assert res.values["fid"].shape == (3, 5) and res.values["is"].shape == (3, 5)
    assert np.all(np.diff(fid) > 0)
    # The mean shift alone gives FID ≈ ‖3r·1‖² (+ the mixture's variance), far above r = 0.
    assert fid[0] < 0.1 and fid[-1] == pytest.approx(18.0, rel=0.15)
    lo, hi = res.range("fid")
    assert np.all(lo <= fid) and np.all(fid <= hi)
    png = plot_mixing_ratio({"bad": res}, tmp_path / "mix.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [row["r"] for row in res.rows()] == list(ratios)


def test_same_seed_same_numbers_and_rng_untouched():
    kw = dict(ratios=(0.0, 0.5, 1.0), n=200, repeats=2, metrics=("fid",), seed=4)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = mixing_ratio(_real_pool(500), bad_sampler, Identity(), **kw)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    torch.manual_seed(999)  # ... and the result does not depend on the caller's RNG state
    b = mixing_ratio(_real_pool(500), bad_sampler, Identity(), **kw)
    np.testing.assert_array_equal(a.values["fid"], b.values["fid"])
    c = mixing_ratio(_real_pool(500), bad_sampler, Identity(), **{**kw, "seed": 5})
    assert not np.array_equal(a.values["fid"], c.values["fid"])
    # A tensor of pre-generated samples works too.
    pool = bad_sampler(300)
    d = mixing_ratio(_real_pool(500), pool, Identity(), **kw)
    assert d.values["fid"][:, -1].min() > 10


def test_mixing_ratio_bad_inputs():
    with pytest.raises(OTGenError, match="at least 2n"):
        mixing_ratio(_real_pool(100), bad_sampler, Identity(), n=100)
    with pytest.raises(OTGenError, match="ratios"):
        mixing_ratio(_real_pool(), bad_sampler, Identity(), ratios=(0.5, 1.5), n=100)
    with pytest.raises(OTGenError, match="logits"):
        mixing_ratio(_real_pool(), bad_sampler, lambda x: x, n=100)
    with pytest.raises(OTGenError, match="returned"):
        mixing_ratio(_real_pool(), lambda k: torch.zeros(k - 1, 2), Identity(), n=100)


def test_max_pooled_features_layout():
    a = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    b = torch.randn(2, 5, 2, 2)
    f = max_pooled_features([a, b])
    assert f.shape == (2, 3 * 16 + 5 * 4)  # maps smaller than 4×4 keep their size
    # Top-left cell of channel 0 of sample 0 is the max over rows 0-1, cols 0-1 = element (1, 1).
    assert f[0, 0] == a[0, 0, 1, 1]
    torch.testing.assert_close(f[:, 48:], b.reshape(2, -1))


def _separable_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    img = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    img[torch.arange(n), 0, 2 * y, 2 * y] += 3.0  # class = position of a bright pixel
    return img, y


def test_linear_probe_on_separable_conv_features():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(4, 4, 3, 2, 1)
    )
    maps = conv_feature_maps(net)
    xtr, ytr = _separable_data(300, 1)
    xte, yte = _separable_data(200, 2)
    ftr, fte = probe_features(maps, xtr, batch_size=64), probe_features(maps, xte)
    assert ftr.shape == (300, 4 * 16 + 4 * 16)
    res = linear_probe(ftr, ytr, fte, yte, seed=0)
    assert res.accuracy > 0.9 and res.num_features == 128
    # Same seed -> same numbers; precomputed maps give the same features as the callable.
    assert linear_probe(ftr, ytr, fte, yte, seed=0) == res
    np.testing.assert_allclose(probe_features(maps(xte)), fte)


def test_linear_probe_chance_on_random_labels_and_bad_inputs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 5)), rng.integers(0, 2, 400)
    res = linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert 0.3 < res.accuracy < 0.7
    with pytest.raises(OTGenError, match="differ in dimension"):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(OTGenError, match="labels"):
        linear_probe(x, y[:10], x, y)
    with pytest.raises(OTGenError, match="two classes"):
        linear_probe(x, np.zeros(400, int), x, y)
    with pytest.raises(OTGenError, match="no Conv2d"):
        conv_feature_maps(torch.nn.Linear(2, 2))
