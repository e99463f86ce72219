"""EOTGAN: the EOT-based GAN of Liu et al. (EOT paper, §2.2.2, eqs. 6-11, Algorithm 2).

A representation network f: X -> R^m (``otgen.nets.eot``) and a generator g are trained in
turn. With feature costs ``[M_f]_ij = ‖f(x_i) − f(y_j)‖²`` (eq. 6) and the entropic OT cost
W of eq. (1) (Sinkhorn, ``otgen.ot.sinkhorn``; ε is the paper's λ, POT's ``reg``):

    L_f = max(0, W(P_f, P_f) − W(P_f, Q_f) + γ)      (eq. 10, f's hinge/triplet loss)
    L_g = W(P_f, Q_f)                                 (eqs. 9-10)

f wants two real batches {x}, {x̃} closer (in W) than real and generated ones by a margin γ;
g tries to close that gap (eq. 11). One call of :meth:`EOTGAN.train_step` is one pass of
Algorithm 2's loop: lines 2-7 update f (``f_steps`` times per g update), lines 8-11 update g.

Which W is differentiated (``Config.grad``):

``"plan"`` (default; Algorithm 2 lines 6 and 10, the authors' code)
    π* is solved on detached features and held fixed; ⟨π*, M_f⟩ is back-propagated, so the
    gradient flows through the cost matrix only (``SinkhornResult.cost``).
``"dual"``
    the entropic value ⟨π*, M_f⟩ − εH(π*) = ⟨a, α*⟩ + ⟨b, β*⟩ with its envelope gradient
    (``SinkhornResult.value``). Same gradient w.r.t. the features at the fixed point; the
    values differ by εH(π*), which moves where the hinge of L_f switches off.

Batches (Algorithm 2, lines 2-5): the anchor {x} and positive {x̃} real batches are the two halves
of the engine's batch, and g draws as many samples as one half, so all three sets have
N = batch_size // 2 points (an odd last sample is dropped). Latents are 100-d N(0, I); g is the
DCGAN generator of ``otgen.nets.dcgan``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import check_betas, check_finite_loss, eval_mode, frozen, grad_norm
from otgen.methods.base import Method
from otgen.utils.checks import check_choice, check_int, check_positive

GRADS = ("plan", "dual")
OPTIMIZERS = ("rmsprop", "adam")


@dataclass(frozen=True)
class Config:
    """EOTGAN hyper-parameters; defaults: the authors' MNIST settings.

    ``m``: feature dimension of f (2). ``eps``: entropy weight ε (5, in units of the squared
    feature distance). ``gamma``: hinge margin γ of eq. (10) (5). ``f_steps``: f updates per g
    update (1). ``width``: base channels of the DCGAN generator (None: 64).
    """

    m: int = 2
    eps: float = 5.0
    gamma: float = 5.0
    grad: str = "plan"
    latent_dim: int = 100
    width: int | None = None
    f_steps: int = 1
    optimizer: str = "rmsprop"
    lr_g: float = 1e-4
    lr_f: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam only
    sinkhorn_tol: float = 1e-3
    sinkhorn_max_iter: int = 1000

    def __post_init__(self) -> None:
        check_choice(self.grad, "EOTGAN gradient rule", GRADS)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        for name in ("eps", "gamma", "lr_g", "lr_f", "sinkhorn_tol"):
            check_positive(getattr(self, name), name)
        for name in ("m", "latent_dim", "f_steps", "sinkhorn_max_iter"):
            check_int(getattr(self, name), name)
        if self.width is not None:
            check_int(self.width, "width")
        check_betas(betas=self.betas)
        object.__setattr__(self, "betas", tuple(self.betas))  # YAML lists -> hashable tuple


# -- the losses of eq. (10) (pure functions) ---------------------------------------------------
@dataclass(frozen=True)
class EOTTerm:
    """One differentiable entropic OT term W(features_x, features_y) and solver diagnostics."""

    loss: torch.Tensor
    n_iter: int
    marginal_error: float
    converged: bool


def eot_term(
    fx: torch.Tensor,
    fy: torch.Tensor,
    *,
    eps: float,
    grad: str = "plan",
    tol: float = 1e-3,
    max_iter: int = 1000,
) -> EOTTerm:
    """W(P_f, Q_f) of eqs. (7)-(9) between feature batches ``fx`` (n, m), ``fy`` (k, m).

    ``grad="plan"``: ⟨π*, M_f⟩ with π* fixed (gradient through M_f only); ``"dual"``: the
    entropic value with its envelope gradient. Sinkhorn itself is never back-propagated.
    """
    from otgen.ot.sinkhorn import sinkhorn

    check_choice(grad, "EOTGAN gradient rule", GRADS)
    res = sinkhorn(fx, fy, eps=eps, tol=tol, max_iter=max_iter)
    loss = res.cost if grad == "plan" else res.value
    check_finite_loss(loss, "EOT cost of the features", "try a larger eps")
    return EOTTerm(loss, res.n_iter, res.marginal_error, res.converged)


def f_loss(w_real: torch.Tensor, w_fake: torch.Tensor, gamma: float) -> torch.Tensor:
    """L_f = max(0, W(P_f, P_f) − W(P_f, Q_f) + γ) (eq. 10)."""
    return F.relu(w_real - w_fake + gamma)


def g_loss(w_fake: torch.Tensor) -> torch.Tensor:
    """L_g = W(P_f, Q_f) (eq. 10)."""
    return w_fake


# -- the method -------------------------------------------------------------------------------
class EOTGAN(Method):
    """Algorithm 2 of the EOT paper. Nets: ``"G"`` (generator g), ``"F"`` (representation f).

    Follows the latent-generator convention of :mod:`otgen.methods.base` (``latent_dim``,
    ``prior``, :meth:`sample_latent`, :meth:`generate`).
    """

    name = "eotgan"
    Config = Config
    prior = "normal"
    conditional = False

    def __init__(self, cfg: Config | None, spec: DataSpec, device: torch.device) -> None:
        from otgen.nets import build_generator
        from otgen.nets.eot import RepresentationNet

        cfg = Config() if cfg is None else cfg
        if not isinstance(cfg, Config):
            raise OTGenError(f"eotgan: expected an eotgan Config, got {type(cfg).__name__}")
        if not spec.is_image:
            raise OTGenError(f"EOTGAN needs image data (C, H, W), got data shape {spec.shape}")
        super().__init__(cfg, spec, torch.device(device))
        self.latent_dim = cfg.latent_dim
        G = build_generator("dcgan", spec, cfg.latent_dim, width=cfg.width)
        f = RepresentationNet(tuple(spec.shape), m=cfg.m)
        self.nets = {"G": G.to(self.device), "F": f.to(self.device)}
        self.optimizers = {"G": self._optimizer(G, cfg.lr_g), "F": self._optimizer(f, cfg.lr_f)}
        self._last_g: dict[str, float] = {}

    @property
    def discriminator(self) -> nn.Module:
        return self.nets["F"]

    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(net.parameters(), lr=lr, betas=self.cfg.betas)
        return torch.optim.RMSprop(net.parameters(), lr=lr)

    def _w(self, fx: torch.Tensor, fy: torch.Tensor) -> EOTTerm:
        c = self.cfg
        return eot_term(
            fx, fy, eps=c.eps, grad=c.grad, tol=c.sinkhorn_tol, max_iter=c.sinkhorn_max_iter
        )

    # -- latents and sampling -------------------------------------------------------------------
    def sample_latent(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)  # P_z = N(0, I)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.nets["G"](z)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        with eval_mode(self.nets["G"]):
            return self.generate(self.sample_latent(check_int(n, "n")))

    # -- Algorithm 2 ----------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        n = x.shape[0] // 2
        if n < 2:
            raise OTGenError(f"EOTGAN needs a batch of at least 4 images, got {x.shape[0]}")
        x = x.to(self.device)
        x_a, x_p = x[:n], x[n : 2 * n]  # line 2: two real batches (halves of the batch)
        with torch.no_grad():
            fake = self.generate(self.sample_latent(n))  # line 3
        logs = self.representation_step(x_a, x_p, fake)  # lines 4-7
        if (step + 1) % self.cfg.f_steps == 0:
            self._last_g = self.generator_step(x_a, self.sample_latent(n))  # lines 8-11
        return {**logs, **self._last_g}

    def representation_step(
        self, x_a: torch.Tensor, x_p: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, float]:
        """Lines 4-7: one descent step of ω on L_f (eq. 10); ``fake`` carries no gradient."""
        f = self.nets["F"]
        fa = f(x_a)
        w_real = self._w(fa, f(x_p))  # line 4: W(P_f, P_f), eq. (7)
        w_fake = self._w(fa, f(fake.detach()))  # line 5: W(P_f, Q_f), eq. (8)
        loss = f_loss(w_real.loss, w_fake.loss, self.cfg.gamma)  # line 6
        opt = self.optimizers["F"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()  # line 7
        return {
            "f_loss": float(loss.detach()),
            "w_real": float(w_real.loss.detach()),
            "w_fake_f": float(w_fake.loss.detach()),
            "hinge_active": float(loss.detach() > 0),
            "sinkhorn_iters": float(max(w_real.n_iter, w_fake.n_iter)),
            "sinkhorn_converged": float(w_real.converged and w_fake.converged),
        }

    def generator_loss(self, x_a: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, EOTTerm]:
        """L_g = W(P_f, Q_f) of g(z) against the real batch ``x_a`` (lines 8-10), f fixed."""
        f = self.nets["F"]
        with frozen(f):
            with torch.no_grad():
                fa = f(x_a)
            w = self._w(fa, f(self.generate(z)))  # line 9
        return g_loss(w.loss), w

    def generator_step(self, x_a: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        """Lines 8-11: one descent step of θ on L_g; f's weights get no gradient."""
        loss, w = self.generator_loss(x_a, z)
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss.backward()  # line 10
        norm = grad_norm(self.nets["G"])
        opt.step()  # line 11
        return {
            "g_loss": float(loss.detach()),
            "g_grad_norm": norm,
            "g_sinkhorn_iters": float(w.n_iter),
        }
