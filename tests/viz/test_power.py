"""Power-diagram and interpolation figures (2D semi-discrete OT)."""

import pytest
import torch

from otgen.errors import OTGenError
from otgen.ot import extended_map as em
from otgen.ot import semidiscrete as sd
from otgen.viz import power


@pytest.fixture(scope="module")
def two_clusters():
    y = torch.tensor([[-1.0, 0.0], [-1.1, 0.1], [1.0, 0.0], [1.1, -0.1]])
    res = sd.solve(y, method="newton", tol=0.02, n_samples=8192)
    return res, em.extend(res, theta=0.3, n_samples=20_000)


def test_power_diagram_png_and_singular_boundary(tmp_path, two_clusters):
    res, ext = two_clusters
    path = tmp_path / "power.png"
    power.plot_power_diagram(
        res, ext, resolution=60, samples=ext(torch.rand(50, 2) - 0.5), path=path
    )
    assert path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Between-cluster facets are singular, within-cluster ones are not.
    side = res.y[:, 0] > 0
    f = ext.facets
    assert torch.equal(f.singular, side[f.pairs[:, 0]] != side[f.pairs[:, 1]])


def test_interpolation_png(tmp_path, two_clusters):
    res, ext = two_clusters
    path = tmp_path / "interp.png"
    power.plot_interpolation(res, (0.0, 0.5, 1.0), n=300, transport=ext, path=path)
    assert path.stat().st_size > 5000
    with pytest.raises(OTGenError, match="interpolation"):
        power.plot_interpolation(res, (0.0, 2.0))


def test_colours_follow_target_position():
    c = power.target_colours(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert c.shape == (2, 3) and (c >= 0).all() and (c <= 1).all()
    assert c[1, 0] > c[0, 0] and c[1, 2] > c[0, 2]


def test_non_2d_is_rejected():
    res = sd.solve(torch.randn(3, 3), method="adam", tol=None, max_iter=1, n_samples=64)
    with pytest.raises(OTGenError, match="2D"):
        power.plot_power_diagram(res)
