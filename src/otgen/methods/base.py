"""The contract between a training algorithm (``otgen.methods``) and the engine.

The engine imports this contract; a method never imports the engine.

A *method* is one paper's algorithm box: its networks, optimisers and the losses of one
training step. The *engine* (``otgen.engine.trainer``) owns everything else: the config, data
loading, devices, seeding, checkpoints, logging, EMA and DistributedDataParallel.

Rules a method follows (so runs are reproducible, resumable and distributable):

- Networks go in ``self.nets`` and optimisers in ``self.optimizers`` (dicts keyed by short
  names such as ``"G"``/``"D"``); the engine checkpoints exactly these (state_dict) plus
  ``extra_state()``. Anything else a method keeps must be derivable from them.
- Randomness comes from torch's global RNG (``torch.randn`` ...) on ``self.device``; the engine
  seeds it and saves/restores its state in checkpoints. A method never seeds.
- A method never writes files and never prints; it returns scalar logs from ``train_step``.
- The engine may replace entries of ``self.nets`` by DDP wrappers; methods only call them.
- Latent-variable generators (GANs, AE-OT-GAN) also expose, by convention (not abstract, so
  other methods need not define them): ``latent_dim: int``, ``prior: str`` ("normal" = N(0, I)
  or "uniform" = U(-1, 1)^d), ``sample_latent(n, labels=None) -> (n, latent_dim)`` drawn with
  torch's global RNG on ``self.device``, and ``generate(z, labels=None)`` = G(z | labels),
  differentiable in ``z`` (DOT's latent transport needs it); conditional ones set
  ``conditional = True``. ``otgen.methods.gan.GAN`` is the worked example.
- Multi-stage algorithms (AE-OT: autoencoder -> OT solve -> GAN) declare ``phases()``; the
  engine calls ``begin_phase(name, data)`` with the whole training set before the first step of
  each phase (and again after a resume inside that phase, so it must be idempotent or rebuild
  from ``extra_state``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from otgen.data.spec import DataSpec


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int


class Method(abc.ABC):
    """Base class of every training algorithm; subclasses set ``name`` and ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]  # frozen dataclass of hyper-parameters, defaults from the paper

    def __init__(self, cfg: Any, spec: DataSpec, device: torch.device) -> None:
        self.cfg = cfg
        self.spec = spec
        self.device = device
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @abc.abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        """One update on a batch ``x`` (labels ``y`` or None); returns scalar logs."""

    @abc.abstractmethod
    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` new samples (no gradient), shaped like the data."""

    # -- optional hooks ---------------------------------------------------------------------
    @classmethod
    def warm_start_run(cls, cfg: Any) -> str | None:
        """A finished run directory this method starts from, or None (the default).

        When set, the engine loads that run (:func:`otgen.engine.build_method`) and passes
        the loaded method to the constructor as ``source=``; methods never load runs
        themselves, so they do not depend on the engine.
        """
        return None

    def phases(self, total_steps: int) -> list[Phase]:
        """Training phases; a single phase by default."""
        return [Phase("train", total_steps)]

    def begin_phase(self, name: str, data: torch.Tensor, labels: torch.Tensor | None) -> None:
        """Called before the first step of each phase with the whole training set."""

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors beyond nets/optimisers that a checkpoint must hold (e.g. OT potentials)."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`extra_state`."""

    @property
    def generator(self) -> nn.Module | None:
        """The network mapping latents to samples (used by EMA, DOT and sampling)."""
        return self.nets.get("G")

    @property
    def discriminator(self) -> nn.Module | None:
        """The critic/discriminator reading the generator's output, if the method has one."""
        return self.nets.get("D")
