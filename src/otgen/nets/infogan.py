"""InfoGAN-style networks (Chen et al. 2016), the "InfoGAN architecture" of Lucic et al. 2018
used by AE-OT (ae-ot-geometric-understanding.txt Sec. 6) and AE-OT-GAN (ae-ot-gan.txt Sec. 4)
for MNIST-like 28x28 data (any size divisible by 4 works: 28, 32, 64).

G: FC 1024 - BN - ReLU - FC 128*(H/4)^2 - BN - ReLU - deconv 64 (4x4, s2) - BN - ReLU -
   deconv C (4x4, s2) - tanh.
D: conv 64 (4x4, s2) - LReLU - conv 128 (4x4, s2) - BN - LReLU - FC 1024 - BN - LReLU - FC out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.nets.layers import (
    FeatureDiscriminator,
    Packing,
    ProjectionHead,
    apply_norm,
    check_unconditional,
    norm_layer,
    sn,
)


def _quarter(shape: tuple[int, ...]) -> int:
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 4:
        raise OTGenError(f"InfoGAN nets need square images with size divisible by 4, got {shape}")
    return shape[1] // 4


class InfoGANGenerator(nn.Module):
    """``G(z, y=None) -> (N, C, H, W)``; conditional BN in every layer when ``num_classes``."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, int, int],
        num_classes: int | None = None,
        hidden: int = 1024,
        base: int = 64,
    ) -> None:
        super().__init__()
        self.latent_dim, self.out_shape, self.num_classes = (
            latent_dim,
            tuple(out_shape),
            num_classes,
        )
        self.s = _quarter(out_shape)
        self.c0 = 2 * base
        self.fc1 = nn.Linear(latent_dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, self.c0 * self.s * self.s, bias=False)
        self.up1 = nn.ConvTranspose2d(self.c0, base, 4, 2, 1, bias=False)
        self.up2 = nn.ConvTranspose2d(base, out_shape[0], 4, 2, 1)
        self.n1 = norm_layer(hidden, num_classes, dims=1)
        self.n2 = norm_layer(self.c0 * self.s * self.s, num_classes, dims=1)
        self.n3 = norm_layer(base, num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not self.num_classes:
            check_unconditional(y)
        h = torch.relu(apply_norm(self.n1, self.fc1(z), y))
        h = torch.relu(apply_norm(self.n2, self.fc2(h), y)).view(-1, self.c0, self.s, self.s)
        h = torch.relu(apply_norm(self.n3, self.up1(h), y))
        return torch.tanh(self.up2(h))


class InfoGANDiscriminator(FeatureDiscriminator):
    """``D(x, y=None) -> (N / pack, out_dim)``; the encoder of the InfoGAN autoencoder too.

    ``spectral_norm=True`` drops BatchNorm unless ``batchnorm=True`` is given.
    ``features(x, y)``: the activations of conv1, conv2 and the 1024-unit layer.
    """

    per_sample = True  # pack -> stages -> head; a batch-norm submodule still rules it out

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_dim: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        batchnorm: bool | None = None,
        pack: int = 1,
        hidden: int = 1024,
        base: int = 64,
    ) -> None:
        super().__init__()
        s = _quarter(in_shape)
        batchnorm = (not spectral_norm) if batchnorm is None else batchnorm
        self.pack = Packing(pack)
        self.conv1 = nn.Sequential(
            sn(nn.Conv2d(in_shape[0] * pack, base, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)
        )
        self.conv2 = nn.Sequential(
            sn(nn.Conv2d(base, 2 * base, 4, 2, 1), spectral_norm),
            nn.BatchNorm2d(2 * base) if batchnorm else nn.Identity(),
            nn.LeakyReLU(0.2),
        )
        self.fc = nn.Sequential(
            sn(nn.Linear(2 * base * s * s, hidden), spectral_norm),
            nn.BatchNorm1d(hidden) if batchnorm else nn.Identity(),
            nn.LeakyReLU(0.2),
        )
        self.head = ProjectionHead(hidden, out_dim, num_classes, spectral_norm)

    def _stages(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], ...]:
        return self.conv1, self.conv2, self._dense

    def _dense(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h.flatten(1))
