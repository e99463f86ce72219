"""Baseline GANs: the losses of DOT eqs. (1)-(7) plus LSGAN, gradient penalty, weight clipping,
spectral normalisation, packing and class conditioning.

With discriminator logits u, DOT writes the two objectives as (eqs. 1-2)

    V_D = E_{x~p}[f(-D(x))] + E_{y~p_G}[f(D(y))],      V_G = E_{y~p_G}[g(D(y))],

both *minimised* here (the paper's D ascent on -V_D is the same step). The choices of f, g:

============ =============================== ===================================== ==========
``loss``     f(u)                            g(u)                                   reference
============ =============================== ===================================== ==========
"ns"         softplus(u) = log(1 + e^u)      f(-u) = softplus(-u) (non-saturating)  eq. (5)
"minimax"    softplus(u)                     -f(u) = -softplus(u) = log(1 - σ(u))   Goodfellow
"hinge"      max(0, 1 + u)                   -u                                     eq. (6)
"wgan"       u                               -u                                     eq. (7)
"wgan-gp"    u  (+ λ E(‖∇D(x̂)‖ - 1)²)        -u                                     eq. (7)
"lsgan"      ½(D(x) - 1)² + ½ D(y)²          ½(D(y) - 1)²                           Mao et al.
============ =============================== ===================================== ==========

(For "hinge", f(-D(x)) = max(0, 1 - D(x)) on real data, as in eq. (6).)

Training (:meth:`GAN.train_step`): each call is one discriminator update on the given real
batch; the generator is updated on every ``n_critic``-th call (so ``steps`` counts critic
updates, and each critic update sees a fresh real batch as in Gulrajani et al., Algorithm 1).
Logs: ``d_loss`` (with the penalty), ``d_out_real``/``d_out_fake`` (mean raw output of D: a
logit for ns/minimax/hinge, the critic value for WGAN, the score for LSGAN), ``gp``, and
``g_loss``, the latest generator loss (present from the first generator update on).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import adam, check_betas, check_finite_loss, eval_mode, frozen
from otgen.methods.base import Method
from otgen.methods.latent import PRIORS, draw_latent
from otgen.nets import KINDS, build_discriminator, build_generator, default_kind
from otgen.nets.layers import scores_each_sample
from otgen.utils.checks import check_choice, check_int, check_positive

LOSSES = ("ns", "minimax", "hinge", "wgan", "wgan-gp", "lsgan")
OPTIMIZERS = ("adam", "rmsprop")


# -- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class GANConfig:
    """Hyper-parameters of the baseline GAN (``otgen train --method gan``).

    ``arch``: network kind of ``otgen.nets`` ("auto": "mlp" for points, "dcgan" for images);
    ``width`` its size knob (None: the paper's size; see ``otgen.nets.build_generator``).
    ``latent_dim``/``spectral_norm`` None: the architecture's default. ``n_critic``: D updates
    per G update. ``clip``: WGAN weight clipping bound. ``gp_weight``: λ of "wgan-gp".
    ``pack``: PacGAN packing degree (batch sizes must be multiples of it). TTUR: ``lr_d`` may
    differ from ``lr_g``.
    """

    loss: str = "ns"
    arch: str = "auto"
    width: int | None = None
    latent_dim: int | None = None
    prior: str = "normal"
    conditional: bool = False
    spectral_norm: bool | None = None
    pack: int = 1
    init: str = "auto"
    n_critic: int = 1
    gp_weight: float = 10.0
    clip: float | None = None
    optimizer: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.arch, "arch", ("auto", *KINDS))
        check_choice(self.prior, "prior", PRIORS)
        check_choice(self.init, "init", ("auto", "normal", "default"))
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.width is not None:
            check_int(self.width, "width")
        if self.latent_dim is not None:
            check_int(self.latent_dim, "latent_dim")
        check_int(self.pack, "pack")
        check_int(self.n_critic, "n_critic")
        check_positive(self.lr_g, "lr_g")
        check_positive(self.lr_d, "lr_d")
        check_positive(self.gp_weight, "gp_weight")
        if self.clip is not None:
            check_positive(self.clip, "clip")
        check_betas(beta1=self.beta1, beta2=self.beta2)
        if self.conditional and self.pack > 1:
            raise OTGenError("conditional=True cannot be combined with pack > 1")


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """DCGAN (Radford et al. 2016): non-saturating loss, Adam 2e-4 (0.5, 0.999), N(0, 0.02)."""

    arch: str = "auto"
    init: str = "normal"


@dataclass(frozen=True)
class WGANConfig(GANConfig):
    """WGAN (Arjovsky et al. 2017): clipping 0.01, RMSprop 5e-5, 5 critic steps."""

    loss: str = "wgan"
    clip: float | None = 0.01
    n_critic: int = 5
    optimizer: str = "rmsprop"
    lr_g: float = 5e-5
    lr_d: float = 5e-5


@dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """WGAN-GP (Gulrajani et al. 2017): λ = 10, 5 critic steps, Adam 1e-4 (0.5, 0.9)."""

    loss: str = "wgan-gp"
    n_critic: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9


@dataclass(frozen=True)
class SNGANConfig(GANConfig):
    """SNGAN (Miyato et al. 2018): spectral norm in D, hinge loss (or "ns"), Adam 2e-4
    (0.5, 0.999), one critic step (the standard-CNN setting)."""

    loss: str = "hinge"
    spectral_norm: bool | None = True


@dataclass(frozen=True)
class LSGANConfig(GANConfig):
    """LSGAN (Mao et al. 2017), a = 0, b = c = 1."""

    loss: str = "lsgan"


@dataclass(frozen=True)
class PacGANConfig(GANConfig):
    """PacGAN (Lin et al. 2018) as the AE-OT paper compares it: PacGAN nets, non-saturating loss,
    Adam 1e-4 β1 0.8, N(0, 0.02) init; ``pack`` 4 (grid25) or 2 (ring8)."""

    arch: str = "pacgan"
    pack: int = 4
    init: str = "normal"
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.8


# -- losses (pure functions, reused by DOT and AE-OT-GAN) --------------------------------------
def _flat(logits: torch.Tensor) -> torch.Tensor:
    return logits.reshape(-1)


def d_loss(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss to minimise (DOT eq. 1 with f from eqs. 5-7, or LSGAN)."""
    check_choice(loss, "loss", LOSSES)
    real, fake = _flat(real_logits), _flat(fake_logits)
    if loss in ("ns", "minimax"):
        # softplus(-u) = -log σ(u) and softplus(u) = -log(1 - σ(u)), computed without
        # forming σ(u), so large |u| never gives log(0).
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if loss in ("wgan", "wgan-gp"):
        return fake.mean() - real.mean()
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()  # lsgan, a=0, b=c=1


def g_loss(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss to minimise (DOT eq. 2 with g from eqs. 5-7, or LSGAN)."""
    check_choice(loss, "loss", LOSSES)
    fake = _flat(fake_logits)
    if loss == "ns":
        return F.softplus(-fake).mean()
    if loss == "minimax":
        return -F.softplus(fake).mean()
    if loss in ("hinge", "wgan", "wgan-gp"):
        return -fake.mean()
    return 0.5 * (fake - 1.0).pow(2).mean()


def gradient_penalty(
    D: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    center: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty E[(‖∇_x̂ D(x̂)‖₂ - center)²] at x̂ = t·real + (1 - t)·fake, t ~ U(0, 1)
    per sample (Gulrajani et al. 2017, eq. 3; DOT uses it with eq. 7).

    The gradient norm is taken per row of D's output, so a packed D (m samples per output)
    is penalised on its packed input, the function the Lipschitz constraint is about.
    ``create_graph=True`` so the penalty itself can be back-propagated into D's weights.
    """
    if real.shape != fake.shape:
        raise OTGenError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    t = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    x_hat = (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)
    out = D(x_hat) if labels is None else D(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.reshape(out.shape[0], -1).norm(dim=1)
    return (norms - center).pow(2).mean()


# -- the method ----------------------------------------------------------------------------------
class GAN(Method):
    """Alternating GAN training (DOT eqs. 3-4) with the loss named by ``cfg.loss``.

    Public attributes besides the :class:`Method` contract: ``latent_dim``, ``prior``
    ("normal" = N(0, I) | "uniform" = U(-1, 1)^d), ``conditional``, ``num_classes``,
    :meth:`sample_latent`, :meth:`generate`.
    """

    name = "gan"
    Config = GANConfig

    def __init__(self, cfg: GANConfig | None, spec: DataSpec, device: torch.device) -> None:
        cfg = self.Config() if cfg is None else cfg
        if not isinstance(cfg, GANConfig):
            raise OTGenError(f"{self.name}: expected a GANConfig, got {type(cfg).__name__}")
        super().__init__(cfg, spec, torch.device(device))
        if cfg.conditional and not spec.num_classes:
            raise OTGenError("conditional=True needs labelled data (spec.num_classes is not set)")
        self.conditional = cfg.conditional
        self.num_classes = spec.num_classes if cfg.conditional else None
        self.prior = cfg.prior
        self.arch = default_kind(spec) if cfg.arch == "auto" else cfg.arch
        G = build_generator(
            self.arch,
            spec,
            cfg.latent_dim,
            num_classes=self.num_classes,
            init=cfg.init,
            width=cfg.width,
        )
        D = build_discriminator(
            self.arch,
            spec,
            num_classes=self.num_classes,
            spectral_norm=cfg.spectral_norm,
            pack=cfg.pack,
            init=cfg.init,
            width=cfg.width,
            **self._critic_options(cfg),
        )
        self.latent_dim = G.latent_dim
        self._last_g_loss: float | None = None
        self.nets = {"G": G.to(self.device), "D": D.to(self.device)}
        self._joint_d = scores_each_sample(D)
        self.optimizers = {
            "G": self._optimizer(G, cfg.lr_g),
            "D": self._optimizer(D, cfg.lr_d),
        }

    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        return adam(net.parameters(), lr, (self.cfg.beta1, self.cfg.beta2))

    # -- latents and sampling -------------------------------------------------------------------
    def sample_latent(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latents from the prior on ``self.device`` (labels do not change the prior)."""
        return draw_latent(self.prior, (n, self.latent_dim), self.device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``G(z | labels)``, differentiable in ``z`` (DOT's latent transport needs that)."""
        G = self.nets["G"]
        if self.conditional:
            if labels is None:
                raise OTGenError("conditional GAN: pass labels to generate()")
            return G(z, labels.to(self.device))
        return G(z)

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples in eval mode (BatchNorm running statistics); random labels if
        conditional and none given; labels are ignored by an unconditional GAN."""
        if self.conditional and labels is None:
            labels = torch.randint(self.num_classes, (n,), device=self.device)
        if labels is not None and labels.shape != (n,):
            raise OTGenError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        with eval_mode(self.nets["G"]), torch.no_grad():
            return self.generate(self.sample_latent(n, labels), labels)

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        cfg = self.cfg
        n = x.shape[0] - x.shape[0] % cfg.pack  # packs must be whole: drop the remainder
        if n == 0:
            raise OTGenError(f"batch of {x.shape[0]} samples is smaller than pack={cfg.pack}")
        x = x[:n].to(self.device)
        labels = None
        if self.conditional:
            if y is None:
                raise OTGenError("conditional GAN: the data has no labels")
            labels = y[:n].to(self.device).long()
        G, D = self.nets["G"], self.nets["D"]
        # Gulrajani et al., Alg. 1 lines 2-9 / DOT eq. (3): one critic step on this real batch
        logs = self._critic_step(G, D, x, labels)
        # Alg. 1 lines 10-12 / DOT eq. (4): a generator step after every n_critic critic steps
        if (step + 1) % cfg.n_critic == 0:
            self._last_g_loss = self._generator_step(G, D, n, labels)
        if self._last_g_loss is not None:
            # Repeated between G updates so a logger's per-window mean of "g_loss" is the
            # mean of the generator losses in that window (not diluted by critic-only steps).
            logs["g_loss"] = self._last_g_loss
        return logs

    def _critic_step(self, G, D, x, labels) -> dict[str, float]:
        cfg = self.cfg
        with torch.no_grad():
            fake = self.generate(self.sample_latent(x.shape[0], labels), labels)
        real_out, fake_out = self._d_real_fake(D, x, fake, labels)
        loss = d_loss(cfg.loss, real_out, fake_out)
        logs = {"d_out_real": real_out.mean().item(), "d_out_fake": fake_out.mean().item()}
        if cfg.loss == "wgan-gp":
            gp = gradient_penalty(D, x, fake, labels)
            logs["gp"] = gp.item()
            loss = loss + cfg.gp_weight * gp
        check_finite_loss(loss, "discriminator loss")
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cfg.clip is not None:  # WGAN: keep D in a compact set, a crude Lipschitz bound
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-cfg.clip, cfg.clip)
        logs["d_loss"] = loss.item()
        return logs

    def _generator_step(self, G, D, n, labels) -> float:
        fake = self.generate(self.sample_latent(n, labels), labels)
        with frozen(D):  # back-propagate through D without its weight gradients (unused)
            loss = g_loss(self.cfg.loss, self._d(D, fake, labels))
            check_finite_loss(loss, "generator loss")
            opt = self.optimizers["G"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        return loss.item()

    @staticmethod
    def _d(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return D(x) if labels is None else D(x, labels)

    def _critic_options(self, cfg: GANConfig) -> dict:
        """No batch norm in a WGAN-GP critic (Gulrajani et al. 2017, §4): the penalty constrains
        the gradient of one sample's score, and batch norm makes every score a function of
        the whole batch. The conv critics (dcgan, infogan) have it by default; the others
        never do."""
        if cfg.loss == "wgan-gp" and self.arch in ("dcgan", "infogan"):
            return {"batchnorm": False}
        return {}

    def _d_real_fake(self, D, real, fake, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """D's outputs on the real and the (equally many) fake samples. A D that scores each
        sample on its own (:func:`scores_each_sample`) gets both in one call: the same
        outputs, but one pass and one weight gradient per layer instead of two that backward
        then sums (a 2D PacGAN step: ~15% less time, issue 14). Batch norm or spectral norm
        in D: two calls, as the papers' updates are written."""
        if not self._joint_d:
            return self._d(D, real, labels), self._d(D, fake, labels)
        if real.shape != fake.shape or real.shape[0] % self.cfg.pack:
            raise OTGenError(
                f"one D call needs equal batches of whole packs of "
                f"{self.cfg.pack}: got {tuple(real.shape)}, {tuple(fake.shape)}"
            )
        both_labels = None if labels is None else torch.cat([labels, labels])
        out = self._d(D, torch.cat([real, fake]), both_labels)
        return out[: out.shape[0] // 2], out[out.shape[0] // 2 :]


# -- presets: same algorithm, the papers' hyper-parameters as defaults -------------------------
class DCGAN(GAN):
    name = "dcgan"
    Config = DCGANConfig


class WGAN(GAN):
    name = "wgan"
    Config = WGANConfig


class WGANGP(GAN):
    name = "wgan-gp"
    Config = WGANGPConfig


class SNGAN(GAN):
    name = "sngan"
    Config = SNGANConfig


class LSGAN(GAN):
    name = "lsgan"
    Config = LSGANConfig


class PacGAN(GAN):
    name = "pacgan"
    Config = PacGANConfig
