import numpy as np
import pytest
import torch
from PIL import Image

from otgen.errors import OTGenError
from otgen.viz.images import make_grid, save_image_grid


def test_grid_layout_values_and_padding():
    imgs = torch.stack([torch.full((1, 2, 3), v) for v in (-1.0, 0.0, 1.0)])
    grid = make_grid(imgs, nrow=2, padding=1, pad_value=1.0)
    # 2 rows x 2 cols of 2x3 images with 1-pixel borders
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1) and grid.dtype == np.uint8
    assert (grid[1:3, 1:4] == 0).all()  # -1 -> 0
    assert (grid[1:3, 5:8] == 128).all()  # 0 -> 127.5 rounds to 128
    assert (grid[4:6, 1:4] == 255).all()  # 1 -> 255
    assert (grid[0] == 255).all()  # padding = pad_value 1 -> white


def test_save_png_round_trip_rgb(tmp_path):
    imgs = torch.rand(5, 3, 4, 4) * 2 - 1
    path = save_image_grid(imgs, tmp_path / "g.png", nrow=3, padding=0)
    arr = np.asarray(Image.open(path))
    assert arr.shape == (8, 12, 3)
    expect = ((imgs[4].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert (arr[4:8, 4:8] == expect).all()


def test_bad_input_is_one_line_error(tmp_path):
    with pytest.raises(OTGenError, match="shape"):
        make_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(OTGenError, match="NaN"):
        make_grid(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(OTGenError, match="PNG"):
        save_image_grid(torch.zeros(1, 1, 2, 2), tmp_path / "g.jpg")
