"""The one latent-prior vocabulary, used by every latent-variable method and by DOT.

``"normal"``: z ~ N(0, I); ``"uniform"``: z ~ U(−1, 1)^d (DCGAN's); ``"uniform01"``:
z ~ U(0, 1)^d (MBGAN paper's letter). :data:`SUPPORT` is the box DOT keeps a transported
latent in (None: unbounded, DOT projects the gradient on the Gaussian shell instead).
"""

from __future__ import annotations

from typing import Literal

import torch

Prior = Literal["normal", "uniform", "uniform01"]
PRIORS: tuple[Prior, ...] = ("normal", "uniform", "uniform01")
SUPPORT: dict[str, tuple[float, float] | None] = {
    "normal": None,
    "uniform": (-1.0, 1.0),
    "uniform01": (0.0, 1.0),
}


def draw_latent(prior: str, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Latents of ``shape`` from ``prior`` with torch's global RNG on ``device``."""
    if prior == "normal":
        return torch.randn(shape, device=device)
    u = torch.rand(shape, device=device)
    return u if prior == "uniform01" else u * 2 - 1
