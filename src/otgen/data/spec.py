"""What a method needs to know about a data set: :class:`DataSpec` (shape, classes, range).

It lives in the data layer so networks (``otgen.nets``) and methods can be built from a data
set without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """What a method needs to know about the data to build its networks."""

    shape: tuple[int, ...]  # one sample's shape: (2,) for 2D toys, (C, H, W) for images
    num_classes: int | None = None  # set for labelled data (conditional methods)
    value_range: tuple[float, float] = (-1.0, 1.0)  # images are scaled to [-1, 1]

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3
