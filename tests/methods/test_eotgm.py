import pytest
import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.data.toy import sample
from otgen.errors import OTGenError
from otgen.methods import eotgm as eotgm_mod
from otgen.methods import get_method
from otgen.methods.eotgm import EOTGM, Config
from otgen.ot.sinkhorn import sinkhorn

CPU = torch.device("cpu")
POINTS = DataSpec(shape=(2,))


def _assert_close(actual, expected, *, rtol=1.3e-6, atol=1e-5):
    # torch.allclose, not torch.testing (whose first call costs seconds of lazy imports)
    err = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, rtol=rtol, atol=float(atol)), f"max error {err}"


def _fixed_z(method, z):
    method._latent = lambda n: z  # the step then uses a known latent batch


@pytest.mark.parametrize("update", ["dual", "plan"])
def test_one_step_lowers_the_loss_on_a_fixed_batch(update):
    method = EOTGM(Config(update=update, hidden=(64, 64)), POINTS, CPU)
    x = sample("gauss4", 128, seed=0)
    z = torch.randn(128, 2)
    _fixed_z(method, z)
    before, _ = method.loss(x, z)
    logs = method.train_step(x, None, 0)
    after, _ = method.loss(x, z)
    assert logs["loss"] == pytest.approx(before.item(), rel=1e-5)
    assert after.item() < before.item() - 1e-3 * abs(before.item())


@pytest.fixture
def identity_generator(monkeypatch):
    """G(z) = z, so gradients w.r.t. the latents are gradients w.r.t. the generated points."""

    def build(spec, cfg):
        lin = nn.Linear(2, 2)
        with torch.no_grad():
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
        return lin

    monkeypatch.setitem(eotgm_mod.GENERATORS, "identity", build)


def _point_grad(update, x, y, tol):
    method = EOTGM(
        Config(update=update, generator="identity", sinkhorn_tol=tol, sinkhorn_max_iter=5000),
        POINTS,
        CPU,
    )
    z = y.clone().requires_grad_(True)
    loss, _ = method.loss(x, z)
    loss.backward()
    return z.grad


def test_plan_rule_gradient_flows_only_through_the_cost(identity_generator):
    x, y = sample("gauss4", 60, seed=1), sample("gauss4", 50, seed=2)
    grad = _point_grad("plan", x, y, 1e-3)
    # d<π*, M>/dy_j with π* held fixed: Σ_i π*_ij ∂‖x_i − y_j‖²/∂y_j = 2 Σ_i π*_ij (y_j − x_i)
    pi = sinkhorn(x, y, eps=0.5, tol=1e-3, max_iter=5000).plan()
    expected = 2 * (pi.sum(0)[:, None] * y - pi.T @ x)
    _assert_close(grad, expected, rtol=1e-4, atol=1e-6)


def test_dual_rule_is_the_envelope_gradient(identity_generator):
    # At the Sinkhorn fixed point eq. 5 (β* differentiated through y) equals the gradient of
    # ⟨π*, M⟩ with π* fixed (envelope theorem); each is a proper descent direction.
    x, y = sample("gauss4", 60, seed=3), sample("gauss4", 50, seed=4)
    dual = _point_grad("dual", x, y, 1e-6)
    plan = _point_grad("plan", x, y, 1e-6)
    _assert_close(dual, plan, rtol=1e-3, atol=1e-5)
    assert dual.abs().max() > 1e-3


def test_dual_loss_value_is_the_entropic_ot_value(identity_generator):
    # ⟨a, α*⟩ + ⟨b, β(y)⟩ is the dual objective (2): at convergence it equals W of eq. (1)
    x, y = sample("gauss4", 40, seed=5), sample("gauss4", 30, seed=6)
    method = EOTGM(
        Config(update="dual", generator="identity", sinkhorn_tol=1e-6, sinkhorn_max_iter=5000),
        POINTS,
        CPU,
    )
    loss, logs = method.loss(x, y)
    primal = sinkhorn(x, y, eps=0.5, tol=1e-6, max_iter=5000)
    pi = primal.plan()
    entropic = (pi * torch.cdist(x, y) ** 2).sum() + 0.5 * torch.special.xlogy(pi, pi).sum()
    assert loss.item() == pytest.approx(entropic.item(), rel=1e-4)
    assert logs["eot"] == pytest.approx(loss.item(), rel=1e-4)


def test_sampling_is_seeded_and_shaped():
    method = EOTGM(Config(hidden=(32,)), POINTS, CPU)
    torch.manual_seed(5)
    a = method.sample(7)
    torch.manual_seed(5)
    assert a.shape == (7, 2) and torch.equal(a, method.sample(7))


def test_registered_and_paper_defaults():
    assert get_method("eotgm") is EOTGM
    toy = EOTGM(Config(), POINTS, CPU)
    assert (toy.cfg.latent_dim, toy.cfg.eps, toy.cfg.lr) == (2, 0.5, 5e-4)
    assert isinstance(toy.optimizers["G"], torch.optim.Adam)
    widths = [m.out_features for m in toy.nets["G"] if isinstance(m, nn.Linear)]
    assert widths == [256, 256, 256, 256, 2]


def test_images_use_flattened_pixels_and_a_dcgan_generator():
    pytest.importorskip("otgen.nets.dcgan")
    spec = DataSpec(shape=(1, 28, 28))
    method = EOTGM(Config(latent_dim=8), spec, CPU)
    assert (method.cfg.eps, method.cfg.optimizer) == (15.0, "rmsprop")
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    logs = method.train_step(x, None, 0)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert method.sample(3).shape == (3, 1, 28, 28)


def test_image_generator_starts_like_dcgans_and_eotgans():
    # EOT paper §3.3: g "uses the same setting as that of DCGAN and WGAN": N(0, 0.02) weights
    spec = DataSpec(shape=(1, 28, 28))
    torch.manual_seed(0)
    g = EOTGM(Config(latent_dim=100, width=16), spec, CPU).nets["G"]
    weights = [m.weight for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert 0.015 < torch.cat([w.flatten() for w in weights]).std() < 0.025
    torch.manual_seed(0)
    eotgan_g = get_method("eotgan")(get_method("eotgan").Config(width=16), spec, CPU).nets["G"]
    for a, b in zip(g.state_dict().values(), eotgan_g.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "kw",
    [
        {"update": "primal"},
        {"eps": -1.0},
        {"eps": float("nan")},
        {"optimizer": "sgd"},
        {"hidden": (0,)},
        {"betas": (0.5, 1.5)},
        {"latent_dim": 0},
    ],
)
def test_bad_configs_fail_at_construction(kw):
    with pytest.raises(OTGenError):
        Config(**kw)


@pytest.mark.parametrize(
    "cfg, spec",
    [
        (Config(generator="nope"), POINTS),
        (Config(generator="mlp"), DataSpec(shape=(1, 28, 28))),
        (Config(generator="dcgan"), POINTS),
    ],
)
def test_generator_mismatch(cfg, spec):
    with pytest.raises(OTGenError):
        EOTGM(cfg, spec, CPU)
