"""EOTGM: the entropy-regularised OT generative model (Liu et al., EOT paper, Algorithm 1).

Each step compares a real batch {x_i} with a generated batch {y_j = g(z_j)}, z ~ N(0, I), by
the entropic OT cost of eq. (1),

    W(P, Q) = min_{π ∈ Π(P, Q)} ⟨π, M⟩ − ε H(π),      M_ij = ‖x_i − y_j‖²,

solved by Sinkhorn (eq. 3; ε is the paper's λ, POT's ``reg``), and moves θ down its gradient.
Algorithm 1 offers two update rules, both available as ``Config.update``:

``"dual"`` (eq. 5)
    ∇_θ W = (∇_θ Q)ᵀ β*: the optimal dual potential β* on the generated side is differentiated
    through the positions y_j. β* is extended to any point y by its c-transform against the
    real-side potential α* (held fixed),
    β(y) = ε log b − ε log Σ_i exp((α*_i − ‖x_i − y‖²)/ε) (π = exp((α + β − M)/ε), POT's
    convention), and the loss is Σ_j b_j β(y_j) (+ the constant ⟨a, α*⟩);
    its gradient Σ_i π_ij ∇_y M_ij is the envelope-theorem gradient of W.
``"plan"`` (the "back propagate using loss ⟨π*, M⟩" alternative)
    π* is computed without gradient and held fixed; the loss ⟨π*, M(θ)⟩ is back-propagated,
    so the gradient flows through the cost matrix only (the authors' code does this).

At an exact Sinkhorn fixed point both rules give the same gradient (the envelope theorem); with
a finite tolerance they differ only by which half-step's plan is used: ``dual`` uses the plan
whose generated-side marginal is exact, ``plan`` the solver's returned plan.

Generators are pluggable (:data:`GENERATORS`): an MLP for 2D points, and for images (treated
as flattened pixel vectors, eq. (1) on pixels, the paper's MNIST EOTGM) the DCGAN generator of
``otgen.nets.dcgan``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import check_betas, check_finite_loss, eval_mode
from otgen.methods.base import Method
from otgen.nets import build_generator as build_network
from otgen.nets.mlp import MLP
from otgen.utils.checks import check_choice, check_int, check_positive

UPDATES = ("dual", "plan")
OPTIMIZERS = ("adam", "rmsprop")

# Paper defaults that depend on the data kind (EOT paper, §3):
# 2D toy: z in R^2, ε = 0.5, Adam 5e-4 (0.5, 0.9); pixels (MNIST): z in R^100, ε = 15,
# RMSprop 1e-4.
_TOY_DEFAULTS = {"latent_dim": 2, "eps": 0.5, "optimizer": "adam", "lr": 5e-4}
_IMAGE_DEFAULTS = {"latent_dim": 100, "eps": 15.0, "optimizer": "rmsprop", "lr": 1e-4}


@dataclass(frozen=True)
class Config:
    """EOTGM hyper-parameters; ``None`` fields take the paper's value for the data kind.

    ``hidden``: the 2D generator's hidden widths. The paper's text (Sec. 3.2) lists four
    Dense-256 + ReLU layers before the output; the authors' toy code uses three. The default
    follows the paper text; ``hidden=(256, 256, 256)`` gives the code's network.
    """

    update: str = "dual"  # "dual" (eq. 5) or "plan" (back-propagate ⟨π*, M⟩)
    latent_dim: int | None = None  # 2 for points, 100 for images
    eps: float | None = None  # entropy weight λ of eq. (1): 0.5 toy, 15 pixels
    hidden: tuple[int, ...] = (256, 256, 256, 256)
    generator: str = "auto"  # "auto" (mlp for points, dcgan for images) or a GENERATORS key
    optimizer: str | None = None  # "adam" (toy) or "rmsprop" (pixels)
    lr: float | None = None  # 5e-4 toy, 1e-4 pixels
    betas: tuple[float, float] = (0.5, 0.9)  # Adam only
    sinkhorn_tol: float = 1e-3  # marginal error at which Sinkhorn stops
    sinkhorn_max_iter: int = 1000
    width: int | None = None  # base channels of the image (DCGAN) generator; None: 64

    def __post_init__(self) -> None:
        check_choice(self.update, "EOTGM update rule", UPDATES)
        if self.width is not None:
            check_int(self.width, "width")
        if self.optimizer is not None:
            check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        for name in ("eps", "lr", "sinkhorn_tol"):
            if getattr(self, name) is not None:
                check_positive(getattr(self, name), name)
        if self.latent_dim is not None:
            check_int(self.latent_dim, "latent_dim")
        check_int(self.sinkhorn_max_iter, "sinkhorn_max_iter")
        for width in self.hidden:
            check_int(width, "hidden width")
        check_betas(betas=self.betas)
        # configs from YAML/CLI carry lists: store tuples so the config stays hashable
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "betas", tuple(self.betas))

    def resolved(self, spec: DataSpec) -> Config:
        """This config with every ``None`` replaced by the paper default for ``spec``."""
        defaults = _IMAGE_DEFAULTS if spec.is_image else _TOY_DEFAULTS
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


# -- generators ---------------------------------------------------------------------------


def _mlp_generator(spec: DataSpec, cfg: Config) -> nn.Module:
    if spec.is_image:
        raise OTGenError("the mlp generator is for 2D/vector data; use generator='dcgan'")
    return MLP(cfg.latent_dim, spec.shape[0], hidden=cfg.hidden, activation="relu")


def _dcgan_generator(spec: DataSpec, cfg: Config) -> nn.Module:
    """The DCGAN generator of :mod:`otgen.nets.dcgan` for image data (flattened in the loss),
    with DCGAN's N(0, 0.02) initialisation: EOT paper §3.3, "generator g uses the same setting
    as that of DCGAN and WGAN" (and EOTGAN's generator is built the same way)."""
    if not spec.is_image:
        raise OTGenError("the dcgan generator needs image data (C, H, W)")
    return build_network("dcgan", spec, cfg.latent_dim, width=cfg.width)


