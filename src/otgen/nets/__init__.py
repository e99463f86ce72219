"""Networks of the papers' experiments, built by name from a :class:`DataSpec`.

``build_generator(kind, spec, latent_dim)`` / ``build_discriminator(kind, spec)`` with
``kind`` in :data:`KINDS`:

========== ======================================================== ====================
kind       generator / discriminator                                 data
========== ======================================================== ====================
mlp        generic MLPs (G 256x3 ReLU, D 256x3 leaky ReLU)            points (d,)
pacgan     PacGAN: G 400x4 BN+ReLU, D 3x maxout(200, 5), packing      points
dot-mlp    DOT 2D: G 256x3 leaky ReLU, D 512x3 leaky ReLU             points
eot-mlp    EOT toy G 256x3 ReLU (D as "mlp")                          points
dcgan      DCGAN / MBGAN conv nets                                    28, 32, 64 images
infogan    InfoGAN / Lucic et al. conv nets                           28 (32, 64) images
resnet     SNGAN ResNet (SN on by default in D)                       32 (28, 64) images
========== ======================================================== ====================

Every generator is called ``G(z, y=None)`` and every discriminator ``D(x, y=None)`` and
returns ``(N / pack, out_dim)``; discriminators expose ``features(x, y=None)`` (per-layer
activations) and ``forward_with_features``. ``num_classes`` builds the class-conditional
variant (conditional BN / label embedding in G, projection head in D).
"""

from __future__ import annotations

from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.nets import mlp
from otgen.nets.autoencoder import Autoencoder, Encoder, build_autoencoder
from otgen.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from otgen.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from otgen.nets.layers import apply_init, sn
from otgen.nets.resnet import ResNetDiscriminator, ResNetGenerator

POINT_KINDS = ("mlp", "pacgan", "dot-mlp", "eot-mlp")
IMAGE_KINDS = ("dcgan", "infogan", "resnet")
KINDS = POINT_KINDS + IMAGE_KINDS

DEFAULT_LATENT_DIM = {
    "mlp": 2,
    "pacgan": 2,
    "dot-mlp": 2,
    "eot-mlp": 2,
    "dcgan": 100,
    "infogan": 64,
    "resnet": 128,
}
# N(0, 0.02) initialisation where the paper's code uses it (DCGAN, PacGAN).
DEFAULT_INIT = {"dcgan": "normal", "pacgan": "normal"}

__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "POINT_KINDS",
    "Autoencoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Encoder",
    "InfoGANDiscriminator",
    "InfoGANGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "build_autoencoder",
    "build_discriminator",
    "build_generator",
    "default_kind",
    "default_latent_dim",
    "sn",
]


def default_kind(spec: DataSpec) -> str:
    """ "mlp" for points, "dcgan" for images."""
    return "dcgan" if spec.is_image else "mlp"


def default_latent_dim(kind: str) -> int:
    return DEFAULT_LATENT_DIM[_check_kind(kind)]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise OTGenError(f"unknown network kind {kind!r}; choose one of: {', '.join(KINDS)}")
    return kind


def _check_spec(kind: str, spec: DataSpec) -> None:
    if kind in IMAGE_KINDS and not spec.is_image:
        raise OTGenError(f"network {kind!r} needs images (C, H, W), got data shape {spec.shape}")
    if kind in POINT_KINDS and len(spec.shape) != 1:
        raise OTGenError(f"network {kind!r} needs points (d,), got data shape {spec.shape}")


def _width_options(kind: str, width: int | None) -> dict:
    """One knob for the size of every kind: hidden units of the MLPs (PacGAN D: maxout units),
    base channels of dcgan/infogan (InfoGAN's FC layer gets 16 * width), channels of resnet."""
    if width is None:
        return {}
    if width < 1:
        raise OTGenError(f"width must be >= 1, got {width}")
    if kind == "mlp":
        return {"hidden": (width,) * 3}
    if kind in ("pacgan", "dot-mlp", "eot-mlp"):
        return {"width": width}
    if kind == "infogan":
        return {"base": width, "hidden": 16 * width}
    return {"ch": width} if kind == "resnet" else {"base": width}


