"""Helpers shared by the method files (``otgen.methods._common``)."""

import pytest
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
