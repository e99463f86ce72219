"""Generated samples to disk: a ``.npy`` array, an image grid, or a 2D scatter against real data.

Used by the engine for interval samples (``<run>/samples/step-*.png``) and by ``otgen sample``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.utils.io import atomic_write
from otgen.viz.images import save_image_grid
from otgen.viz.points import plot_points


def save_samples(
    samples: torch.Tensor, path: str | Path, *, real: torch.Tensor | None = None, title: str = ""
) -> Path:
    """Samples to ``path``: ``.npy`` array, PNG grid for images, PNG scatter for 2D points."""
    path = Path(path)
    samples = samples.detach().cpu().float()
    if path.suffix.lower() == ".npy":

        def write(p: Path) -> None:
            with open(p, "wb") as fh:
                np.save(fh, samples.numpy())

        return atomic_write(path, write)
    if path.suffix.lower() != ".png":
        raise OTGenError(f"output must end in .png or .npy, got {str(path)!r}")
    if samples.ndim == 4:
        nrow = max(1, math.ceil(math.sqrt(len(samples))))
        scale = max(1, 64 // samples.shape[-1])  # enlarge small images (8x8 digits) to see them
        return save_image_grid(samples, path, nrow=nrow, scale=scale)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return _scatter(samples, real, path, title)
    raise OTGenError(
        f"cannot draw samples of shape {tuple(samples.shape[1:])} as PNG; use a .npy output"
    )


def _scatter(fake: torch.Tensor, real: torch.Tensor | None, path: Path, title: str) -> Path:
    if real is not None and real.ndim == 2 and real.shape[1] == 2:
        return plot_points(real, fake, path, title=title or None, contours=False)
    return plot_points(fake, None, path, title=title or None, contours=False)
