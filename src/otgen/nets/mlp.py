"""Multi-layer perceptrons for the papers' 2D experiments.

- PacGAN baseline (reference notes; AE-OT Table 2): G 2->400x4->2 with BatchNorm + ReLU and no
  hidden bias, D = 3 maxout layers (200 units, 5 pieces) -> 1 reading ``pack`` samples at once.
- DOT 2D nets (DOT Sec. 3.2, Fig. 3): G 2->256x3->2 leaky ReLU (z ~ U(-1, 1)^2),
  D 2->512x3->1 leaky ReLU, trained as WGAN-GP.
- EOT toy generator (EOT Fig. 1a): 2->256x3->2 ReLU.

Generators are called ``G(z, y=None)`` and discriminators ``D(x, y=None)``; discriminators
return ``(N / pack, out_dim)`` and expose ``features(x, y=None)`` (hidden activations).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from otgen.nets.layers import (
    FeatureDiscriminator,
    Maxout,
    Packing,
    ProjectionHead,
    check_unconditional,
    require_labels,
    sn,
)
from otgen.nets.layers import activation as _activation
from otgen.utils.checks import check_layer_widths


class MLP(nn.Sequential):
    """Linear layers with an activation between them (none after the last).

    ``batchnorm=True`` inserts BatchNorm1d before each hidden activation (PacGAN's generator,
    which then drops the hidden biases since BatchNorm's shift makes them redundant).
    ``spectral_norm=True`` normalises every linear layer (DOT eq. 11: Lipschitz bound 1).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        activation: str = "relu",
        batchnorm: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        dims = [in_dim, *hidden]
        check_layer_widths([*dims, out_dim], "hidden")
        for d_in, d_out in itertools.pairwise(dims):
            layers.append(sn(nn.Linear(d_in, d_out, bias=not batchnorm), spectral_norm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(_activation(activation))
        layers.append(sn(nn.Linear(dims[-1], out_dim), spectral_norm))
        super().__init__(*layers)


class MLPGenerator(nn.Module):
    """``G(z, y)``: an :class:`MLP`; a conditional one appends a learned class embedding to z."""

    def __init__(
        self,
        latent_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        activation: str = "relu",
        batchnorm: bool = False,
        num_classes: int | None = None,
        embed_dim: int = 16,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = latent_dim + (embed_dim if num_classes else 0)
        self.body = MLP(in_dim, out_dim, hidden, activation, batchnorm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            check_unconditional(y)
            return self.body(z)
        return self.body(torch.cat([z, self.embed(require_labels(y, z.shape[0]))], dim=1))


class MLPDiscriminator(FeatureDiscriminator):
    """``D(x, y)``: hidden linear (or maxout) layers, then a (projection) output head.

    ``maxout=(units, pieces)`` replaces each hidden ``Linear + activation`` by a maxout layer
    (PacGAN's discriminator); ``pack=m`` makes D read m concatenated samples.
    ``features(x, y)``: the activations after each hidden layer (of the packed input).
    """

    per_sample = True  # pack -> blocks -> head, no cross-sample term (see scores_each_sample)

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (512, 512, 512),
        activation: str = "leaky_relu",
        out_dim: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        pack: int = 1,
        maxout_pieces: int | None = None,
    ) -> None:
        super().__init__()
        self.pack = Packing(pack)
        blocks: list[nn.Module] = []
        dims = [in_dim * pack, *hidden]
        check_layer_widths([*dims, out_dim], "hidden", factor=maxout_pieces or 1)
        for d_in, d_out in itertools.pairwise(dims):
            if maxout_pieces:
                blocks.append(Maxout(d_in, d_out, maxout_pieces, spectral_norm))
            else:
                blocks.append(
                    nn.Sequential(
                        sn(nn.Linear(d_in, d_out), spectral_norm), _activation(activation)
                    )
                )
        self.blocks = nn.ModuleList(blocks)
        self.head = ProjectionHead(dims[-1], out_dim, num_classes, spectral_norm)


# -- the papers' 2D nets -------------------------------------------------------------------------
def pacgan_generator(
    latent_dim: int = 2, out_dim: int = 2, num_classes: int | None = None, width: int = 400
):
    """PacGAN G: 2 -> 400x4 -> 2, BatchNorm + ReLU, no hidden bias."""
    return MLPGenerator(latent_dim, out_dim, (width,) * 4, "relu", True, num_classes)


def pacgan_discriminator(
    in_dim: int = 2,
    pack: int = 1,
    out_dim: int = 1,
    num_classes: int | None = None,
    spectral_norm: bool = False,
    width: int = 200,
):
    """PacGAN D: 3 maxout layers (200 units, 5 pieces) -> 1, reading ``pack`` samples."""
    return MLPDiscriminator(
        in_dim, (width,) * 3, "relu", out_dim, num_classes, spectral_norm, pack, maxout_pieces=5
    )


def dot_generator(
    latent_dim: int = 2, out_dim: int = 2, num_classes: int | None = None, width: int = 256
):
    """DOT 2D G: 2 -> 256x3 -> 2 leaky ReLU (its prior is U(-1, 1)^2)."""
    return MLPGenerator(latent_dim, out_dim, (width,) * 3, "leaky_relu", False, num_classes)


def dot_discriminator(
    in_dim: int = 2,
    pack: int = 1,
    out_dim: int = 1,
    num_classes: int | None = None,
    spectral_norm: bool = False,
    width: int = 512,
):
    """DOT 2D D: 2 -> 512x3 -> 1 leaky ReLU."""
    return MLPDiscriminator(
        in_dim, (width,) * 3, "leaky_relu", out_dim, num_classes, spectral_norm, pack
    )


def eot_toy_generator(
    latent_dim: int = 2, out_dim: int = 2, num_classes: int | None = None, width: int = 256
):
    """EOT toy G (EOT Fig. 1a): 2 -> 256x3 -> 2 ReLU."""
    return MLPGenerator(latent_dim, out_dim, (width,) * 3, "relu", False, num_classes)
