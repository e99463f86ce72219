"""Multi-layer perceptrons for the papers' 2D experiments."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


class MLP(nn.Sequential):
    """Linear layers with an activation between them (none after the last).

    ``batchnorm=True`` inserts BatchNorm1d before each hidden activation (PacGAN's generator,
    which then drops the hidden biases since BatchNorm's shift makes them redundant).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        activation: str = "relu",
        batchnorm: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        dims = [in_dim, *hidden]
        for d_in, d_out in itertools.pairwise(dims):
            layers.append(nn.Linear(d_in, d_out, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(_ACTIVATIONS[activation]())
        layers.append(nn.Linear(dims[-1], out_dim))
        super().__init__(*layers)
