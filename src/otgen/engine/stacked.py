"""Train the seeds of a small model together: S independent networks as one batched network.

Issue 15 asks for 10 training seeds of the 2D toy GANs at the papers' budgets. The networks are
tiny (DOT's WGAN-GP toys: G 2→256×3→2, D 2→512×3→1), so one seed leaves a GPU idle and a CPU
spends much of each step in Python and kernel launches. Here every layer of the S networks is
one ``(S, d_in, d_out)`` weight and the forward pass is a batched matmul
(``torch.baddbmm``: ``x_s ← b_s + x_s W_s`` for every seed s at once), so a step costs about one
launch per layer for all seeds.

Independence of the seeds is exact, not approximate:

- each seed owns a ``torch.Generator`` for its initialisation, data, latents and the
  gradient-penalty interpolation weights, drawn in a fixed order;
- the loss is the *sum* of the per-seed losses, so the gradient of seed s's parameters is
  exactly seed s's own gradient (the other terms do not depend on them), including the
  gradient penalty's double backward (seed blocks of the batched matmul do not interact);
- Adam is element-wise, so it treats the stacked tensor as S separate ones.

Hence seed s trained in a stack of S gives the same numbers as seed s trained alone (S = 1),
up to the floating-point behaviour of the batched matmul kernel (measured in the tests).
The initialisation reproduces ``torch.nn.Linear``'s (U(±1/√fan_in) for weight and bias, weight
drawn first in ``(d_out, d_in)`` layout), so a seed's nets equal the ``dot-mlp`` nets built
after ``torch.manual_seed(seed)``, and :func:`load_seed_into` exports a trained seed into those
modules (for DOT, K_eff and the EMD evaluation).

WGAN-GP (Gulrajani et al. 2017, Algorithm 1; DOT eq. 7 with the penalty):
``L_D = E D(G(z)) − E D(x) + λ E (‖∇D(x̂)‖₂ − 1)²``, x̂ = t x + (1 − t) G(z), t ~ U(0, 1);
``L_G = −E D(G(z))``; G is updated after every ``n_critic``-th critic update.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from otgen.errors import OTGenError
from otgen.utils.checks import check_int

Sampler = Callable[[int, torch.Generator], torch.Tensor]


class StackedMLP(nn.Module):
    """S independent MLPs ``dims[0] → … → dims[-1]``.

    ``forward(x)``: ``x`` is ``(S, B, dims[0])``, the result ``(S, B, dims[-1])``. Hidden layers
    are ``Linear + activation`` ("leaky_relu" with slope 0.2, or "relu"); ``batchnorm=True``
    puts a per-seed BatchNorm before each hidden activation and drops the hidden biases
    (PacGAN's G); ``maxout_pieces=k`` makes each hidden layer a maxout over k affine maps
    (PacGAN's D; its ``pack`` is a reshape done by the caller). ``init``: "default"
    (``nn.Linear``'s U(±1/√fan_in)) or "normal" (weights N(0, 0.02), biases 0, BN gains
    N(1, 0.02): the DCGAN/PacGAN init).
    """

    def __init__(
        self,
        dims: Sequence[int],
        gens: Sequence[torch.Generator],
        activation: str = "leaky_relu",
        batchnorm: bool = False,
        maxout_pieces: int | None = None,
        init: str = "default",
    ) -> None:
        super().__init__()
        if len(dims) < 2 or not gens:
            raise OTGenError("StackedMLP needs at least two layer sizes and one seed")
        if activation not in ("leaky_relu", "relu") or init not in ("default", "normal"):
            raise OTGenError(f"unsupported activation {activation!r} or init {init!r}")
        self.dims, self.n_seeds, self.activation = tuple(dims), len(gens), activation
        self.batchnorm, self.pieces = batchnorm, maxout_pieces or 1
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self.bn_weights, self.bn_biases = nn.ParameterList(), nn.ParameterList()
        per_seed = [self._init_seed(g, init) for g in gens]  # each seed from its own stream
        for i in range(len(dims) - 1):
            self.weights.append(nn.Parameter(torch.stack([p[i]["w"].T for p in per_seed])))
            if "b" in per_seed[0][i]:
                self.biases.append(nn.Parameter(torch.stack([p[i]["b"][None] for p in per_seed])))
            if "g" in per_seed[0][i]:
                self.bn_weights.append(
                    nn.Parameter(torch.stack([p[i]["g"][None] for p in per_seed]))
                )
                self.bn_biases.append(nn.Parameter(torch.zeros_like(self.bn_weights[-1])))
                self.register_buffer(f"running_mean{i}", torch.zeros_like(self.bn_weights[-1]))
                self.register_buffer(f"running_var{i}", torch.ones_like(self.bn_weights[-1]))

    def _init_seed(self, gen: torch.Generator, init: str) -> list[dict[str, torch.Tensor]]:
        """One seed's layers in ``nn.Linear`` layout, drawn in module order from ``gen``."""
        layers, last = [], len(self.dims) - 2
        for i, (d_in, d_out) in enumerate(itertools.pairwise(self.dims)):
            hidden = i < last
            d_out = d_out * self.pieces if hidden else d_out
            layer: dict[str, torch.Tensor] = {}
            if init == "normal":
                layer["w"] = torch.empty(d_out, d_in).normal_(0.0, 0.02, generator=gen)
            else:  # nn.Linear: kaiming_uniform(a = √5) = U(±1/√fan_in), then the bias
                bound = 1.0 / math.sqrt(d_in)
                layer["w"] = torch.empty(d_out, d_in).uniform_(-bound, bound, generator=gen)
            if not (hidden and self.batchnorm):
                layer["b"] = (
                    torch.zeros(d_out)
                    if init == "normal"
                    else torch.empty(d_out).uniform_(-bound, bound, generator=gen)
                )
            if hidden and self.batchnorm:
                layer["g"] = (torch.empty(d_out).normal_(1.0, 0.02, generator=gen)
                              if init == "normal" else torch.ones(d_out))  # fmt: skip
            layers.append(layer)
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        biases = iter(self.biases)
        for i, w in enumerate(self.weights):
            if i < last and self.batchnorm:
                x = self._batchnorm(torch.bmm(x, w), i)
            else:
                x = torch.baddbmm(next(biases), x, w)
            if i == last:
                break
            if self.pieces > 1:
                x = x.view(*x.shape[:2], -1, self.pieces).amax(dim=-1)
            else:
                x = F.leaky_relu(x, 0.2) if self.activation == "leaky_relu" else F.relu(x)
        return x

    def _batchnorm(self, x: torch.Tensor, i: int, eps: float = 1e-5, momentum: float = 0.1):
        """BatchNorm1d per seed: statistics over each seed's own batch (dim 1)."""
        rm, rv = getattr(self, f"running_mean{i}"), getattr(self, f"running_var{i}")
        if self.training:
            mean = x.mean(dim=1, keepdim=True)
            var = x.var(dim=1, unbiased=False, keepdim=True)
            with torch.no_grad():  # running variance is unbiased, as in nn.BatchNorm1d
                n = x.shape[1]
                rm.mul_(1 - momentum).add_(momentum * mean)
                rv.mul_(1 - momentum).add_(momentum * var * n / max(n - 1, 1))
        else:
            mean, var = rm, rv
        return (x - mean) / torch.sqrt(var + eps) * self.bn_weights[i] + self.bn_biases[i]

    def seed_layers(self, s: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Seed s's layers as ``nn.Linear`` tensors ``(weight (d_out, d_in), bias (d_out,))``
        (networks without BatchNorm)."""
        if self.batchnorm:
            raise OTGenError("seed_layers: export of BatchNorm stacks is not implemented")
        return [(w[s].T.detach().clone(), b[s, 0].detach().clone())
                for w, b in zip(self.weights, self.biases, strict=True)]  # fmt: skip


def load_seed_into(stacked: StackedMLP, s: int, module: nn.Module) -> nn.Module:
    """Copy seed s into the ``nn.Linear`` layers of ``module`` (in registration order)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    layers = stacked.seed_layers(s)
    if len(linears) != len(layers):
        raise OTGenError(f"module has {len(linears)} linear layers, the stack {len(layers)}")
    with torch.no_grad():
        for lin, (w, b) in zip(linears, layers, strict=True):
            if lin.weight.shape != w.shape or lin.bias is None:
                raise OTGenError(f"layer shape {tuple(lin.weight.shape)} != {tuple(w.shape)}")
            lin.weight.copy_(w)
            lin.bias.copy_(b)
    return module


@dataclass(frozen=True)
class StackedWGANGPConfig:
    """DOT's 2D WGAN-GP (reference notes): DOT nets, z ~ U(−1, 1)², 5 critic steps per G step,
    Adam (0.5, 0.9); λ = 0.1 as in the WGAN-GP toy code (see reproduce/dot_2d.py)."""

    g_dims: tuple[int, ...] = (2, 256, 256, 256, 2)
    d_dims: tuple[int, ...] = (2, 512, 512, 512, 1)
    batch_size: int = 256
    n_critic: int = 5
    gp_weight: float = 0.1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)


class _StackedGAN:
    """Shared parts: seeds and their random streams, Adam, checkpoint state, sampling.

    Per seed s the stream ``torch.Generator().manual_seed(seeds[s])`` is consumed in a fixed
    order (G init, D init, then each step's draws), so a seed's numbers do not depend on which
    other seeds share the stack.
    """

    cfg: Any

    def __init__(self, seeds: Sequence[int], sampler: Sampler, device: str | torch.device):
        self.seeds = [check_int(s, "seed", minimum=0) for s in seeds]
        if not self.seeds:
            raise OTGenError("give at least one seed")
        self.device, self.sampler = torch.device(device), sampler
        self.gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.step_count = 0

    def _optimizers(self, betas: tuple[float, float]) -> None:
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr, betas=betas)

    @staticmethod
    def _check(logs: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, vals in logs.items():
            if not all(math.isfinite(v) for v in vals):
                raise OTGenError(f"stacked GAN: non-finite {name} {vals}")
        return logs

    def _per_seed(self, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
        return torch.stack([draw(g) for g in self.gens]).to(self.device)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (nets, Adam, every seed's random stream, step), as a
        tree that :func:`otgen.engine.checkpoint.save_checkpoint` stores without pickle."""
        return {
            "seeds": list(self.seeds),
            "step": self.step_count,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            # keyed by seed: checkpoints hold RNG records as a mapping
            "rng": {str(s): g.get_state() for s, g in zip(self.seeds, self.gens, strict=True)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != self.seeds:
            raise OTGenError(f"checkpoint seeds {state['seeds']} != this run's {self.seeds}")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for s, g in zip(self.seeds, self.gens, strict=True):
            g.set_state(state["rng"][str(s)].to(torch.uint8).cpu())
        self.step_count = int(state["step"])


class StackedWGANGP(_StackedGAN):
    """WGAN-GP on 2D data for several seeds at once (one :class:`StackedMLP` each for G, D).

    ``sampler(n, generator)`` draws n real points (e.g. ``otgen.data.toy.sample`` bound to a
    data set name). Per seed s the random stream ``torch.Generator().manual_seed(seeds[s])``
    is consumed in this order: G init, D init, then per critic step: real batch, z, t; per
    generator step: z.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        sampler: Sampler,
        cfg: StackedWGANGPConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg = cfg or StackedWGANGPConfig()
        super().__init__(seeds, sampler, device)
        self.G = StackedMLP(self.cfg.g_dims, self.gens).to(self.device)
        self.D = StackedMLP(self.cfg.d_dims, self.gens).to(self.device)
        self._optimizers(self.cfg.betas)

    def _latent(self, n: int) -> torch.Tensor:
        return self._per_seed(lambda g: torch.rand(n, self.cfg.g_dims[0], generator=g) * 2 - 1)

    def train_step(self) -> dict[str, list[float]]:
        """One critic update (and a G update every ``n_critic``-th call); per-seed losses."""
        n = self.cfg.batch_size
        real = self._per_seed(lambda g: self.sampler(n, g))
        z = self._latent(n)
        t = self._per_seed(lambda g: torch.rand(n, 1, generator=g))
        with torch.no_grad():
            fake = self.G(z)
        wdist = self.D(fake).mean(dim=(1, 2)) - self.D(real).mean(dim=(1, 2))
        x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
        gp = (grad.norm(dim=2) - 1).pow(2).mean(dim=1)
        d_loss = wdist + self.cfg.gp_weight * gp  # (S,): each seed's own loss
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.sum().backward()
        self.opt_d.step()
        logs = {"d_loss": d_loss.tolist(), "gp": gp.tolist()}
        self.step_count += 1
        if self.step_count % self.cfg.n_critic == 0:
            g_loss = -self.D(self.G(self._latent(n))).mean(dim=(1, 2))
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.sum().backward()
            self.opt_g.step()
            logs["g_loss"] = g_loss.tolist()
        return self._check(logs)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``(S, n, d)`` samples of every seed's G from latents of a separate ``seed`` stream."""
        g = torch.Generator().manual_seed(seed)
        z = torch.rand(n, self.cfg.g_dims[0], generator=g) * 2 - 1
        return self.G(z.to(self.device).expand(len(self.seeds), -1, -1).contiguous())


@dataclass(frozen=True)
class StackedPacGANConfig:
    """PacGAN's 2D baseline (reference notes): G 2→400×4→2 (BatchNorm + ReLU, no hidden bias),
    D 3 maxout layers (200 units, 5 pieces) → 1 reading ``pack`` samples, z ~ N(0, I₂),
    non-saturating loss, Adam 1e-4 (0.8, 0.999), batch 100, N(0, 0.02) init."""

    g_dims: tuple[int, ...] = (2, 400, 400, 400, 400, 2)
    d_hidden: tuple[int, ...] = (200, 200, 200)
    pieces: int = 5
    pack: int = 1
    batch_size: int = 100
    lr: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.999)


class StackedPacGAN(_StackedGAN):
    """GAN / PacGAN_m on 2D data for several seeds at once; BatchNorm statistics per seed.

    Per step and seed: real batch, z for D's step, z for G's step (G is updated every step).
    D's loss ``softplus(−D(x)) + softplus(D(G(z)))``, G's ``softplus(−D(G(z)))`` (the
    non-saturating GAN, DOT eq. 5), each averaged over that seed's packs.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        sampler: Sampler,
        cfg: StackedPacGANConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg = cfg or StackedPacGANConfig()
        if self.cfg.batch_size % self.cfg.pack:
            raise OTGenError(f"batch {self.cfg.batch_size} is not a multiple of pack")
        super().__init__(seeds, sampler, device)
        c = self.cfg
        self.G = StackedMLP(c.g_dims, self.gens, "relu", batchnorm=True, init="normal")
        d_dims = (c.g_dims[-1] * c.pack, *c.d_hidden, 1)
        self.D = StackedMLP(d_dims, self.gens, maxout_pieces=c.pieces, init="normal")
        self.G.to(self.device)
        self.D.to(self.device)
        self._optimizers(c.betas)

    def _latent(self, n: int) -> torch.Tensor:
        return self._per_seed(lambda g: torch.randn(n, self.cfg.g_dims[0], generator=g))

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        """D on packs: m consecutive samples of a seed's batch concatenated (PacGAN)."""
        return self.D(x.reshape(x.shape[0], x.shape[1] // self.cfg.pack, -1))

    def train_step(self) -> dict[str, list[float]]:
        n = self.cfg.batch_size
        real = self._per_seed(lambda g: self.sampler(n, g))
        z = self._latent(n)
        with torch.no_grad():
            fake = self.G(z)  # train mode, like the single-seed GAN (running stats move)
        d_loss = F.softplus(-self._d(real)).mean(dim=(1, 2)) + F.softplus(self._d(fake)).mean(
            dim=(1, 2)
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.sum().backward()
        self.opt_d.step()
        g_loss = F.softplus(-self._d(self.G(self._latent(n)))).mean(dim=(1, 2))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.sum().backward()
        self.opt_g.step()
        self.step_count += 1
        return self._check({"d_loss": d_loss.tolist(), "g_loss": g_loss.tolist()})

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``(S, n, 2)`` samples in eval mode (running BatchNorm statistics)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.g_dims[0], generator=g).to(self.device)
        self.G.eval()
        try:
            return self.G(z.expand(len(self.seeds), -1, -1).contiguous())
        finally:
            self.G.train()