GENERATORS: dict[str, Callable[[DataSpec, Config], nn.Module]] = {
    "mlp": _mlp_generator,
    "dcgan": _dcgan_generator,
}


def build_generator(spec: DataSpec, cfg: Config) -> nn.Module:
    """The generator g: z -> sample for ``spec`` (MLP for points, DCGAN for images)."""
    name = cfg.generator
    if name == "auto":
        name = "dcgan" if spec.is_image else "mlp"
    check_choice(name, "generator", ["auto", *GENERATORS])
    return GENERATORS[name](spec, cfg)


# -- the algorithm ------------------------------------------------------------------------


class EOTGM(Method):
    """Algorithm 1 of the EOT paper: minimise W(P, Q_θ) over the generator's parameters."""

    name = "eotgm"
    Config = Config

    def __init__(self, cfg: Config, spec: DataSpec, device: torch.device) -> None:
        cfg = cfg.resolved(spec)
        super().__init__(cfg, spec, device)
        self.nets["G"] = build_generator(spec, cfg).to(device)
        params = self.nets["G"].parameters()
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)
        else:
            opt = torch.optim.RMSprop(params, lr=cfg.lr)
        self.optimizers["G"] = opt

    # Algorithm 1, lines 2-7 --------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        z = self._latent(x.shape[0])  # line 3
        loss, logs = self.loss(x, z)  # lines 4-6
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss.backward()  # line 7: θ ← θ − l ∇θ
        opt.step()
        return logs

    def loss(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The differentiable EOTGM loss of the real batch ``x`` and latents ``z``, and logs.

        The Sinkhorn solve (line 6) runs on detached points: only the final loss carries the
        graph, so the solver's iterations are never back-propagated.
        """
        from otgen.ot.costs import cost_matrix
        from otgen.ot.sinkhorn import sinkhorn, transport_cost

        x = x.to(self.device).flatten(1)  # images: eq. (1) on pixel vectors
        fake = self.nets["G"](z).flatten(1)  # line 4
        res = sinkhorn(  # line 6 (eq. 3), on detached points
            x,
            fake.detach(),
            eps=self.cfg.eps,
            tol=self.cfg.sinkhorn_tol,
            max_iter=self.cfg.sinkhorn_max_iter,
        )
        if self.cfg.update == "plan":
            loss = transport_cost(x, fake, res.plan())  # ⟨π*, M(θ)⟩, π* detached
        else:
            loss = self._dual_loss(res.f.detach(), cost_matrix(x, fake))
        check_finite_loss(loss, "EOTGM loss", "try a larger eps")
        logs = {
            "loss": float(loss.detach()),
            "eot": float(res.value),
            "sinkhorn_iters": float(res.n_iter),
            "marginal_error": float(res.marginal_error),
            "sinkhorn_converged": float(res.converged),  # 0: max_iter hit, gradient approximate
        }
        return loss, logs

    def _dual_loss(self, alpha: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """⟨a, α*⟩ + ⟨b, β(y)⟩, β the c-transform of the fixed α* (eq. 5 through y).

        With POT's convention π_ij = exp((α_i + β_j − M_ij)/ε) (eq. 3), the column update of
        Sinkhorn defines β for any generated point y_j:
        β(y_j) = ε log b_j − ε log Σ_i exp((α*_i − M_ij)/ε). Its value is the dual objective
        of eq. (2) at (α*, β); log-sum-exp keeps it finite for costs ≫ ε (pixel data), where
        exp(−M/ε) underflows.
        """
        eps, k = self.cfg.eps, m.shape[1]
        beta = -eps * (torch.logsumexp((alpha.reshape(-1, 1) - m) / eps, dim=0) + math.log(k))
        return alpha.sum() / m.shape[0] + beta.mean()  # uniform weights a = 1/n, b = 1/k

    def _latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.device)  # P_z = N(0, I)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        with eval_mode(self.nets["G"]):
            out = self.nets["G"](self._latent(check_int(n, "n")))
        return out.reshape(n, *self.spec.shape)
