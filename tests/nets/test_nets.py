"""Shapes, paper layouts, packing, conditioning, init and spectral norm of otgen.nets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.nets import (
    IMAGE_KINDS,
    POINT_KINDS,
    build_autoencoder,
    build_discriminator,
    build_generator,
)
from otgen.nets.layers import Maxout, Packing
from otgen.nets.mlp import MLP

SMALL = {"dcgan": 8, "infogan": 4, "resnet": 8}  # width knob: small nets, same layouts


@pytest.mark.parametrize("kind", POINT_KINDS)
@pytest.mark.parametrize("num_classes", [None, 3])
def test_point_nets_shapes(kind, num_classes):
    spec = DataSpec((2,))
    G = build_generator(kind, spec, num_classes=num_classes, width=16)
    D = build_discriminator(kind, spec, num_classes=num_classes, width=16)
    y = torch.tensor([0, 1, 2, 0, 1]) if num_classes else None
    x = G(torch.randn(5, G.latent_dim), y)
    assert x.shape == (5, 2)
    assert D(x, y).shape == (5, 1)
    assert all(f.shape == (5, 16) for f in D.features(x, y))


@pytest.mark.parametrize("kind", IMAGE_KINDS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_image_nets_shapes(kind, shape, num_classes):
    spec = DataSpec(shape, num_classes=num_classes)
    G = build_generator(kind, spec, latent_dim=7, num_classes=num_classes, width=SMALL[kind])
    D = build_discriminator(kind, spec, num_classes=num_classes, width=SMALL[kind])
    y = torch.tensor([3, 9]) if num_classes else None
    x = G(torch.randn(2, 7), y)
    assert x.shape == (2, *shape)
    assert x.abs().max() <= 1.0  # tanh output, the data range
    assert D(x, y).shape == (2, 1)
    feats = D.features(x, y)
    assert len(feats) >= 2 and all(f.shape[0] == 2 for f in feats)


def test_embedding_head_out_dim():
    """MBGAN's K-dim embedding: out_dim sets the head width; conv features unchanged."""
    D = build_discriminator("dcgan", DataSpec((3, 32, 32)), out_dim=500, width=8)
    out, feats = D.forward_with_features(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 500)
    assert [f.shape[1:] for f in feats] == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]


def test_dcgan64_default_layout():
    """MBGAN Tables 1-2 / DCGAN: 64 -> 128 -> 256 -> 512 channels down to 4x4."""
    spec = DataSpec((3, 64, 64))
    D = build_discriminator("dcgan", spec)
    feats = D.features(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (64, 32, 32),
        (128, 16, 16),
        (256, 8, 8),
        (512, 4, 4),
    ]
    G = build_generator("dcgan", spec, kernel=5)  # MBGAN's 5x5 kernels also double exactly
    assert G(torch.randn(2, 100)).shape == (2, 3, 64, 64)


def test_pacgan_layout_and_packing():
    spec = DataSpec((2,))
    G = build_generator("pacgan", spec)
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 400),
        (400, 400),
        (400, 400),
        (400, 400),
        (400, 2),
    ]
    assert all(m.bias is None for m in linears[:-1])  # BN makes hidden biases redundant
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    D = build_discriminator("pacgan", spec, pack=4)
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.units, m.pieces) for m in maxouts] == [
        (8, 200, 5),
        (200, 200, 5),
        (200, 200, 5),
    ]
    x = torch.randn(12, 2)
    out = D(x)
    assert out.shape == (3, 1)
    # Packing concatenates consecutive samples: pack 0 is [x0, x1, x2, x3].
    assert torch.equal(Packing(4)(x)[0], x[:4].reshape(-1))
    with pytest.raises(OTGenError, match="multiple of pack"):
        D(torch.randn(6, 2))


def test_image_packing_concatenates_channels():
    D = build_discriminator("dcgan", DataSpec((1, 28, 28)), pack=2, width=8)
    assert D.blocks[0][0].in_channels == 2
    assert D(torch.randn(4, 1, 28, 28)).shape == (2, 1)


def test_dot_nets_layout():
    spec = DataSpec((2,))
    G, D = build_generator("dot-mlp", spec), build_discriminator("dot-mlp", spec)

    def widths(net):
        return [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]

    assert widths(G) == [256, 256, 256, 2]
    assert widths(D) == [512, 512, 512, 1]
    assert any(isinstance(m, nn.LeakyReLU) for m in G.modules())


def test_conditioning_changes_output_and_labels_are_checked():
    spec = DataSpec((1, 28, 28), num_classes=10)
    G = build_generator("dcgan", spec, num_classes=10, width=8)
    D = build_discriminator("dcgan", spec, num_classes=10, width=8)
    # Randomise the class embeddings (they start at gamma=1, beta=0).
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight)
    G.eval()
    z = torch.randn(1, 100).repeat(2, 1)
    x = G(z, torch.tensor([0, 1]))
    assert not torch.allclose(x[0], x[1])
    d = D(x[:1].repeat(2, 1, 1, 1), torch.tensor([0, 1]))
    assert not torch.allclose(d[0], d[1])
    with pytest.raises(OTGenError, match="pass labels"):
        G(z)
    with pytest.raises(OTGenError, match="shape"):
        D(x, torch.tensor([0]))
    G0 = build_generator("dcgan", DataSpec((1, 28, 28)), width=8)
    with pytest.raises(OTGenError, match="unconditional"):
        G0(z, torch.tensor([0, 1]))


