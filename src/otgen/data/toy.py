"""2D toy distributions of the papers' mode-collapse and transport experiments.

Each sampler returns a float32 tensor of shape ``(n, 2)`` and is fully determined by
``seed`` (or an explicit ``torch.Generator``), so the same call gives the same points.

==============  ==========================================================================
name            definition (``/work/shared/reference-notes.md``, "2D toy datasets")
==============  ==========================================================================
``grid25``      25 equally weighted Gaussians, means (i, j), i, j in {-4,-2,0,2,4}, std 0.05
                (PacGAN; AE-OT Table 2)
``ring8``       8 equally weighted Gaussians, means (cos 2πk/8, sin 2πk/8), std 0.01 (PacGAN)
``gauss25-dot`` means (2x, 2y), x, y in {-2..2}, std 0.05, every point then divided by 2.828;
                *balanced* modes (exactly ⌊n/25⌋ or ⌈n/25⌉ points each), as the WGAN-GP toy
                code used by DOT
``swissroll``   ``sklearn.datasets.make_swiss_roll(n, noise=0.25)``, columns 0 and 2, / 7.5
                (DOT)
``gauss4``      4 equally weighted Gaussians centred at 4·(±1/√2, ±1/√2), variance 1
                (EOT paper, Fig. 1a)
==============  ==========================================================================
"""

from __future__ import annotations

import math

import torch

from otgen.errors import OTGenError
from otgen.utils.checks import check_choice, check_int

TOY_DATASETS: tuple[str, ...] = ("grid25", "ring8", "gauss25-dot", "swissroll", "gauss4")

# DOT / WGAN-GP scale the 25-Gaussian grid by 1/2.828 (≈ 1/(2√2)); the literal constant is
# kept rather than 2√2 so the points match the reference code to float precision.
_DOT_SCALE = 2.828


def _mixture(name: str) -> tuple[torch.Tensor, float]:
    """Means (K, 2) float64 and common isotropic std of the mixture ``name``."""
    if name == "grid25":
        ticks = torch.arange(-4.0, 5.0, 2.0, dtype=torch.float64)
        return torch.cartesian_prod(ticks, ticks), 0.05
    if name == "ring8":
        angle = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        return torch.stack([angle.cos(), angle.sin()], 1), 0.01
    if name == "gauss25-dot":
        ticks = 2.0 * torch.arange(-2.0, 3.0, dtype=torch.float64)
        return torch.cartesian_prod(ticks, ticks) / _DOT_SCALE, 0.05 / _DOT_SCALE
    if name == "gauss4":
        c = 4.0 / math.sqrt(2.0)
        signs = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=torch.float64)
        return c * signs, 1.0
    if name == "swissroll":
        raise OTGenError("swissroll is a continuous manifold and has no modes")
    raise OTGenError(f"unknown toy dataset {name!r}; choose one of: {', '.join(TOY_DATASETS)}")


def modes(name: str) -> tuple[torch.Tensor, float]:
    """Mode centres ``(K, 2)`` float32 and the common std of the mixture ``name``.

    For ``gauss25-dot`` both are given after the /2.828 scaling (std = 0.05/2.828).
    ``swissroll`` has no modes and raises :class:`OTGenError`.
    """
    means, std = _mixture(name)
    return means.float(), std


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    if seed is not None and generator is not None:
        raise OTGenError("give either seed or generator, not both")
    if seed is not None:
        check_int(seed, "seed", minimum=0)
        return torch.Generator().manual_seed(int(seed))
    return generator  # None: torch's global RNG, seeded by the engine


def sample(
    name: str, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``n`` points of the toy distribution ``name`` as a float32 ``(n, 2)`` tensor.

    ``seed`` makes the call reproducible on its own; ``generator`` continues an existing CPU
    generator stream; with neither, torch's global RNG is used. Points are always drawn on
    the CPU (move them afterwards), so results do not depend on the device.
    """
    check_choice(name, "toy dataset", TOY_DATASETS)
    n = check_int(n, "n")
    gen = _generator(seed, generator)
    if name == "swissroll":
        return _swissroll(n, gen)
    means, std = _mixture(name)
    k = means.shape[0]
    if name == "gauss25-dot":
        # Balanced modes: a random permutation of the repeated labels 0..K-1 (the WGAN-GP toy
        # set draws n/25 points per mode and shuffles).
        labels = torch.arange(n) % k
        labels = labels[torch.randperm(n, generator=gen)]
    else:
        labels = torch.randint(0, k, (n,), generator=gen)
    noise = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return (means[labels] + std * noise).float()


def _swissroll(n: int, gen: torch.Generator | None) -> torch.Tensor:
    from sklearn.datasets import make_swiss_roll

    # sklearn draws from numpy; derive its integer seed from the torch stream so a torch seed
    # (or the engine's global seed) still determines the points.
    state = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
    pts, _ = make_swiss_roll(n, noise=0.25, random_state=state)
    return torch.from_numpy(pts[:, [0, 2]] / 7.5).float()