def _build(factory, what: str, kind: str, options: dict) -> nn.Module:
    try:
        return factory(**options)
    except TypeError as err:  # an unknown or missing option: say which, in one line
        raise OTGenError(f"bad option for {kind!r} {what}: {err}") from None


def build_generator(
    kind: str,
    spec: DataSpec,
    latent_dim: int | None = None,
    *,
    num_classes: int | None = None,
    init: str = "auto",
    width: int | None = None,
    **options,
) -> nn.Module:
    """Generator ``G(z, y=None)`` mapping ``(N, latent_dim)`` to samples shaped like ``spec``.

    ``options`` go to the network class (e.g. ``hidden``/``activation``/``batchnorm`` for
    "mlp", ``base``/``kernel`` for "dcgan", ``ch`` for "resnet"). ``init``: "auto" (N(0, 0.02)
    for dcgan/pacgan, PyTorch's default otherwise), "normal" or "default". ``width`` scales
    the net (see :func:`_width_options`; None: the paper's size).
    """
    _check_spec(_check_kind(kind), spec)
    latent_dim = DEFAULT_LATENT_DIM[kind] if latent_dim is None else int(latent_dim)
    if latent_dim < 1:
        raise OTGenError(f"latent_dim must be >= 1, got {latent_dim}")
    shape = tuple(spec.shape)
    options = {**_width_options(kind, width), **options}
    common = {"num_classes": num_classes}
    if kind in POINT_KINDS:
        factory = {
            "mlp": mlp.MLPGenerator,
            "pacgan": mlp.pacgan_generator,
            "dot-mlp": mlp.dot_generator,
            "eot-mlp": mlp.eot_toy_generator,
        }[kind]
        args = {"latent_dim": latent_dim, "out_dim": shape[0], **common, **options}
    else:
        factory = {"dcgan": DCGANGenerator, "infogan": InfoGANGenerator, "resnet": ResNetGenerator}[
            kind
        ]
        args = {"latent_dim": latent_dim, "out_shape": shape, **common, **options}
    net = _build(factory, "generator", kind, args)
    net.latent_dim = latent_dim
    return apply_init(net, DEFAULT_INIT.get(kind, "default") if init == "auto" else init)


def build_discriminator(
    kind: str,
    spec: DataSpec,
    *,
    out_dim: int = 1,
    num_classes: int | None = None,
    spectral_norm: bool | None = None,
    pack: int = 1,
    init: str = "auto",
    width: int | None = None,
    **options,
) -> nn.Module:
    """Discriminator ``D(x, y=None) -> (N / pack, out_dim)`` for data shaped like ``spec``.

    ``spectral_norm`` None means the kind's default (on for "resnet", off otherwise); with SN
    the conv nets drop BatchNorm. ``pack`` = m makes D read m samples at once (PacGAN).
    """
    _check_spec(_check_kind(kind), spec)
    if out_dim < 1 or pack < 1:
        raise OTGenError(f"out_dim and pack must be >= 1, got out_dim={out_dim}, pack={pack}")
    if num_classes and pack > 1:
        raise OTGenError("packing (pack > 1) is not defined for a conditional discriminator")
    if spectral_norm is None:
        spectral_norm = kind == "resnet"
    shape = tuple(spec.shape)
    options = {**_width_options("mlp" if kind == "eot-mlp" else kind, width), **options}
    common = {
        "out_dim": out_dim,
        "num_classes": num_classes,
        "spectral_norm": spectral_norm,
        "pack": pack,
    }
    if kind in POINT_KINDS:
        if kind in ("mlp", "eot-mlp"):
            factory = mlp.MLPDiscriminator
            options = {"hidden": (256, 256, 256), "activation": "leaky_relu", **options}
        else:
            factory = {"pacgan": mlp.pacgan_discriminator, "dot-mlp": mlp.dot_discriminator}[kind]
        args = {"in_dim": shape[0], **common, **options}
    else:
        factory = {
            "dcgan": DCGANDiscriminator,
            "infogan": InfoGANDiscriminator,
            "resnet": ResNetDiscriminator,
        }[kind]
        args = {"in_shape": shape, **common, **options}
    net = _build(factory, "discriminator", kind, args)
    return apply_init(net, DEFAULT_INIT.get(kind, "default") if init == "auto" else init)
