"""DOT on toys with known potentials: closed-form maps, exact Lipschitz constants, frozen nets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.methods.dot import (
    GANPair,
    estimate_lipschitz,
    frozen,
    latent_dot,
    project_gaussian,
    refine,
    target_dot,
)


class Quadratic(nn.Module):
    """D(x) = −s‖x − c‖²/2 (concave): target DOT with cost ‖x − y‖ projects onto a ball."""

    def __init__(self, c: torch.Tensor, s: float) -> None:
        super().__init__()
        self.c = nn.Parameter(c.clone())
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * self.s * ((x - self.c) ** 2).sum(1)


class Norm2(nn.Module):
    def forward(self, x):
        return (x**2).sum(1)


class Shift(nn.Module):
    """Conditional toy G(z|c) = z + offset[c]."""

    def __init__(self, offsets):
        super().__init__()
        self.offsets = nn.Parameter(offsets)

    def forward(self, z, c):
        return z + self.offsets[c]


class ScaledLinear(nn.Module):
    """Conditional toy D(x|c) = scale[c] · w·x, so k_eff(c) = |scale[c]| ‖w‖ (G a shift)."""

    def __init__(self, w, scale):
        super().__init__()
        self.w, self.scale = nn.Parameter(w), nn.Parameter(scale)

    def forward(self, x, c):
        return self.scale[c] * (x @ self.w)


def identity_pair(D: nn.Module, dim: int = 2, prior: str = "normal") -> GANPair:
    return GANPair.from_modules(nn.Identity(), D, latent_shape=dim, prior=prior, device="cpu")


def ball_projection(y: torch.Tensor, c: torch.Tensor, r: float) -> torch.Tensor:
    d = y - c
    norm = d.norm(dim=1, keepdim=True)
    return torch.where(norm > r, c + r * d / norm, y)


def test_target_dot_projects_onto_the_ball_of_a_quadratic_potential():
    # argmin_x ‖x − y‖ + s‖x − c‖²/(2K): stationarity gives x − c = −(K/s)·unit(x − y), so
    # the map is the projection onto the ball B(c, K/s) (points inside do not move).
    c, s, K = torch.tensor([0.5, -0.25]), 4.0, 2.0
    y = c + torch.randn(300, 2).clamp(-2, 2)  # Adam moves ~lr per step: 300 steps reach 3
    res = target_dot(identity_pair(Quadratic(c, s)), y, K, steps=300, clip=None)
    want = ball_projection(y, c, K / s)
    err = (res.x - want).norm(dim=1)
    # Adam (β1 = 0) keeps hopping ~lr around the kink of ‖x − y + δ‖ for points that stay.
    assert err.median() < 0.01 and err.max() < 0.05, err.max()
    assert res.mode == "target" and res.z is None and torch.equal(res.x0, y)
    # The naive baseline ignores the transport cost and collapses everything onto c.
    naive = target_dot(identity_pair(Quadratic(c, s)), y, K, naive=True, steps=300, clip=None)
    assert (naive.x - c).norm(dim=1).max() < 0.03
    assert naive.displacement.mean() > res.displacement.mean() + 0.2


def test_target_dot_objective_decreases_and_clip_box_holds():
    c = torch.tensor([3.0, 3.0])  # optimum outside the box: clipping must stop the samples
    y = torch.rand(64, 2) - 0.5
    res = target_dot(identity_pair(Quadratic(c, 1.0)), y, 0.1, steps=250, clip=(-1, 1), track=True)
    assert res.objective.shape == (251,)
    assert res.objective[-1] < res.objective[0] - 1.0
    assert res.x.min() >= -1 and res.x.max() <= 1
    assert torch.allclose(res.x, torch.ones_like(res.x), atol=0.02)


def test_batching_gives_the_same_samples():
    y = torch.randn(50, 2)
    pair = identity_pair(Quadratic(torch.zeros(2), 2.0))
    a = target_dot(pair, y, 1.0, steps=30, track=True)
    b = target_dot(pair, y, 1.0, steps=30, batch_size=7, track=True)
    assert torch.allclose(a.x, b.x, atol=1e-6)
    assert torch.allclose(a.objective, b.objective, atol=1e-5)


def test_keff_of_a_linear_critic_is_its_weight_norm():
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[3.0, -4.0]]))
    est = estimate_lipschitz(identity_pair(D), "target", seed=1)
    assert est.value.shape == () and est.n_pairs == 100 and est.n_repeats == 10
    assert float(est) == pytest.approx(5.0, rel=1e-3)
    assert float(est) <= 5.0 + 1e-5  # a max of ratios can never exceed the true constant
    # Latent k_eff (eq. 21) through a linear G(z) = Az is ‖Aᵀw‖.
    G = nn.Linear(3, 2, bias=False)
    pair = GANPair.from_modules(G, D, latent_shape=3, device="cpu")
    k = estimate_lipschitz(pair, "latent", n_pairs=300, seed=2)
    want = (G.weight.T @ D.weight[0]).norm().item()
    assert float(k) == pytest.approx(want, rel=2e-2) and float(k) <= want + 1e-4


def test_keff_is_seeded_and_leaves_the_global_rng_alone():
    D = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    pair = identity_pair(D)
    state = torch.get_rng_state()
    a = estimate_lipschitz(pair, seed=3, n_repeats=3)
    b = estimate_lipschitz(pair, seed=3, n_repeats=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.value, b.value)
    assert float(estimate_lipschitz(pair, seed=4, n_repeats=3)) != float(a)


def test_per_class_keff_shape_and_values():
    C = 4
    G = Shift(torch.randn(C, 2))
    D = ScaledLinear(torch.tensor([0.6, 0.8]), torch.tensor([1.0, -2.0, 0.5, 3.0]))
    pair = GANPair.from_modules(G, D, latent_shape=2, num_classes=C, device="cpu")
    est = estimate_lipschitz(pair, "latent", n_pairs=50, num_classes=C, n_repeats=2)
    assert est.value.shape == (C,) and est.std.shape == (C,)
    assert torch.allclose(est.value, torch.tensor([1.0, 2.0, 0.5, 3.0]), rtol=5e-3)
    with pytest.raises(OTGenError, match="num_classes"):
        estimate_lipschitz(pair, "latent")
    with pytest.raises(OTGenError, match="per-class"):
        float(est)
    # Algorithm 3: each sample uses the k of its own class.
    labels = torch.tensor([0, 1, 2, 3, 3, 0])
    res = latent_dot(pair, torch.randn(6, 2), est, labels=labels, steps=2)
    assert torch.allclose(res.K, est.value[labels])


def test_gaussian_projection_keeps_the_latent_on_its_sphere():
    dim = 64
    z = torch.randn(32, dim)
    g = torch.randn(32, dim)
    gp = project_gaussian(g, z, "tangent")
    assert (gp * z).sum(1).abs().max() < 1e-4  # no radial component left
    # D(G(z)) = ‖z‖² pushes every latent outwards; the projection cancels that push.
    pair = identity_pair(Norm2(), dim)
    kept = latent_dot(pair, z, 1.0, steps=20)
    free = latent_dot(pair, z, 1.0, steps=20, prior="none")
    ratio = kept.z.norm(dim=1) / z.norm(dim=1)
    assert (ratio - 1).abs().max() < 0.01
    assert (kept.z.norm(dim=1) / math.sqrt(dim) - 1).abs().max() < 0.5
    assert (free.z.norm(dim=1) / z.norm(dim=1)).min() > 1.3  # (1 + 2·0.01)^20 ≈ 1.49
    # The formula as printed (divide by √dim) does not remove the radial part.
    gr = project_gaussian(g, z, "reference")
    assert (gr * z).sum(1).abs().mean() > 1.0


def test_uniform_prior_is_clipped_to_the_cube():
    D = nn.Linear(8, 1)
    with torch.no_grad():
        D.weight.fill_(50.0)
    pair = identity_pair(D, 8, prior="uniform")
    z = torch.rand(40, 8) * 2 - 1
    res = latent_dot(pair, z, 1.0, steps=10, lr=0.1)
    assert res.z.min() >= -1 and res.z.max() <= 1
    assert (res.z == 1).float().mean() > 0.9  # the critic pushes every coordinate to +1
    assert torch.equal(res.x, res.z)  # G = identity: refined samples are G(refined latents)


def test_nets_are_frozen_unchanged_and_restored():
    G = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    D[0].weight.requires_grad_(False)  # a mixed state must come back exactly
    G.train()
    D.eval()
    before = {k: v.clone() for k, v in [*G.state_dict().items(), *D.state_dict().items()]}
    flags = [p.requires_grad for p in [*G.parameters(), *D.parameters()]]
    pair = GANPair.from_modules(G, D, latent_shape=4, device="cpu")
    refine(pair, 20, "latent", steps=5, n_repeats=2)
    refine(pair, 20, "target", steps=5, n_repeats=2)
    after = {k: v for k, v in [*G.state_dict().items(), *D.state_dict().items()]}
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm stats
    assert [p.requires_grad for p in [*G.parameters(), *D.parameters()]] == flags
    assert all(p.grad is None for p in [*G.parameters(), *D.parameters()])
    assert G.training and G[1].training and not D.training


def test_frozen_restores_on_error():
    net = nn.Linear(2, 2)
    with pytest.raises(RuntimeError), frozen(net, eval_mode=True):
        assert not net.weight.requires_grad and not net.training
        raise RuntimeError("boom")
    assert net.weight.requires_grad and net.training


def test_refine_keff_shortcut_and_seed():
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    pair = GANPair.from_modules(nn.Linear(3, 2), D, latent_shape=3, device="cpu")
    a = refine(pair, 10, "latent", keff=1.0, steps=3, seed=5)
    b = refine(pair, 10, "latent", keff=1.0, steps=3, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.K, torch.ones(10))
    assert a.z.shape == (10, 3) and a.x.shape == (10, 2)
    n = refine(pair, 10, "naive", keff=1.0, steps=3, seed=5)
    assert n.mode == "naive" and torch.equal(n.x0, a.x0)  # same seed, same starting samples


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: target_dot(p, torch.full((3, 2), float("nan")), 1.0), "NaN"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 0.0), "positive"),
        (lambda p: target_dot(p, torch.zeros(3, 2), -1.0), "positive"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 1.0, steps=-1), "steps"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 1.0, lr=0.0), "lr"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 1.0, optimizer="rmsprop"), "optimizer"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 1.0, clip=(1, -1)), "clip"),
        (lambda p: target_dot(p, torch.zeros(0, 2), 1.0), "empty|non-empty"),
        (lambda p: target_dot(p, torch.zeros(3, 2), torch.ones(2)), "per-class"),
        (lambda p: target_dot(p, torch.zeros(3, 2), 1.0, labels=torch.zeros(3)), "unconditional"),
        (lambda p: latent_dot(p, torch.zeros(3, 2), 1.0, prior="cauchy"), "prior"),
        (lambda p: latent_dot(p, torch.zeros(3, 2), 1.0, projection="x"), "projection"),
        (lambda p: refine(p, 3, "sideways"), "mode"),
        (lambda p: refine(p, 3, keff="fast"), "keff"),
        (lambda p: estimate_lipschitz(p, "middle"), "space"),
    ],
)
def test_bad_input_raises(call, match):
    pair = identity_pair(nn.Linear(2, 1))
    with pytest.raises(OTGenError, match=match):
        call(pair)


def test_conditional_requires_labels_in_range():
    pair = GANPair.from_modules(
        Shift(torch.zeros(3, 2)),
        ScaledLinear(torch.ones(2), torch.ones(3)),
        latent_shape=2,
        num_classes=3,
        device="cpu",
    )
    with pytest.raises(OTGenError, match="labels"):
        latent_dot(pair, torch.zeros(4, 2), 1.0)
    with pytest.raises(OTGenError, match="labels"):
        latent_dot(pair, torch.zeros(4, 2), 1.0, labels=torch.tensor([0, 1, 2, 3]))
    res = refine(pair, 6, "latent", keff=1.0, steps=1)  # balanced labels by default
    assert res.x.shape == (6, 2)


def test_pair_from_a_trained_gan_method():
    from otgen.data.spec import DataSpec
    from otgen.methods import get_method

    cls = get_method("wgan-gp")
    spec = DataSpec((2,), num_classes=3)
    m = cls(cls.Config(arch="mlp", latent_dim=4, prior="uniform"), spec, torch.device("cpu"))
    pair = GANPair.from_method(m)
    assert pair.prior == "uniform" and pair.num_classes is None
    res = latent_dot(pair, torch.rand(8, 4) * 2 - 1, 1.0, steps=3, lr=0.5)
    assert res.z.abs().max() <= 1  # the uniform prior of the method is respected
    cond = cls(cls.Config(arch="mlp", conditional=True), spec, torch.device("cpu"))
    cpair = GANPair.from_method(cond)
    assert cpair.prior == "normal" and cpair.num_classes == 3
    est = estimate_lipschitz(cpair, "latent", num_classes=3, n_pairs=5, n_repeats=2)
    assert est.value.shape == (3,)
    # Table 2: G of one GAN with the discriminator of another.
    D2 = nn.Linear(2, 1)
    swapped = GANPair.from_method(m, D=D2)
    x = torch.randn(5, 2)
    assert swapped.modules == (m.generator, D2)
    assert torch.equal(swapped.critic(x, None), D2(x))
