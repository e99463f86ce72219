"""Helpers shared by the method files (``otgen.methods._common``)."""

import pytest
import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.methods._common import check_betas, eval_mode


def test_eval_mode_restores_each_submodule_and_survives_errors():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    net[1].eval()  # a mixed tree: the restore must not flatten it to one flag
    with pytest.raises(RuntimeError), eval_mode(net):
        assert not net.training and not net[0].training
        raise RuntimeError
    assert net.training and net[0].training and not net[1].training


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, True, float("nan")])
def test_check_betas_refuses_values_outside_zero_one(value):
    with pytest.raises(OTGenError, match="beta1 must be in"):
        check_betas(beta1=value)
    with pytest.raises(OTGenError, match="betas must be two numbers"):
        check_betas(betas=(0.5, value))
    check_betas(beta1=0.0, betas=(0.5, 0.999))


def test_adam_is_the_textbook_update():
    """Two steps of otgen's Adam against eq. (Alg. 1) of Kingma & Ba written out by hand."""
    from otgen.methods._common import adam

    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(50))
    lr, (b1, b2), eps = 1e-2, (0.5, 0.9), 1e-8
    opt = adam([p], lr, (b1, b2))
    ref, m, v = p.detach().clone(), torch.zeros(50), torch.zeros(50)
    for t in (1, 2):
        g = torch.randn(50)
        p.grad = g.clone()
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        ref = ref - lr * m_hat / (v_hat.sqrt() + eps)
        torch.testing.assert_close(p.detach(), ref, rtol=1e-6, atol=1e-7)
