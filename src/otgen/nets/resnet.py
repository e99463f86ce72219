"""SNGAN-style ResNet generator/discriminator (Miyato et al. 2018, appendix B.4), the "ResNet"
models of DOT Table 1 and AE-OT-GAN Table 1, for 32x32 images (28 and 64 also built).

G: linear z -> ch x b x b, ``n`` up-blocks (BN-ReLU-up-conv3-BN-ReLU-conv3, 1x1 shortcut),
   BN-ReLU-conv3-tanh. D: optimised down-block, down-block, two plain blocks, ReLU, global sum
   pooling, linear (+ projection). Spectral normalisation is on by default in D (SNGAN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from otgen.nets.dcgan import size_plan
from otgen.nets.layers import (
    FeatureDiscriminator,
    Packing,
    ProjectionHead,
    apply_norm,
    check_unconditional,
    norm_layer,
    sn,
)


class GBlock(nn.Module):
    """Residual up-sampling block with (conditional) batch norm."""

    def __init__(self, cin: int, cout: int, num_classes: int | None) -> None:
        super().__init__()
        self.n1, self.n2 = norm_layer(cin, num_classes), norm_layer(cout, num_classes)
        self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(apply_norm(self.n1, x, y)), scale_factor=2)
        h = self.c2(F.relu(apply_norm(self.n2, self.c1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """Residual discriminator block; ``first`` is SNGAN's optimised block (no pre-activation)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool, spectral_norm: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.c1 = sn(nn.Conv2d(cin, cout, 3, 1, 1), spectral_norm)
        self.c2 = sn(nn.Conv2d(cout, cout, 3, 1, 1), spectral_norm)
        self.skip = sn(nn.Conv2d(cin, cout, 1), spectral_norm) if (down or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool before the 1x1 conv: cheaper, same function (both linear)
            s = self.skip(F.avg_pool2d(s, 2))
        elif self.skip is not None:
            s = self.skip(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(nn.Module):
    """``G(z, y=None) -> (N, C, H, W)``; conditional BN in every block when ``num_classes``."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, int, int],
        ch: int = 256,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.out_shape, self.num_classes = (
            latent_dim,
            tuple(out_shape),
            num_classes,
        )
        self.bottom, n = size_plan(out_shape)
        self.ch = ch
        self.project = nn.Linear(latent_dim, ch * self.bottom**2)
        self.blocks = nn.ModuleList([GBlock(ch, ch, num_classes) for _ in range(n)])
        self.norm = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, out_shape[0], 3, 1, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not self.num_classes:
            check_unconditional(y)
        h = self.project(z).view(z.shape[0], self.ch, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.norm(h))))


class ResNetDiscriminator(FeatureDiscriminator):
    """``D(x, y=None) -> (N / pack, out_dim)``, spectrally normalised by default.

    ``features(x, y)``: the output of every residual block.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        ch: int = 128,
        out_dim: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = True,
        pack: int = 1,
    ) -> None:
        super().__init__()
        _, n = size_plan(in_shape)
        n_down = max(2, n - 1)  # 32 -> 8 and 28 -> 7 (SNGAN), 64 -> 8
        self.pack = Packing(pack)
        blocks = [DBlock(in_shape[0] * pack, ch, True, True, spectral_norm)]
        blocks += [DBlock(ch, ch, True, False, spectral_norm) for _ in range(n_down - 1)]
        blocks += [DBlock(ch, ch, False, False, spectral_norm) for _ in range(2)]
        self.blocks = nn.ModuleList(blocks)
        self.head = ProjectionHead(ch, out_dim, num_classes, spectral_norm)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h).sum(dim=(2, 3))  # global sum pooling (SNGAN)
