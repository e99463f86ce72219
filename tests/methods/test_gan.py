"""GAN losses (closed forms), gradient penalty, training steps, presets and configs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods import get_method
from otgen.methods._common import adam
from otgen.methods.gan import (
    GAN,
    LOSSES,
    GANConfig,
    PacGANConfig,
    WGANGPConfig,
    d_loss,
    g_loss,
    gradient_penalty,
)
from otgen.nets.layers import Packing

CPU = torch.device("cpu")
POINTS = DataSpec((2,))


def sp(u: float) -> float:
    return math.log1p(math.exp(u))


REAL = torch.tensor([[0.5], [2.0]])  # (N, 1), as the nets return
FAKE = torch.tensor([[-2.0], [0.5]])


@pytest.mark.parametrize(
    ("loss", "d_expected", "g_expected"),
    [
        # DOT eq. (5): f(u) = log(1 + e^u); V_D = E f(-D(x)) + E f(D(y)); g(u) = f(-u).
        ("ns", (sp(-0.5) + sp(-2.0)) / 2 + (sp(-2.0) + sp(0.5)) / 2, (sp(2.0) + sp(-0.5)) / 2),
        # Minimax: G minimises E log(1 - σ(D(y))) = -E softplus(D(y)).
        (
            "minimax",
            (sp(-0.5) + sp(-2.0)) / 2 + (sp(-2.0) + sp(0.5)) / 2,
            (math.log(1 - 1 / (1 + math.exp(2.0))) + math.log(1 - 1 / (1 + math.exp(-0.5)))) / 2,
        ),
        # Eq. (6): max(0, 1 - D(x)) = [0.5, 0], max(0, 1 + D(y)) = [0, 1.5]; g = -D(y).
        ("hinge", 0.25 + 0.75, 0.75),
        # Eq. (7): E D(y) - E D(x) = -0.75 - 1.25.
        ("wgan", -0.75 - 1.25, 0.75),
        ("wgan-gp", -2.0, 0.75),
        # LSGAN: ½E(D(x) - 1)² + ½E D(y)² = ½(0.25 + 1)/2 + ½(4 + 0.25)/2; ½E(D(y) - 1)².
        ("lsgan", 0.3125 + 1.0625, 0.5 * (9.0 + 0.25) / 2),
    ],
)
def test_losses_closed_forms(loss, d_expected, g_expected):
    assert d_loss(loss, REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert g_loss(loss, FAKE).item() == pytest.approx(g_expected, rel=1e-6)


def test_logistic_losses_are_finite_for_huge_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_loss("ns", big, -big))
    assert g_loss("ns", -big).item() == pytest.approx(1e4 / 2)  # softplus(1e4) = 1e4
    assert torch.isfinite(g_loss("minimax", big))


def test_unknown_loss_raises():
    with pytest.raises(OTGenError, match="loss"):
        d_loss("kl", REAL, FAKE)


def test_gradient_penalty_on_linear_critic():
    """D(x) = <w, x> has ‖∇D‖ = ‖w‖ everywhere, so the penalty is (‖w‖ - 1)²."""
    D = nn.Linear(3, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[2.0, 2.0, 1.0]]))  # ‖w‖ = 3
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    gp = gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx(4.0, rel=1e-6)
    gp.backward()  # differentiable in D's weights: d/dw (‖w‖ - 1)² = 2(‖w‖ - 1) w / ‖w‖
    assert torch.allclose(D.weight.grad, 2 * 2 * D.weight.detach() / 3)
    # Packed critic: the norm is over the packed input (6 numbers), still ‖w‖ of 6 weights.
    P = nn.Sequential(Packing(2), nn.Linear(6, 1, bias=False))
    with torch.no_grad():
        P[1].weight.fill_(0.5)  # ‖w‖ = sqrt(6 * 0.25)
    assert gradient_penalty(P, real, fake).item() == pytest.approx((1.5**0.5 - 1) ** 2, rel=1e-6)


def test_gradient_penalty_shape_mismatch():
    with pytest.raises(OTGenError, match="differ in shape"):
        gradient_penalty(nn.Linear(2, 1), torch.randn(4, 2), torch.randn(3, 2))


def test_wgan_gp_critic_has_unit_gradient_at_interpolates():
    """After a short WGAN-GP critic training between two toy distributions the critic's
    gradient norm at random interpolates is close to 1 (Gulrajani et al., Prop. 1)."""
    torch.manual_seed(0)
    cfg = WGANGPConfig(arch="mlp", width=32, lr_d=2e-3, n_critic=10**9)  # never update G
    gan = GAN(cfg, POINTS, CPU)
    D = gan.nets["D"]
    x = torch.randn(256, 2, requires_grad=True)
    (grad0,) = torch.autograd.grad(D(x).sum(), x)
    assert grad0.norm(dim=1).mean() < 0.2  # an untrained critic is far from 1-Lipschitz-tight
    for step in range(60):
        real = torch.randn(64, 2) * 0.1 + torch.tensor([2.0, 0.0])
        gan.train_step(real, None, step)
    real = torch.randn(512, 2) * 0.1 + torch.tensor([2.0, 0.0])
    with torch.no_grad():
        fake = gan.generate(gan.sample_latent(512))
    t = torch.rand(512, 1)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    norms = grad.norm(dim=1)
    assert norms.mean().item() == pytest.approx(1.0, abs=0.15)
    assert gradient_penalty(D, real, fake).item() < 0.05


def _params(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in net.parameters()])


@pytest.mark.parametrize("loss", LOSSES)
def test_one_step_of_each_loss_updates_both_nets(loss):
    gan = GAN(GANConfig(loss=loss, arch="mlp", width=16), POINTS, CPU)
    g0, d0 = _params(gan.nets["G"]), _params(gan.nets["D"])
    logs = gan.train_step(torch.randn(32, 2), None, 0)
    assert {"d_loss", "g_loss", "d_out_real", "d_out_fake"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    assert not torch.equal(g0, _params(gan.nets["G"]))
    assert not torch.equal(d0, _params(gan.nets["D"]))
    assert ("gp" in logs) == (loss == "wgan-gp")


@pytest.mark.parametrize("name", ["gan", "dcgan", "wgan", "wgan-gp", "sngan", "lsgan", "pacgan"])
def test_presets_registered_and_step(name):
    cls = get_method(name)
    cfg = cls.Config(width=16) if name != "pacgan" else cls.Config(width=16, pack=2)
    gan = cls(cfg, POINTS, CPU)
    assert gan.name == name and isinstance(gan.cfg, GANConfig)
    for step in range(cfg.n_critic):
        logs = gan.train_step(torch.randn(16, 2), None, step)
    assert "g_loss" in logs  # the n_critic-th call updates G
    assert gan.sample(5).shape == (5, 2)


def test_preset_defaults():
    assert get_method("wgan").Config().clip == 0.01
    assert get_method("wgan").Config().optimizer == "rmsprop"
    w = get_method("wgan-gp").Config()
    assert (w.loss, w.gp_weight, w.n_critic, w.lr_d, w.beta1, w.beta2) == (
        "wgan-gp",
        10.0,
        5,
        1e-4,
        0.5,
        0.9,
    )
    assert get_method("sngan").Config().spectral_norm is True
    p = PacGANConfig()
    assert (p.arch, p.pack, p.lr_g, p.beta1, p.init) == ("pacgan", 4, 1e-4, 0.8, "normal")


def test_n_critic_updates_generator_every_kth_step():
    gan = GAN(GANConfig(arch="mlp", width=8, n_critic=3), POINTS, CPU)
    g0 = _params(gan.nets["G"])
    logs = [gan.train_step(torch.randn(8, 2), None, s) for s in range(2)]
    assert all("g_loss" not in entry for entry in logs)
    assert torch.equal(g0, _params(gan.nets["G"]))
    g_loss_3 = gan.train_step(torch.randn(8, 2), None, 2)["g_loss"]
    g1 = _params(gan.nets["G"])
    assert not torch.equal(g0, g1)
    # Critic-only steps keep G fixed and repeat the latest generator loss.
    assert gan.train_step(torch.randn(8, 2), None, 3)["g_loss"] == g_loss_3
    assert torch.equal(g1, _params(gan.nets["G"]))


def test_weight_clipping():
    gan = get_method("wgan")(get_method("wgan").Config(width=8, lr_d=0.5), POINTS, CPU)
    gan.train_step(torch.randn(8, 2), None, 0)
    assert max(p.abs().max().item() for p in gan.nets["D"].parameters()) <= 0.01 + 1e-7


def test_packing_drops_remainder_and_scores_packs():
    gan = get_method("pacgan")(PacGANConfig(width=8, pack=4), POINTS, CPU)
    assert gan.nets["D"](torch.randn(8, 2)).shape == (2, 1)
    logs = gan.train_step(torch.randn(10, 2), None, 0)  # uses 8 samples = 2 packs
    assert math.isfinite(logs["d_loss"])
    with pytest.raises(OTGenError, match="smaller than pack"):
        gan.train_step(torch.randn(3, 2), None, 1)


def test_latents_prior_and_generate():
    gan = GAN(GANConfig(arch="dot-mlp", width=8, prior="uniform"), POINTS, CPU)
    z = gan.sample_latent(1000)
    assert z.shape == (1000, 2) and z.min() >= -1 and z.max() <= 1 and z.min() < -0.9
    assert gan.prior == "uniform" and gan.latent_dim == 2
    z.requires_grad_(True)
    gan.generate(z).sum().backward()  # differentiable in z (latent DOT)
    assert z.grad is not None and z.grad.abs().sum() > 0
    normal = GAN(GANConfig(arch="mlp", width=8, latent_dim=5), POINTS, CPU)
    assert normal.sample_latent(4).shape == (4, 5)


def test_sampling_is_seeded_and_keeps_training_mode():
    gan = GAN(GANConfig(arch="pacgan", width=8), POINTS, CPU)  # BatchNorm in G
    torch.manual_seed(3)
    a = gan.sample(6)
    torch.manual_seed(3)
    b = gan.sample(6)
    assert torch.equal(a, b)
    assert gan.nets["G"].training


def test_conditional_gan_points_and_images():
    spec = DataSpec((2,), num_classes=3)
    gan = GAN(GANConfig(arch="mlp", width=8, conditional=True, loss="hinge"), spec, CPU)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    logs = gan.train_step(torch.randn(6, 2), y, 0)
    assert math.isfinite(logs["g_loss"])
    assert gan.sample(4, torch.tensor([2, 2, 1, 0])).shape == (4, 2)
    assert gan.sample(4).shape == (4, 2)  # random labels
    with pytest.raises(OTGenError, match="no labels"):
        gan.train_step(torch.randn(6, 2), None, 1)
    img = DataSpec((1, 28, 28), num_classes=10)
    cgan = GAN(GANConfig(arch="dcgan", width=4, conditional=True, latent_dim=8), img, CPU)
    cgan.train_step(torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([1, 2, 3, 4]), 0)
    assert cgan.sample(3, torch.tensor([0, 5, 9])).shape == (3, 1, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "kl"}, "loss"),
        ({"pack": 0}, "pack"),
        ({"n_critic": 0}, "n_critic"),
        ({"prior": "cauchy"}, "prior"),
        ({"beta1": 1.0}, "beta1"),
        ({"lr_d": -1.0}, "lr_d"),
        ({"arch": "vgg"}, "arch"),
        ({"clip": 0.0}, "clip"),
        ({"conditional": True, "pack": 2}, "pack"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(OTGenError, match=match):
        GANConfig(**kwargs)


def test_bad_combinations_raise():
    with pytest.raises(OTGenError, match="num_classes"):
        GAN(GANConfig(conditional=True), POINTS, CPU)
    with pytest.raises(OTGenError, match="needs images"):
        GAN(GANConfig(arch="dcgan"), POINTS, CPU)


def test_generator_step_skips_discriminator_weight_gradients():
    # G's update back-propagates through D but needs none of D's weight gradients (they were
    # computed and thrown away before: a third of D's backward GEMMs per step).
    gan = GAN(GANConfig(arch="mlp", width=8), POINTS, CPU)
    G, D = gan.nets["G"], gan.nets["D"]
    gan._generator_step(G, D, 8, None)
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None for p in G.parameters())
    assert all(p.requires_grad for p in gan.nets["D"].parameters())


def test_fused_adam_matches_the_per_tensor_loop_to_rounding():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [
        torch.optim.Adam(nets[0].parameters(), lr=1e-2, betas=(0.8, 0.999), foreach=False),
        adam(nets[1].parameters(), 1e-2, (0.8, 0.999)),
    ]
    x = torch.randn(16, 3)
    for _ in range(5):
        for net, opt in zip(nets, opts, strict=True):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    torch.testing.assert_close(_params(nets[0]), _params(nets[1]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["pacgan", "gan"])
def test_scoring_real_and_fake_in_one_call_is_the_two_call_update(preset):
    # A per-sample D scores [real; fake] in one call: the critic step must be the one the two
    # separate calls give (same losses, same weights after the step, to float rounding).
    spec, x = POINTS, torch.randn(40, 2)
    gans = []
    for joint in (True, False):
        torch.manual_seed(3)
        gan = get_method(preset)(None if preset == "pacgan" else GANConfig(arch="mlp", width=16),
                                 spec, CPU)  # fmt: skip
        assert gan._joint_d
        gan._joint_d = joint
        torch.manual_seed(4)
        logs = gan._critic_step(gan.nets["G"], gan.nets["D"], x, None)
        gans.append((gan, logs))
    (a, la), (b, lb) = gans
    assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=1e-5)
    torch.testing.assert_close(_params(a.nets["D"]), _params(b.nets["D"]), rtol=1e-5, atol=1e-6)


def test_only_a_per_sample_discriminator_is_called_once():
    from otgen.nets.layers import scores_each_sample

    assert GAN(GANConfig(arch="mlp"), POINTS, CPU)._joint_d
    assert not GAN(GANConfig(arch="mlp", spectral_norm=True), POINTS, CPU)._joint_d  # power it.
    images = DataSpec((1, 28, 28))
    assert not get_method("dcgan")(None, images, CPU)._joint_d  # batch norm in D
    assert not scores_each_sample(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    assert not scores_each_sample(nn.Sequential(nn.Linear(2, 3), nn.Dropout()))  # unknown: no

    class MinibatchLinear(nn.Linear):  # a subclass may add a cross-sample term: exact types only
        pass

    assert not scores_each_sample(nn.Sequential(MinibatchLinear(2, 3)))
    hooked = nn.utils.spectral_norm(nn.Linear(2, 3))  # the old hook-based spectral norm
    assert not scores_each_sample(nn.Sequential(hooked))
    D = get_method("pacgan")(None, POINTS, CPU).nets["D"]
    a, b = torch.randn(8, 2), torch.randn(8, 2)
    torch.testing.assert_close(D(torch.cat([a, b])), torch.cat([D(a), D(b)]))


def test_one_call_needs_equal_batches_of_whole_packs():
    gan = get_method("pacgan")(None, POINTS, CPU)
    D = gan.nets["D"]
    with pytest.raises(OTGenError, match="whole packs of 4"):
        gan._d_real_fake(D, torch.randn(6, 2), torch.randn(6, 2), None)
    with pytest.raises(OTGenError, match="equal batches"):
        gan._d_real_fake(D, torch.randn(8, 2), torch.randn(4, 2), None)


@pytest.mark.parametrize("arch", ["dcgan", "infogan"])
def test_wgan_gp_critic_scores_each_sample_alone(arch):
    # The penalty constrains the gradient of one sample's score: no batch norm in the critic
    # (Gulrajani et al. 2017, §4), so a score does not depend on the rest of the batch.
    images = DataSpec((1, 28, 28))
    gan = get_method("wgan-gp")(WGANGPConfig(arch=arch, width=8), images, CPU)
    D = gan.nets["D"].train()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    a, b = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(D(torch.cat([a, b]))[:4], D(a))
    assert gan._joint_d
    dcgan_d = get_method("dcgan")(GANConfig(arch=arch, width=8), images, CPU).nets["D"]
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in dcgan_d.modules())
