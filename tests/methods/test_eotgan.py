import pytest
import torch

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods import get_method
from otgen.methods.eotgan import EOTGAN, Config, eot_term, f_loss, frozen, g_loss
from otgen.ot.sinkhorn import sinkhorn

CPU = torch.device("cpu")
IMAGES = DataSpec(shape=(1, 28, 28))


def _method(**kw):
    return EOTGAN(Config(width=8, **kw), IMAGES, CPU)


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def _same(before, net):
    return all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


# -- eq. (10) ---------------------------------------------------------------------------------
def test_hinge_active_and_inactive():
    w_real = torch.tensor(1.0, requires_grad=True)
    w_fake = torch.tensor(3.0, requires_grad=True)
    loss = f_loss(w_real, w_fake, gamma=5.0)  # 1 - 3 + 5 = 3 > 0: active
    loss.backward()
    assert loss.item() == pytest.approx(3.0)
    assert (w_real.grad.item(), w_fake.grad.item()) == (1.0, -1.0)
    w_real.grad = w_fake.grad = None
    loss = f_loss(w_real, torch.tensor(10.0), gamma=5.0)  # 1 - 10 + 5 < 0: inactive
    loss.backward()
    assert loss.item() == 0.0 and w_real.grad.item() == 0.0
    assert g_loss(w_fake) is w_fake


@pytest.mark.parametrize("grad", ["plan", "dual"])
def test_gradient_is_plan_times_cost_derivative(grad):
    fx = torch.randn(7, 2, requires_grad=True)
    fy = torch.randn(5, 2, requires_grad=True)
    term = eot_term(fx, fy, eps=0.5, grad=grad, tol=1e-7, max_iter=5000)
    term.loss.backward()
    plan = sinkhorn(fx.detach(), fy.detach(), eps=0.5, tol=1e-7, max_iter=5000).plan()
    assert plan.grad is None and not plan.requires_grad  # the plan is a constant
    diff = fx.detach()[:, None] - fy.detach()[None]  # (7, 5, 2)
    # d/dx_i sum_ij pi_ij |x_i - y_j|^2 = 2 sum_j pi_ij (x_i - y_j), and minus that for y_j
    want_x = 2 * (plan[..., None] * diff).sum(1)
    want_y = -2 * (plan[..., None] * diff).sum(0)
    assert torch.allclose(fx.grad, want_x, atol=1e-4)
    assert torch.allclose(fy.grad, want_y, atol=1e-4)
    cost = (plan * diff.pow(2).sum(-1)).sum()
    if grad == "plan":
        assert term.loss.item() == pytest.approx(cost.item(), rel=1e-5)
    else:  # the entropic value: <pi, C> - eps H(pi), smaller than <pi, C> by eps H > 0
        entropy = -(plan * plan.log()).sum()
        assert term.loss.item() == pytest.approx((cost - 0.5 * entropy).item(), rel=1e-4)


def test_frozen_restores_flags():
    net = torch.nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert net.weight.requires_grad and not net.bias.requires_grad


# -- Algorithm 2 ------------------------------------------------------------------------------
def test_gradients_flow_only_where_the_algorithm_says():
    m = _method()
    G, f = m.nets["G"], m.nets["F"]
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    g_before = _params(G)
    fake = m.generate(m.sample_latent(8))  # carries a graph into G
    m.representation_step(x[:8], x[8:], fake)  # lines 4-7
    assert _same(g_before, G) and all(p.grad is None for p in G.parameters())
    f_before = _params(f)
    f.zero_grad(set_to_none=True)
    m.generator_step(x[:8], m.sample_latent(8))  # lines 8-11
    assert _same(f_before, f)
    assert all(p.grad is None for p in f.parameters())  # back-propagated through, not into f
    assert all(p.requires_grad for p in f.parameters())
    assert not _same(g_before, G)


def test_one_generator_step_lowers_the_generator_loss_on_a_fixed_batch():
    m = _method(lr_g=2e-5)
    x_a = torch.rand(32, 1, 28, 28) * 2 - 1
    z = torch.randn(32, 100)
    before = m.generator_loss(x_a, z)[0].item()
    logs = m.generator_step(x_a, z)
    after = m.generator_loss(x_a, z)[0].item()
    assert logs["g_loss"] == pytest.approx(before, rel=1e-5)
    assert after < before


def test_train_step_logs_and_batches():
    m = _method()
    logs = m.train_step(torch.rand(17, 1, 28, 28) * 2 - 1, None, 0)  # odd batch: 8 + 8
    for key in ("f_loss", "w_real", "w_fake_f", "g_loss", "g_grad_norm", "hinge_active"):
        assert key in logs
    assert logs["f_loss"] == pytest.approx(max(0.0, logs["w_real"] - logs["w_fake_f"] + 5.0))
    assert m.sample(3).shape == (3, 1, 28, 28)
    with pytest.raises(OTGenError, match="at least 4"):
        m.train_step(torch.zeros(3, 1, 28, 28), None, 0)


def test_f_steps_delays_the_generator():
    m = _method(f_steps=2)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    assert "g_loss" not in m.train_step(x, None, 0)
    assert "g_loss" in m.train_step(x, None, 1)


def test_registered_with_paper_defaults():
    cls = get_method("eotgan")
    cfg = cls.Config()
    assert cls is EOTGAN
    assert (cfg.m, cfg.eps, cfg.gamma, cfg.optimizer, cfg.lr_g, cfg.latent_dim) == (
        2, 5.0, 5.0, "rmsprop", 1e-4, 100
    )  # fmt: skip


@pytest.mark.parametrize(
    "kw", [{"grad": "autograd"}, {"m": 0}, {"eps": -1.0}, {"gamma": 0.0}, {"optimizer": "sgd"}]
)
def test_bad_config_raises(kw):
    with pytest.raises(OTGenError):
        Config(**kw)


def test_points_are_rejected():
    with pytest.raises(OTGenError, match="image data"):
        EOTGAN(Config(), DataSpec(shape=(2,)), CPU)