def test_bad_requests_raise():
    with pytest.raises(OTGenError, match="unknown network kind"):
        build_generator("vgg", DataSpec((2,)))
    with pytest.raises(OTGenError, match="needs images"):
        build_generator("dcgan", DataSpec((2,)))
    with pytest.raises(OTGenError, match="needs points"):
        build_discriminator("pacgan", DataSpec((1, 28, 28)))
    with pytest.raises(OTGenError, match="not supported"):
        build_generator("dcgan", DataSpec((1, 20, 20)))
    with pytest.raises(OTGenError, match="bad option"):
        build_generator("dcgan", DataSpec((1, 28, 28)), colour="red")
    with pytest.raises(OTGenError, match="conditional"):
        build_discriminator("mlp", DataSpec((2,)), num_classes=3, pack=2)
    with pytest.raises(OTGenError, match="out_dim=1"):
        build_discriminator("mlp", DataSpec((2,)), num_classes=3, out_dim=4)


def test_normal_init_statistics():
    G = build_generator("dcgan", DataSpec((3, 64, 64)), init="normal")
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 1e-3 and abs(w.mean().item()) < 1e-3
    bn = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    g = torch.cat([m.weight for m in bn])
    assert abs(g.mean().item() - 1.0) < 5e-3


def _normalised_weights(net: nn.Module) -> list[torch.Tensor]:
    """Effective (normalised) weight of every spectrally normalised layer, as a matrix."""
    out = []
    for m in net.modules():
        if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
            out.append(m.weight.detach().reshape(m.weight.shape[0], -1))
    return out


@pytest.mark.parametrize("kind", ["dot-mlp", "dcgan", "resnet"])
def test_spectral_norm_sigma_max_is_one(kind):
    spec = DataSpec((2,)) if kind == "dot-mlp" else DataSpec((1, 28, 28))
    D = build_discriminator(kind, spec, spectral_norm=True, width=8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())  # SNGAN: no BN in D
    x = torch.randn(4, *spec.shape)
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration
            D(x)
    weights = _normalised_weights(D)
    assert len(weights) >= 3
    sigmas = torch.stack([torch.linalg.svdvals(w)[0] for w in weights])
    assert torch.allclose(sigmas, torch.ones_like(sigmas), atol=1e-3), sigmas


def test_mlp_spectral_norm_bounds_lipschitz_constant():
    """DOT eq. (11): an SN MLP with (leaky) ReLU is 1-Lipschitz; check on random pairs."""
    net = MLP(2, 1, (32, 32), "leaky_relu", spectral_norm=True)
    x = torch.randn(64, 2)
    with torch.no_grad():
        for _ in range(30):
            net(x)
    net.eval()
    a, b = torch.randn(500, 2), torch.randn(500, 2)
    with torch.no_grad():
        ratio = (net(a) - net(b)).abs().squeeze(1) / (a - b).norm(dim=1)
    assert ratio.max() <= 1.0 + 1e-3


@pytest.mark.parametrize(("shape", "kind"), [((1, 28, 28), "infogan"), ((3, 32, 32), "dcgan")])
def test_autoencoder_shapes_features_and_warm_start(shape, kind):
    spec = DataSpec(shape)
    ae = build_autoencoder("auto", spec, latent_dim=12, base=8)
    x = torch.rand(3, *shape) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (3, 12)
    assert ae(x).shape == x.shape and ae.decode(z).shape == x.shape
    feats = ae.encoder.features(x)
    assert torch.allclose(feats[-1], z) and len(feats) >= 3
    # The decoder is the generator class of the same kind: its weights load into a GAN's G.
    G = (
        build_generator(kind, spec, latent_dim=12, width=8)
        if kind == "dcgan"
        else (build_generator(kind, spec, latent_dim=12, base=8))
    )
    G.load_state_dict(ae.decoder.state_dict())
    with pytest.raises(OTGenError, match="images"):
        build_autoencoder("auto", DataSpec((2,)), latent_dim=2)


def test_maxout_gradient_goes_to_the_winning_piece():
    layer = Maxout(3, units=2, pieces=4)
    x = torch.randn(5, 3)
    pre = layer.linear(x).view(5, 2, 4)
    out = layer(x)
    torch.testing.assert_close(out, pre.max(-1).values)
    h = torch.randn(5, 2, 4, requires_grad=True)
    layer.linear.forward = lambda _x: h.reshape(5, 8)  # gradient w.r.t. the pre-activations
    layer(x).sum().backward()
    winners = torch.nn.functional.one_hot(h.detach().argmax(-1), 4).float()
    torch.testing.assert_close(h.grad, winners)
