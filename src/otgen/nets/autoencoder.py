"""Mirrored encoder/decoder pairs for AE-OT and AE-OT-GAN.

AE-OT (ae-ot-geometric-understanding.txt Sec. 6): "the decoder was the same as the generators
of GANs [Lucic et al.], and the encoder was symmetric to the decoder"; AE-OT-GAN (ae-ot-gan.txt
Sec. 4): "the framework of encoder is set to be the mirror of the generators/decoders". So the
decoder *is* a generator (InfoGAN for 28x28, DCGAN for 32/64) and the encoder is the matching
discriminator body with a ``latent_dim``-unit linear output. The decoder can then warm-start
the GAN generator of AE-OT-GAN (same class, same state_dict keys).

``Encoder.features(x)`` returns the intermediate activations and, last, the latent code: the
layers of AE-OT-GAN's feature loss (ae-ot-gan.txt Sec. 3.3).
"""

from __future__ import annotations

import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from otgen.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from otgen.nets.layers import apply_init


class Encoder(nn.Module):
    """``E(x) -> (N, latent_dim)``, wrapping a discriminator body with a linear code head."""

    def __init__(self, body: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.body, self.latent_dim = body, latent_dim

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every layer, the latent code last."""
        code, feats = self.body.forward_with_features(x)
        return [*feats, code]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Autoencoder(nn.Module):
    """``decoder(encoder(x))``; ``encode``/``decode`` for the AE-OT pipeline."""

    def __init__(self, encoder: Encoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = encoder.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


AUTOENCODER_KINDS = ("auto", "infogan", "dcgan")


def build_autoencoder(
    kind: str,
    spec: DataSpec,
    latent_dim: int,
    *,
    base: int = 64,
    init: str = "default",
) -> Autoencoder:
    """Encoder/decoder pair for images of ``spec.shape``.

    ``kind``: "infogan" (any size divisible by 4), "dcgan" (28/32/64) or "auto" (InfoGAN for
    28x28, DCGAN otherwise). ``init`` "normal" gives N(0, 0.02) weights.
    """
    if not spec.is_image:
        raise OTGenError(f"autoencoders are for images, got data shape {spec.shape}")
    if kind not in AUTOENCODER_KINDS:
        raise OTGenError(f"unknown autoencoder {kind!r}; choose one of {AUTOENCODER_KINDS}")
    if latent_dim < 1:
        raise OTGenError(f"latent_dim must be >= 1, got {latent_dim}")
    if kind == "auto":
        kind = "infogan" if spec.shape[1] == 28 else "dcgan"
    shape = tuple(spec.shape)
    if kind == "infogan":
        decoder = InfoGANGenerator(latent_dim, shape, base=base)
        body = InfoGANDiscriminator(shape, out_dim=latent_dim, base=base)
    else:
        decoder = DCGANGenerator(latent_dim, shape, base=base)
        body = DCGANDiscriminator(shape, base=base, out_dim=latent_dim)
    return apply_init(Autoencoder(Encoder(body, latent_dim), decoder), init)
