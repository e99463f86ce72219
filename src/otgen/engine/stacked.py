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
    """S independent MLPs ``dims[0] → … → dims[-1]`` with leaky ReLU between layers.

    ``forward(x)``: ``x`` is ``(S, B, dims[0])``, the result ``(S, B, dims[-1])``.
    """

    def __init__(self, dims: Sequence[int], gens: Sequence[torch.Generator], slope: float = 0.2):
        super().__init__()
        if len(dims) < 2 or not gens:
            raise OTGenError("StackedMLP needs at least two layer sizes and one seed")
        self.dims, self.slope, self.n_seeds = tuple(dims), slope, len(gens)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        per_seed = [_linear_init(dims, g) for g in gens]  # each seed's layers in its own order
        for i in range(len(dims) - 1):
            # stored (S, d_in, d_out) so that x W is a plain batched matmul
            self.weights.append(nn.Parameter(torch.stack([p[i][0].T for p in per_seed])))
            self.biases.append(nn.Parameter(torch.stack([p[i][1][None] for p in per_seed])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.leaky_relu(x, self.slope)
        return x

    def seed_layers(self, s: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Seed s's layers as ``nn.Linear`` tensors ``(weight (d_out, d_in), bias (d_out,))``."""
        return [(w[s].T.detach().clone(), b[s, 0].detach().clone())
                for w, b in zip(self.weights, self.biases, strict=True)]  # fmt: skip


def _linear_init(dims: Sequence[int], gen: torch.Generator):
    """``nn.Linear``'s default init from ``gen``: weight then bias, U(±1/√fan_in) each
    (kaiming_uniform with a = √5 gives exactly that bound for the weight)."""
    layers = []
    for d_in, d_out in itertools.pairwise(dims):
        bound = 1.0 / math.sqrt(d_in)
        w = torch.empty(d_out, d_in).uniform_(-bound, bound, generator=gen)
        b = torch.empty(d_out).uniform_(-bound, bound, generator=gen)
        layers.append((w, b))
    return layers


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


class StackedWGANGP:
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
        self.seeds = [check_int(s, "seed", minimum=0) for s in seeds]
        if not self.seeds:
            raise OTGenError("give at least one seed")
        self.device, self.sampler = torch.device(device), sampler
        self.gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.G = StackedMLP(self.cfg.g_dims, self.gens).to(self.device)
        self.D = StackedMLP(self.cfg.d_dims, self.gens).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
        self.step_count = 0

    def _per_seed(self, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
        return torch.stack([draw(g) for g in self.gens]).to(self.device)

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
        for name, vals in logs.items():
            if not all(math.isfinite(v) for v in vals):
                raise OTGenError(f"stacked WGAN-GP: non-finite {name} {vals}")
        return logs

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
            "rng": [g.get_state() for g in self.gens],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != self.seeds:
            raise OTGenError(f"checkpoint seeds {state['seeds']} != this run's {self.seeds}")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for g, st in zip(self.gens, state["rng"], strict=True):
            g.set_state(st.to(torch.uint8).cpu())
        self.step_count = int(state["step"])

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``(S, n, d)`` samples of every seed's G from latents of a separate ``seed`` stream."""
        g = torch.Generator().manual_seed(seed)
        z = torch.rand(n, self.cfg.g_dims[0], generator=g) * 2 - 1
        return self.G(z.to(self.device).expand(len(self.seeds), -1, -1).contiguous())
