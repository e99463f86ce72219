"""Image grids: a batch of images in [-1, 1] tiled into one PNG (PIL; no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.utils.io import atomic_write


def make_grid(
    images: torch.Tensor | np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile ``images`` (N, C, H, W) with values in [-1, 1] into a uint8 array (H', W', C).

    ``nrow`` images per row; ``padding`` pixels of ``pad_value`` (in [-1, 1]) between them.
    Values outside [-1, 1] are clipped. C must be 1 (grey) or 3 (RGB).
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim == 3:  # (N, H, W): grey
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise OTGenError(f"images must have shape (N, 1|3, H, W), got {tuple(x.shape)}")
    if nrow < 1 or padding < 0:
        raise OTGenError(f"nrow must be >= 1 and padding >= 0, got {nrow}, {padding}")
    x = x.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise OTGenError("images contain NaN or Inf values")
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.full(
        (c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value
    )
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    # [-1, 1] -> [0, 255], rounding to the nearest level
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).numpy()


def save_image_grid(
    images: torch.Tensor | np.ndarray,
    path: str | Path,
    nrow: int = 8,
    padding: int = 2,
    scale: int = 1,
) -> Path:
    """Save ``images`` (N, C, H, W) in [-1, 1] as one PNG grid (atomically); returns the path.

    ``scale`` > 1 enlarges every pixel (nearest neighbour), useful for 28x28 digits.
    """
    from PIL import Image

    arr = make_grid(images, nrow=nrow, padding=padding)
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OTGenError(f"image grids are written as PNG, got {str(path)!r}")
    return atomic_write(path, lambda p: img.save(p, format="PNG"))
