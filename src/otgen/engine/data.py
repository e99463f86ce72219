"""The training set as the engine sees it, and the order in which its batches are drawn.

:class:`InMemoryData` is the engine's view of a data set (tensors + :class:`DataSpec`);
:func:`as_dataset` accepts a data set object or a bare tensor, :func:`load_data` loads the one a
config names. :class:`BatchSampler` fixes the data order: step ``s`` reads a slice of a per-epoch
permutation seeded by ``(seed, epoch)`` alone, so a resumed run reads the same batches as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

import otgen.data
from otgen.data.spec import DataSpec
from otgen.engine import distributed as D
from otgen.engine.config import TrainConfig
from otgen.errors import OTGenError


@dataclass(frozen=True)
class InMemoryData:
    """A training set held in memory (what ``otgen.data.load`` returns has the same fields)."""

    x: torch.Tensor
    y: torch.Tensor | None
    spec: DataSpec
    name: str = "in-memory"


def as_dataset(data: Any) -> InMemoryData:
    """Accept a dataset object (``.x``, ``.y``, ``.spec``, ``.name``) or a bare tensor."""
    if isinstance(data, torch.Tensor):
        x = data.float()
        return InMemoryData(x, None, DataSpec(tuple(x.shape[1:])), "in-memory")
    for attr in ("x", "spec"):
        if not hasattr(data, attr):
            raise OTGenError(f"data: expected a Dataset with .x and .spec, got {type(data)}")
    x = data.x
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise OTGenError("data.x must be a non-empty tensor (N, ...)")
    if tuple(x.shape[1:]) != tuple(data.spec.shape):
        raise OTGenError(
            f"data.x has samples of shape {tuple(x.shape[1:])}, spec says {tuple(data.spec.shape)}"
        )
    y = getattr(data, "y", None)
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape[0] != x.shape[0]):
        raise OTGenError("data.y must be a tensor with one label per sample")
    return InMemoryData(x, y, data.spec, str(getattr(data, "name", "in-memory")))


def load_data(config: TrainConfig) -> InMemoryData:
    """The run's training set through ``otgen.data.load``."""
    if not config.data.name:
        raise OTGenError("data.name: no data set given (--data NAME)")
    kwargs = {"root": config.data.root} if config.data.root else {}
    ds = otgen.data.load(
        config.data.name,
        split=config.data.split,
        n=config.data.n,
        seed=config.seed,
        image_size=config.data.image_size,
        **kwargs,
    )
    return as_dataset(ds)


class BatchSampler:
    """Global batch ``b`` of epoch ``e`` = items ``perm_e[b·B : (b+1)·B]``; rank r keeps every
    K-th of them (items r, r+K, ...). ``perm_e`` is a permutation drawn from a generator seeded
    by ``(seed, e)`` alone, so any step's batch is known without replaying earlier ones.
    """

    def __init__(self, n: int, batch_size: int, seed: int, info: D.DistInfo) -> None:
        if batch_size > n:
            raise OTGenError(f"batch_size {batch_size} is larger than the data set ({n} samples)")
        if batch_size % info.world_size:
            raise OTGenError(
                f"batch_size {batch_size} is not divisible by the {info.world_size} processes"
            )
        self.n, self.batch_size, self.seed, self.info = n, batch_size, seed, info
        self.steps_per_epoch = n // batch_size  # the last partial batch is dropped
        self._epoch, self._perm = -1, None

    def position(self, step: int) -> tuple[int, int]:
        return divmod(step, self.steps_per_epoch)

    def indices(self, step: int) -> torch.Tensor:
        epoch, pos = self.position(step)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        batch = self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]
        return batch[self.info.rank :: self.info.world_size]

    def state(self, step: int) -> dict[str, int]:
        epoch, pos = self.position(step)
        return {"epoch": epoch, "position": pos, "seed": self.seed}
