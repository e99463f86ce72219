import pytest
import torch

from otgen.data.toy import modes, sample
from otgen.errors import OTGenError
from otgen.viz.points import plot_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_writes_png_with_contours(tmp_path):
    real = sample("gauss4", 800, seed=0)
    fake = real + 0.3 * torch.randn_like(real)
    path = plot_points(
        real, fake, tmp_path / "sub" / "fig.png", title="t", means=modes("gauss4")[0]
    )
    assert path == tmp_path / "sub" / "fig.png"
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000


def test_collapsed_generator_and_real_only(tmp_path):
    real = sample("ring8", 300, seed=0)
    # a generator collapsed to one point has a singular KDE covariance: contours are skipped
    path = plot_points(real, torch.zeros(50, 2), tmp_path / "collapsed.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert plot_points(real, None, tmp_path / "real.png").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(OTGenError, match="2D"):
        plot_points(torch.zeros(10, 3), None, tmp_path / "x.png")
    with pytest.raises(OTGenError, match="NaN"):
        plot_points(torch.zeros(10, 2), torch.full((4, 2), float("nan")), tmp_path / "x.png")
