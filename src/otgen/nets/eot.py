"""EOTGAN's representation network f: images -> R^m (EOT paper, §3.3, footnote 1).

The footnote's layout (after Chopra et al. 2005 / Hadsell et al. 2006, the siamese nets of
metric learning)::

    32 Conv2d 5x5 -> PReLU -> MaxPool 2x2 -> 64 Conv2d 5x5 -> PReLU -> MaxPool 2x2
    -> Dense 256 -> PReLU -> Dense 256 -> PReLU -> Dense m

The convolutions are unpadded ("valid", LeNet style), so a 32x32 image gives 64x5x5 features
and a 28x28 one 64x4x4; the first Dense layer's width is computed from the input shape. The
paper's output is m = 2 (the authors' MNIST code, reference notes); ``m`` is configurable.
No normalisation layer: f is applied to three batches separately per step (Algorithm 2), and
BatchNorm would make f(x) depend on which batch x came with.
"""

from __future__ import annotations

import torch
from torch import nn

from otgen.errors import OTGenError
from otgen.utils.checks import check_int

KERNEL = 5
POOL = 2


def _valid_size(size: int) -> int:
    """Side after one valid 5x5 conv and a 2x2 max-pool (floor)."""
    return (size - KERNEL + 1) // POOL


class RepresentationNet(nn.Module):
    """``f(x) -> (N, m)`` for images ``(N, C, H, W)`` (EOT paper footnote 1)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        m: int = 2,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise OTGenError(f"the representation net needs images (C, H, W), got {in_shape}")
        c, h, w = (int(s) for s in in_shape)
        m, hidden = check_int(m, "m"), check_int(hidden, "hidden")
        c1, c2 = (check_int(ch, "channels") for ch in channels)
        oh, ow = _valid_size(_valid_size(h)), _valid_size(_valid_size(w))
        if oh < 1 or ow < 1:
            raise OTGenError(f"images of {h}x{w} are too small for two 5x5 conv + pool stages")
        self.in_shape, self.m = (c, h, w), m
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, KERNEL),
            nn.PReLU(),
            nn.MaxPool2d(POOL),
            nn.Conv2d(c1, c2, KERNEL),
            nn.PReLU(),
            nn.MaxPool2d(POOL),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * oh * ow, hidden),
            nn.PReLU(),
            nn.Linear(hidden, hidden),
            nn.PReLU(),
            nn.Linear(hidden, m),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise OTGenError(
                f"expected images of shape (N, {', '.join(map(str, self.in_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return self.head(self.features(x))
