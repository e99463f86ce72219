import pytest
import torch

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods import get_method
from otgen.methods.mbgan import (
    MBGAN,
    ConditionalMBGAN,
    Config,
    d_loss,
    distance,
    g_loss,
    margin,
    one_hot_planes,
    positive_index,
)

CPU = torch.device("cpu")
IMAGES = DataSpec(shape=(1, 28, 28), num_classes=10)


def _method(cls=MBGAN, **kw):
    return cls(cls.Config(width=8, K=16, **kw), IMAGES, CPU)


def _images(n):
    return torch.rand(n, 1, 28, 28) * 2 - 1


# -- eqs. (1)-(4) on hand-made embeddings -------------------------------------------------------
def test_distance_and_margin_by_hand():
    assert distance(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])).item() == (
        pytest.approx(5.0)
    )
    x_j, fake = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    fake[1] = -0.5  # |0 - (-0.5)| = 0.5 per pixel
    assert margin(x_j, fake, 20.0).tolist() == pytest.approx([80.0, 40.0])  # alpha * raw L1
    assert margin(x_j, fake, 20.0, "mean").tolist() == pytest.approx([20.0, 10.0])  # per pixel
    assert Config().margin_norm == "sum"  # the paper's ||.||_1 by default
    with pytest.raises(OTGenError):
        margin(x_j, fake, 1.0, "max")


def test_discriminator_hinge_active_and_inactive():
    e_i = torch.zeros(1, 2)
    e_j = torch.tensor([[1.0, 0.0]])  # d(x_i, x_j) = 1
    e_fake = torch.tensor([[10.0, 0.0]], requires_grad=True)  # d(x_i, G(z)) = 10
    inactive = d_loss(e_i, e_j, e_fake, torch.tensor([2.0]))  # 2 + 1 - 10 < 0
    inactive.backward()
    assert inactive.item() == 0.0 and not e_fake.grad.any()
    active = d_loss(e_i, e_j, e_fake, torch.tensor([12.0]))  # 12 + 1 - 10 = 3
    assert active.item() == pytest.approx(3.0)
    (grad,) = torch.autograd.grad(active, e_fake)
    assert grad[0].tolist() == pytest.approx([-1.0, 0.0])  # pushes G(z) away from x_i
    assert g_loss(e_j, e_fake).item() == pytest.approx(9.0)  # d(x_j, G(z))


def test_positive_index():
    assert positive_index(4).tolist() == [3, 0, 1, 2]  # a roll: every sample has a partner
    labels = torch.tensor([0, 1, 0, 1, 1, 2])
    pos = positive_index(6, labels)
    assert torch.equal(labels[pos], labels)  # same class
    assert all(pos[i] != i for i in range(5))  # a different sample unless alone (class 2)
    assert pos[5] == 5


def test_one_hot_planes():
    planes = one_hot_planes(torch.tensor([2, 0]), 3, torch.zeros(2, 1, 4, 4))
    assert planes.shape == (2, 3, 4, 4)
    assert planes[0, 2].eq(1).all() and planes[0, :2].eq(0).all() and planes[1, 0].eq(1).all()


# -- Algorithm 1 ------------------------------------------------------------------------------
def test_nets_and_shapes():
    m = MBGAN(Config(width=8), IMAGES, CPU)
    assert m.embed(_images(3)).shape == (3, 500)  # K = 500 linear outputs
    assert m.sample(2).shape == (2, 1, 28, 28)
    assert m.nets["D"].blocks[0][0].kernel_size == (5, 5)  # Table 2: 5c2s


@pytest.mark.parametrize(
    ("prior", "low", "high", "mean"),
    [("uniform", -1.0, 1.0, 0.0), ("uniform01", 0.0, 1.0, 0.5), ("normal", -10.0, 10.0, 0.0)],
)
def test_latent_priors(prior, low, high, mean):
    m = _method(prior=prior)
    torch.manual_seed(0)
    z = m.sample_latent(4000)
    assert m.prior == prior and z.shape == (4000, 100)
    assert low <= z.min() and z.max() <= high and z.mean().item() == pytest.approx(mean, abs=0.01)
    std = {"uniform": 2 / 12**0.5, "uniform01": 1 / 12**0.5, "normal": 1.0}[prior]
    assert z.std().item() == pytest.approx(std, rel=0.02)


def test_uncentred_prior_gives_a_shared_pattern_that_generator_batchnorm_keeps():
    """The root cause of the U(0, 1) collapse (docs/mbgan.md): DCGAN's bias-free projection
    maps E[z] = 1/2 to a 7x7 pattern shared by all samples; the per-channel BatchNorm after it
    only removes each channel's mean over positions, so the pattern survives."""

    def shared_over_spread(prior):
        torch.manual_seed(0)
        m = _method(prior=prior)
        G = m.nets["G"]
        with torch.no_grad():
            h = G.project(m.sample_latent(512)).view(512, G.c0, G.bottom, G.bottom)
            h = G.norms[0](h)  # train mode: batch statistics
        shared = h.mean(0)
        return (shared.pow(2).mean() / (h - shared).pow(2).mean()).sqrt().item()

    assert shared_over_spread("uniform01") > 1.0  # the common part dominates
    assert shared_over_spread("uniform") < 0.1
    assert shared_over_spread("normal") < 0.1


