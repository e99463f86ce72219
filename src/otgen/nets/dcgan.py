"""DCGAN generator/discriminator for 28x28, 32x32 and 64x64 images (Radford et al. 2016).

The layout follows MBGAN Tables 1-2 (metric-based-gan.txt Sec. 4.1): G projects z to a small
feature map and doubles its size with strided transposed convolutions (BN + ReLU, tanh at the
end); D mirrors it with strided convolutions (LeakyReLU 0.2, BN except on the first layer) and
a fully connected output of ``out_dim`` units (1 for a GAN, K = 500 for MBGAN's embedding).

Sizes: 64 = 4 * 2^4, 32 = 4 * 2^3 (the MBGAN paper instead keeps 5 layers and sets one stride
to 1; we drop that layer, which keeps the same receptive-field progression), 28 = 7 * 2^2.
Channels double per layer towards the bottleneck: 64x64 uses 8b-4b-2b-b with b = ``base``.
``kernel`` 4 (DCGAN) or 5 (MBGAN's "5c2s") both halve/double sizes exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.nets.layers import (
    FeatureDiscriminator,
    Packing,
    ProjectionHead,
    activation,
    apply_norm,
    check_unconditional,
    norm_layer,
    sn,
)


def size_plan(shape: tuple[int, ...]) -> tuple[int, int]:
    """(bottom, n_layers): an HxH image is ``bottom * 2**n_layers`` with bottom in {4, 7}."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise OTGenError(f"image nets need square (C, H, W) data, got shape {tuple(shape)}")
    size = shape[1]
    for bottom in (4, 7):
        n = math.log2(size / bottom) if size >= bottom else -1
        if n >= 1 and n == int(n):
            return bottom, int(n)
    raise OTGenError(f"image size {size} not supported; use 28, 32 or 64 (4*2^k or 7*2^k)")


def _pad(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) making stride-2 (transposed) convolutions exact halvings."""
    if kernel == 4:
        return 1, 0
    if kernel == 5:
        return 2, 1
    raise OTGenError(f"kernel must be 4 or 5, got {kernel}")


class DCGANGenerator(nn.Module):
    """``G(z, y=None) -> (N, C, H, W)`` in [-1, 1]; conditional BN when ``num_classes``."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, int, int],
        base: int = 64,
        kernel: int = 4,
        activation_name: str = "relu",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.out_shape, self.num_classes = (
            latent_dim,
            tuple(out_shape),
            num_classes,
        )
        bottom, n = size_plan(out_shape)
        pad, out_pad = _pad(kernel)
        chans = [base * 2 ** (n - 1 - i) for i in range(n)] + [out_shape[0]]
        self.bottom, self.c0 = bottom, chans[0]
        # A linear projection of z equals a 1x1 -> bottom x bottom transposed convolution.
        self.project = nn.Linear(latent_dim, chans[0] * bottom * bottom, bias=False)
        self.norms = nn.ModuleList([norm_layer(chans[0], num_classes)])
        self.ups = nn.ModuleList()
        for i in range(n):
            last = i == n - 1
            self.ups.append(
                nn.ConvTranspose2d(chans[i], chans[i + 1], kernel, 2, pad, out_pad, bias=last)
            )
            if not last:
                self.norms.append(norm_layer(chans[i + 1], num_classes))
        self.act = activation(activation_name)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not self.num_classes:
            check_unconditional(y)
        h = self.project(z).view(z.shape[0], self.c0, self.bottom, self.bottom)
        h = self.act(apply_norm(self.norms[0], h, y))
        for i, up in enumerate(self.ups):
            h = up(h)
            h = self.act(apply_norm(self.norms[i + 1], h, y)) if i + 1 < len(self.ups) else h
        return torch.tanh(h)


class DCGANDiscriminator(FeatureDiscriminator):
    """``D(x, y=None) -> (N / pack, out_dim)``; projection head when ``num_classes``.

    ``spectral_norm=True`` normalises every layer and (SNGAN's "standard CNN") drops BatchNorm
    unless ``batchnorm=True`` is asked for explicitly. ``features(x, y)``: the activation map
    of every convolutional layer (DCGAN/MBGAN linear-probe features).
    """

    per_sample = True  # pack -> stages -> head; a batch-norm submodule still rules it out

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        base: int = 64,
        kernel: int = 4,
        out_dim: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        batchnorm: bool | None = None,
        pack: int = 1,
    ) -> None:
        super().__init__()
        bottom, n = size_plan(in_shape)
        pad, _ = _pad(kernel)
        batchnorm = (not spectral_norm) if batchnorm is None else batchnorm
        chans = [in_shape[0] * pack] + [base * 2**i for i in range(n)]
        self.pack = Packing(pack)
        self.blocks = nn.ModuleList()
        for i in range(n):
            layers: list[nn.Module] = [
                sn(nn.Conv2d(chans[i], chans[i + 1], kernel, 2, pad), spectral_norm)
            ]
            if batchnorm and i > 0:  # DCGAN: no BN on the discriminator's input layer
                layers.append(nn.BatchNorm2d(chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
            self.blocks.append(nn.Sequential(*layers))
        self.head = ProjectionHead(chans[-1] * bottom * bottom, out_dim, num_classes, spectral_norm)
