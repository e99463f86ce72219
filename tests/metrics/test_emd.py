import math

import pytest
import torch

from otgen.errors import OTGenError
from otgen.metrics.emd import emd_distance


@pytest.mark.parametrize("v", [(0.3, -0.4), (3.0, 4.0), (0.0, 1e-3)])
def test_translation_costs_its_length(v):
    # W1 with Euclidean cost: the translation map is optimal (the 1-Lipschitz potential
    # <., v/|v|> certifies the lower bound), so EMD(x, x + v) = |v| for any cloud x.
    x = torch.randn(200, 2, dtype=torch.float64)
    v = torch.tensor(v, dtype=torch.float64)
    assert emd_distance(x, x + v) == pytest.approx(float(v.norm()), rel=1e-9, abs=1e-12)


def test_hand_computed_and_unequal_sizes():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert emd_distance(x, y) == pytest.approx(1.0)
    # Euclidean (not squared) ground cost: one point moved by (3, 4) out of two costs 5/2
    assert emd_distance(x, torch.tensor([[0.0, 0.0], [4.0, 4.0]])) == pytest.approx(2.5)
    # equal weights 1/n and 1/m: a cloud against itself duplicated costs nothing
    assert emd_distance(x, torch.cat([x, x])) == pytest.approx(0.0, abs=1e-12)
    # one point against two at distances 1 and 3: half the mass each way
    assert emd_distance([[0.0, 0.0]], [[1.0, 0.0], [-3.0, 0.0]]) == pytest.approx(2.0)


def test_symmetric_and_in_higher_dimension():
    x, y = torch.randn(50, 5), torch.randn(60, 5) + 1
    d = emd_distance(x, y)
    assert d == pytest.approx(emd_distance(y, x), rel=1e-6)
    assert d >= float((x.mean(0) - y.mean(0)).norm()) - 1e-6  # Jensen lower bound
    assert math.isfinite(d)


def test_bad_inputs():
    with pytest.raises(OTGenError, match="dimensions"):
        emd_distance(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(OTGenError, match="NaN"):
        emd_distance(torch.zeros(3, 2), torch.full((3, 2), math.nan))
    with pytest.raises(OTGenError, match="empty"):
        emd_distance(torch.zeros(0, 2), torch.zeros(3, 2))