def test_gradients_flow_only_where_the_algorithm_says():
    m = _method()
    G, D = m.nets["G"], m.nets["D"]
    g_before = [p.detach().clone() for p in G.parameters()]
    m.discriminator_step(_images(8), positive_index(8), m.sample_latent(8))
    assert all(p.grad is None for p in G.parameters())  # G(z) and the margin are constants
    assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters(), strict=True))
    d_before = [p.detach().clone() for p in D.parameters()]
    D.zero_grad(set_to_none=True)
    m.generator_step(_images(8), m.sample_latent(8))
    assert all(p.grad is None for p in D.parameters())
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())


def test_one_generator_step_lowers_the_generator_loss_on_a_fixed_batch():
    m = _method(lr_g=1e-4)
    x_j, z = _images(16), torch.rand(16, 100)
    before = m.generator_loss(x_j, z).item()
    logs = m.generator_step(x_j, z)
    assert logs["g_loss"] == pytest.approx(before, rel=1e-5) and logs["g_grad_norm"] > 0
    assert m.generator_loss(x_j, z).item() < before


def test_train_step_runs_n_generator_steps():
    m = _method(g_steps=3)
    calls = []
    step = m.generator_step
    m.generator_step = lambda *a: calls.append(1) or step(*a)
    logs = m.train_step(_images(6), None, 0)
    assert len(calls) == 3
    assert 0.0 <= logs["hinge_active"] <= 1.0
    for key in (
        "d_loss",
        "dist_pos",
        "dist_fake",
        "margin",
        "hinge_active",
        "g_loss",
        "g_grad_norm",
    ):
        assert key in logs


def test_conditional_shapes_and_labels():
    m = _method(ConditionalMBGAN)
    assert get_method("mbgan-cond") is ConditionalMBGAN and m.conditional
    labels = torch.tensor([0, 3, 9])
    assert m.generate(torch.rand(3, 100), labels).shape == (3, 1, 28, 28)
    assert m.embed(_images(3), labels).shape == (3, 16)
    assert m.nets["D"].blocks[0][0].in_channels == 1 + 10  # image + one-hot planes
    assert m.sample(3, labels).shape == (3, 1, 28, 28)
    assert m.sample(4).shape == (4, 1, 28, 28)  # random labels
    logs = m.train_step(_images(8), torch.tensor([0, 1, 0, 1, 2, 2, 3, 3]), 0)
    assert "g_loss" in logs
    with pytest.raises(OTGenError, match="labels"):
        m.train_step(_images(4), None, 0)
    with pytest.raises(OTGenError, match=r"labels must be in \[0, 10\)"):
        m.generate(torch.rand(1, 100), torch.tensor([10]))
    with pytest.raises(OTGenError, match="labelled data"):
        ConditionalMBGAN(None, DataSpec(shape=(1, 28, 28)), CPU)


def test_conditional_embedding_depends_on_the_label():
    m = _method(ConditionalMBGAN)
    m.nets["D"].eval()
    x = _images(1).repeat(2, 1, 1, 1)
    e = m.embed(x, torch.tensor([0, 1]))
    assert not torch.allclose(e[0], e[1])


@pytest.mark.parametrize(
    "kw",
    [{"K": 0}, {"alpha": -1.0}, {"margin_norm": "max"}, {"kernel": 3}, {"g_steps": 0},
     {"lr_d": 0.0}, {"beta1": 1.0}, {"prior": "gaussian"}],
)  # fmt: skip
def test_bad_config_raises(kw):
    with pytest.raises(OTGenError):
        Config(**kw)


def test_points_and_tiny_batches_are_rejected():
    with pytest.raises(OTGenError, match="image data"):
        MBGAN(Config(), DataSpec(shape=(2,)), CPU)
    with pytest.raises(OTGenError, match="at least 2"):
        _method().train_step(_images(1), None, 0)


def test_latent_dot_keeps_an_mbgan_latent_in_its_unit_cube():
    """One prior vocabulary: DOT reads MBGAN's "uniform01" and clips z to [0, 1]^d."""
    from otgen.methods.dot import GANPair, latent_dot

    class Push(torch.nn.Module):  # a steep critic: its gradient drives z far from z_y
        def forward(self, x):
            return 1e4 * x.flatten(1).sum(1)

    torch.manual_seed(0)
    m = _method(prior="uniform01", latent_dim=6)
    assert GANPair.from_method(m).prior == "uniform01"
    pair = GANPair.from_method(m, D=Push())
    z = m.sample_latent(5)
    assert z.min() >= 0 and z.max() <= 1
    res = latent_dot(pair, z, 1.0, steps=4, lr=1.0)
    assert res.z.min() >= 0 and res.z.max() <= 1
    free = latent_dot(pair, z, 1.0, steps=4, lr=1.0, prior="none")
    assert free.z.min() < 0 or free.z.max() > 1
