import pytest
import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.nets.eot import RepresentationNet


@pytest.mark.parametrize(("shape", "flat"), [((1, 28, 28), 64 * 4 * 4), ((1, 32, 32), 64 * 5 * 5)])
def test_output_shape_and_flattened_width(shape, flat):
    net = RepresentationNet(shape, m=3)
    out = net(torch.randn(5, *shape))
    assert out.shape == (5, 3)
    assert net.head[1].in_features == flat  # valid 5x5 convs + 2x2 pools (LeNet sizes)


def test_layout_follows_the_papers_footnote():
    net = RepresentationNet((1, 28, 28))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (64, (5, 5))]
    assert [lin.out_features for lin in linears] == [256, 256, 2]  # m = 2 by default
    assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 4
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_samples_are_embedded_independently_of_the_batch():
    net = RepresentationNet((3, 32, 32), m=4)
    x = torch.randn(6, 3, 32, 32)
    assert torch.allclose(net(x)[:2], net(x[:2]), atol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(OTGenError, match="too small"):
        RepresentationNet((1, 12, 12))
    with pytest.raises(OTGenError, match="m must be"):
        RepresentationNet((1, 28, 28), m=0)
    with pytest.raises(OTGenError, match="images"):
        RepresentationNet((28, 28))
    net = RepresentationNet((1, 28, 28))
    with pytest.raises(OTGenError, match="expected images"):
        net(torch.randn(2, 3, 28, 28))
