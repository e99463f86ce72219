"""Building blocks shared by the networks: spectral norm, DCGAN init, maxout, packing,
conditional batch norm and the projection discriminator head.

Conditioning conventions (every conditional net in ``otgen.nets``):

- generators take ``forward(z, y=None)`` and condition through conditional batch norm
  (de Vries et al. 2017; Miyato & Koyama 2018): a class embedding sets BatchNorm's scale and
  shift, so each class gets its own affine transform of shared normalised features;
- discriminators take ``forward(x, y=None)`` and add the projection term
  ``<embed(y), h(x)>`` to the unconditional output (Miyato & Koyama 2018, eq. 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from otgen.errors import OTGenError


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalisation of ``module``'s weight (DOT eq. 9: W -> W / sigma(W)).

    One power iteration per forward pass in training mode (Miyato et al. 2018); the
    singular vectors persist between calls, so sigma converges while the weights move slowly.
    """
    return _spectral_norm(module) if enabled else module


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN/PacGAN init: conv/linear weights ~ N(0, std), biases 0, BN gains ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d | nn.Embedding):
            # Spectral norm stores the raw weight as ``parametrizations.weight.original``.
            weight = m.parametrizations.weight.original if _has_sn(m) else m.weight
            nn.init.normal_(weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def _has_sn(m: nn.Module) -> bool:
    return hasattr(m, "parametrizations") and "weight" in m.parametrizations


def apply_init(module: nn.Module, init: str) -> nn.Module:
    """``init`` in {"normal" (N(0, 0.02)), "default" (PyTorch's)}."""
    if init == "normal":
        return init_normal_(module)
    if init != "default":
        raise OTGenError(f"unknown init {init!r}; choose 'normal' or 'default'")
    return module


ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise OTGenError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): max over ``pieces`` affine maps, per output unit."""

    per_sample = True  # see scores_each_sample

    def __init__(self, in_dim: int, units: int, pieces: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = sn(nn.Linear(in_dim, units * pieces), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max() with indices, not amax(): its backward scatters the gradient to the winning
        # piece by index, where amax's compares every piece with the max (eq, sum, div). Ties
        # have measure zero; 2% of a 2D PacGAN step on CPU (issue 14, benchmarks/engine.py).
        return self.linear(x).view(x.shape[0], self.units, self.pieces).max(dim=-1).values


class Packing(nn.Module):
    """PacGAN packing: ``m`` consecutive samples become one discriminator input.

    Points (N, d) -> (N/m, m*d); images (N, C, H, W) -> (N/m, m*C, H, W). Since the
    discriminator then scores N/m packs, real and fake batches are packed the same way and the
    GAN losses need no change (Lin et al. 2018, Sec. 3).
    """

    per_sample = True  # per pack: batches concatenated at multiples of m keep their packs

    def __init__(self, pack: int) -> None:
        super().__init__()
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack:
            raise OTGenError(f"batch of {x.shape[0]} samples is not a multiple of pack={self.pack}")
        return x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine parameters, followed by a per-class scale and shift.

    gamma starts at 1 and beta at 0 so an untrained conditional net equals the unconditional one.
    """

    def __init__(self, num_features: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.bn = bn(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = require_labels(y, x.shape[0])
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return self.gamma(y).view(shape) * self.bn(x) + self.beta(y).view(shape)


def norm_layer(num_features: int, num_classes: int | None, dims: int = 2) -> nn.Module:
    """BatchNorm, or its conditional version when ``num_classes`` is set."""
    if num_classes:
        return ConditionalBatchNorm(num_features, num_classes, dims)
    return nn.BatchNorm2d(num_features) if dims == 2 else nn.BatchNorm1d(num_features)


def apply_norm(norm: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return norm(x, y) if isinstance(norm, ConditionalBatchNorm) else norm(x)


class ProjectionHead(nn.Module):
    """Output layer of a (projection) discriminator: ``linear(h) [+ <embed(y), h>]``."""

    per_sample = True

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_classes and out_dim != 1:
            raise OTGenError("a projection (conditional) discriminator needs out_dim=1")
        self.linear = sn(nn.Linear(in_dim, out_dim), spectral_norm)
        self.embed = sn(nn.Embedding(num_classes, in_dim), spectral_norm) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(h)
        if self.embed is not None:
            y = require_labels(y, h.shape[0])
            out = out + (self.embed(y) * h).sum(dim=1, keepdim=True)
        return out


def require_labels(y: torch.Tensor | None, n: int) -> torch.Tensor:
    """Labels a conditional net was called with: long tensor of shape (n,)."""
    if y is None:
        raise OTGenError("this network is class-conditional: pass labels y")
    if y.shape != (n,):
        raise OTGenError(f"labels must have shape ({n},), got {tuple(y.shape)}")
    return y.long()


def check_unconditional(y: torch.Tensor | None) -> None:
    if y is not None:
        raise OTGenError("this network is unconditional: build it with num_classes to use labels")


# torch modules whose output for one sample depends on that sample alone, with no state that a
# forward call updates (unlike batch norm's statistics or spectral norm's power iteration)
_TORCH_PER_SAMPLE = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding, nn.LayerNorm,
                     nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.ELU, nn.Sigmoid, nn.Identity, nn.Flatten,
                     nn.Sequential, nn.ModuleList)  # fmt: skip


def scores_each_sample(net: nn.Module) -> bool:
    """Whether ``net(cat([a, b]))`` is ``cat([net(a), net(b)])`` (up to float rounding) with
    the same side effects as the two calls, so a GAN may score its real and fake batches in one
    call. Only known kinds qualify, by exact type (a subclass may add a cross-sample term, such
    as a minibatch standard deviation): torch's per-sample layers and otgen's modules that
    declare ``per_sample = True`` in their own class body; batch norm (batch statistics),
    spectral norm (one power iteration per call) and any module with forward hooks (they may
    keep state, as the old hook-based spectral norm does) do not. Packing nets need ``len(a)``
    to be a multiple of the pack size."""
    return all(_per_sample_module(m) for m in net.modules())


def _per_sample_module(m: nn.Module) -> bool:
    known = type(m) in _TORCH_PER_SAMPLE or type(m).__dict__.get("per_sample", False)
    hooked = bool(m._forward_hooks or m._forward_pre_hooks) or hasattr(m, "weight_orig")
    return bool(known) and not hooked and not _has_sn(m)


class FeatureDiscriminator(nn.Module):
    """Base of the discriminators: ``pack -> stages -> pool -> head``, keeping every stage's
    output as a feature (DCGAN/MBGAN linear probes, InfoGAN encoder features).

    Subclasses set ``self.pack`` (:class:`Packing`), ``self.head`` (:class:`ProjectionHead`)
    and either ``self.blocks`` (an ``nn.ModuleList``) or their own :meth:`_stages`; they
    override :meth:`_pool` when the last stage's output is not simply flattened.
    """

    pack: Packing
    head: ProjectionHead

    def _stages(self) -> Iterable[Callable[[torch.Tensor], torch.Tensor]]:
        return self.blocks

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        return h.flatten(1)

    def forward_with_features(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.head.embed is None:
            check_unconditional(y)
        h, feats = self.pack(x), []
        for stage in self._stages():
            h = stage(h)
            feats.append(h)
        return self.head(self._pool(h), y), feats

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Output of every stage, in order (see the subclass's docstring)."""
        return self.forward_with_features(x, y)[1]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_features(x, y)[0]
