"""MBGAN: the metric-based GAN of Dai, Xie and Fang (MBGAN paper, §3, eqs. 1-6, Algorithm 1).

The discriminator D is a deep embedding x -> D(x) ∈ R^K (the DCGAN discriminator with a
K-unit linear output, K = 500) and d(a, b) = ‖D(a) − D(b)‖₂ (eq. 3). On triplets of two real
samples x_i, x_j and a generated G(z) (z ~ U(0, 1)^100 in the paper, see "Latent prior"):

    L_D(x_i, x_j, z) = max{0, h(x_j, G(z)) + d(x_i, x_j) − d(x_i, G(z))}     (eq. 1)
    L_G(x_j, z)      = d(x_j, G(z))                                           (eq. 2)
    h(x_j, G(z))     = α ‖x_j − G(z)‖₁                                        (eq. 4)

D pulls real samples together and pushes the generated one at least the data-dependent margin
h further away (a triplet loss with anchor x_i, positive x_j, negative G(z)); G pulls its
samples towards real ones in D's space. Algorithm 1: one D step, then ``g_steps`` (the paper's
N) G steps on fresh z. Both losses are averaged over the triplets of a batch.

**Latent prior** (``prior``; the one departure from the paper's letter, measured in
docs/mbgan.md): the paper draws z ~ U(0, 1)^100 (``"uniform01"``). Fed to the DCGAN
generator, whose bias-free projection z -> 7x7 maps is followed by a *per-channel* BatchNorm,
the non-zero mean E[z] = ½·1 becomes a sample-independent 7x7 pattern that BatchNorm does not
remove (it varies over positions), so at initialisation the shared part of the projection
outweighs the per-sample part, and every run with U(0, 1) collapsed to one or two digit
classes (``benchmarks/studies/mbgan_collapse.py``; a plain DCGAN does the same). The default
``"uniform"`` draws z ~ U(−1, 1)^100 = 2·U(0, 1) − 1 (DCGAN's prior, the affine image of the
paper's z): the same runs cover all 10 classes. ``"normal"`` (N(0, I)) behaves the same.

Choices the paper leaves open (documented in docs/mbgan.md):

- **L1 normalisation** (``margin_norm``): ``"sum"`` (default) is the paper's ‖x_j − G(z)‖₁,
  the raw sum over pixels; ``"mean"`` divides it by the pixel count (h ∈ [0, 2α], the scale
  of LS-GAN's per-pixel margin). With the sum on 28x28 images in [-1, 1], h ~ 10²·α, so for
  α ≥ 2 the hinge is active on every triplet and D's gradient does not depend on α at all.
  Measured on digits (benchmarks/results/mbgan), the sum trains as well as the per-pixel mean
  (better FID after 300 steps, similar after 1,000), so the literal reading is the default.
- **Triplets from a batch**: the engine's batch of B real images gives B anchors x_i; the
  positive x_j of anchor i is the next image of the (shuffled) batch (a roll by one; with
  labels, the next image of the same class), and B latents give the negatives G(z).
- **The margin carries no gradient**: h is a per-triplet constant in D's step (G(z) is
  detached there), as a margin is in LS-GAN.
- **Conditional MBGAN** (§3.3, eqs. 5-6): the one-hot label y is concatenated to z for G and
  appended to D's input as K constant planes (a CGAN-style input conditioning: DCGAN's
  projection head is scalar-only); anchor, positive and generated sample share the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import check_betas, check_finite_loss, eval_mode, frozen, grad_norm
from otgen.methods.base import Method
from otgen.methods.latent import PRIORS, draw_latent
from otgen.utils.checks import check_choice, check_int, check_positive

MARGIN_NORMS = ("mean", "sum")
TINY = 1e-12  # inside the square root of d: its gradient at d = 0 would be infinite


@dataclass(frozen=True)
class Config:
    """MBGAN hyper-parameters; defaults from the paper (§4.1).

    ``K``: embedding dimension (500). ``alpha``: margin weight α (20). ``g_steps``: G updates
    per D update (the paper's N; it gives no value, 1 here). ``kernel``: 5 (Tables 1-2's
    "5c2s") or 4 (DCGAN). ``g_activation``: "leaky_relu" (Table 1) or "relu" (DCGAN).
    ``width``: base channels of both nets (None: 64). ``prior``: the latent distribution,
    "uniform" (U(−1, 1), default), "normal" (N(0, I)) or "uniform01" (U(0, 1), the paper's
    letter, which collapses with the DCGAN generator; see the module docstring).
    """

    K: int = 500
    alpha: float = 20.0
    margin_norm: str = "sum"
    g_steps: int = 1
    conditional: bool = False
    latent_dim: int = 100
    prior: str = "uniform"
    kernel: int = 5
    g_activation: str = "leaky_relu"
    width: int | None = None
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        check_choice(self.margin_norm, "margin_norm", MARGIN_NORMS)
        check_choice(self.prior, "prior", PRIORS)
        check_choice(self.g_activation, "g_activation", ("leaky_relu", "relu"))
        if self.kernel not in (4, 5):
            raise OTGenError(f"kernel must be 4 or 5, got {self.kernel!r}")
        for name in ("K", "g_steps", "latent_dim"):
            check_int(getattr(self, name), name)
        if self.width is not None:
            check_int(self.width, "width")
        for name in ("lr_g", "lr_d"):
            check_positive(getattr(self, name), name)
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha < float("inf"):
            raise OTGenError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        check_betas(beta1=self.beta1, beta2=self.beta2)


# -- eqs. (1)-(4) as pure functions ------------------------------------------------------------
def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """d = ‖a − b‖₂ per row (eq. 3), for embeddings ``a, b`` of shape (n, K)."""
    return ((a - b).pow(2).sum(dim=1) + TINY).sqrt()


def margin(x_j: torch.Tensor, fake: torch.Tensor, alpha: float, norm: str = "sum") -> torch.Tensor:
    """h = α ‖x_j − G(z)‖₁ per triplet (eq. 4); ``norm="mean"`` divides by the pixel count."""
    check_choice(norm, "margin_norm", MARGIN_NORMS)
    diff = (x_j - fake).abs().flatten(1)
    return alpha * (diff.mean(dim=1) if norm == "mean" else diff.sum(dim=1))


def d_loss(
    e_i: torch.Tensor, e_j: torch.Tensor, e_fake: torch.Tensor, h: torch.Tensor
) -> torch.Tensor:
    """L_D = mean over triplets of max{0, h + d(x_i, x_j) − d(x_i, G(z))} (eq. 1)."""
    return F.relu(h + distance(e_i, e_j) - distance(e_i, e_fake)).mean()


def g_loss(e_j: torch.Tensor, e_fake: torch.Tensor) -> torch.Tensor:
    """L_G = mean over pairs of d(x_j, G(z)) (eq. 2)."""
    return distance(e_j, e_fake).mean()


def positive_index(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the positive x_j of each anchor x_i: the next sample of the batch, or with
    ``labels`` the next sample of the same class (itself if it is alone in its class)."""
    if labels is None:
        return torch.arange(n).roll(1)
    labels = labels.cpu()
    pos = torch.arange(n)
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        pos[idx] = idx.roll(1)
    return pos


def one_hot_planes(labels: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Labels as ``num_classes`` constant image planes shaped like ``like`` (N, ·, H, W)."""
    onehot = F.one_hot(labels.long(), num_classes).to(like.dtype)
    return onehot[:, :, None, None].expand(-1, -1, *like.shape[2:])


# -- the method -------------------------------------------------------------------------------
class MBGAN(Method):
    """Algorithm 1 of the MBGAN paper. Nets ``"G"``, ``"D"`` (D outputs K-dim embeddings).

    Latent convention of :mod:`otgen.methods.base`: ``latent_dim``, ``prior`` (the config's:
    "uniform" = U(−1, 1)^d, "normal" = N(0, I), "uniform01" = U(0, 1)^d as in the paper),
    :meth:`sample_latent`, :meth:`generate`, :meth:`embed` (= D(x | y)).
    """

    name = "mbgan"
    Config = Config

    def __init__(self, cfg: Config | None, spec: DataSpec, device: torch.device) -> None:
        from otgen.nets import build_discriminator, build_generator

        cfg = self.Config() if cfg is None else cfg
        if not isinstance(cfg, Config):
            raise OTGenError(f"{self.name}: expected an mbgan Config, got {type(cfg).__name__}")
        if not spec.is_image:
            raise OTGenError(f"MBGAN needs image data (C, H, W), got data shape {spec.shape}")
        if cfg.conditional and not spec.num_classes:
            raise OTGenError("conditional MBGAN needs labelled data (spec.num_classes is not set)")
        super().__init__(cfg, spec, torch.device(device))
        self.conditional = cfg.conditional
        self.num_classes = spec.num_classes if cfg.conditional else None
        self.latent_dim, self.prior = cfg.latent_dim, cfg.prior
        extra = self.num_classes or 0  # one-hot label appended to z and to D's input
        c, h, w = spec.shape
        G = build_generator(
            "dcgan",
            spec,
            cfg.latent_dim + extra,
            width=cfg.width,
            kernel=cfg.kernel,
            activation_name=cfg.g_activation,
        )
        D = build_discriminator(
            "dcgan",
            DataSpec((c + extra, h, w)),
            out_dim=cfg.K,
            width=cfg.width,
            kernel=cfg.kernel,
        )
        self.nets = {"G": G.to(self.device), "D": D.to(self.device)}
        betas = (cfg.beta1, cfg.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=betas),
        }

    # -- latents, labels, sampling --------------------------------------------------------------
    def sample_latent(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latents from ``prior`` (labels do not change it)."""
        return draw_latent(self.prior, (n, self.latent_dim), self.device)  # see "Latent prior"

    def _labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if labels is None:
            raise OTGenError("conditional MBGAN: labels are required")
        if labels.shape != (n,):
            raise OTGenError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        labels = labels.to(self.device).long()
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise OTGenError(f"labels must be in [0, {self.num_classes}), got {labels.tolist()}")
        return labels

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z | y): the one-hot label is concatenated to z (§3.3)."""
        labels = self._labels(labels, z.shape[0])
        if labels is not None:
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return self.nets["G"](z)

    def embed(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D(x | y) ∈ R^K: the label enters as constant one-hot planes (§3.3)."""
        labels = self._labels(labels, x.shape[0])
        if labels is not None:
            x = torch.cat([x, one_hot_planes(labels, self.num_classes, x)], dim=1)
        return self.nets["D"](x)

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples in eval mode; a conditional model draws random labels if none given."""
        n = check_int(n, "n")
        if self.conditional and labels is None:
            labels = torch.randint(self.num_classes, (n,), device=self.device)
        with eval_mode(self.nets["G"]), torch.no_grad():
            return self.generate(self.sample_latent(n), labels)

    # -- Algorithm 1 ---------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        n = x.shape[0]
        if n < 2:
            raise OTGenError(f"MBGAN needs a batch of at least 2 images, got {n}")
        if self.conditional and y is None:
            raise OTGenError("conditional MBGAN: the data has no labels")
        x = x.to(self.device)
        labels = self._labels(y, n) if self.conditional else None
        # line 3: a minibatch of triplets (x_i, x_j = x[pos[i]], z)
        pos = positive_index(n, labels).to(self.device)
        # line 4: descend the gradient of L_D (eq. 1)
        logs = self.discriminator_step(x, pos, self.sample_latent(n), labels)
        x_j = x[pos]
        # lines 5-8: N times, a fresh z ~ prior and a descent step on L_G (eq. 2)
        g_logs = [
            self.generator_step(x_j, self.sample_latent(n), labels) for _ in range(self.cfg.g_steps)
        ]
        logs.update({k: sum(g[k] for g in g_logs) / len(g_logs) for k in g_logs[0]})
        return logs

    def discriminator_step(
        self, x: torch.Tensor, pos: torch.Tensor, z: torch.Tensor, labels=None
    ) -> dict[str, float]:
        """One descent step of D on L_D (eq. 1 / eq. 5) over the triplets
        (x_i, x_j = x[pos[i]], G(z_i)); the positives are real samples of the same batch, so
        one forward pass embeds anchors and positives."""
        with torch.no_grad():
            fake = self.generate(z, labels)
        h = margin(x[pos], fake, self.cfg.alpha, self.cfg.margin_norm)  # eq. 4, constant for D
        e_i = self.embed(x, labels)
        e_j, e_fake = e_i[pos], self.embed(fake, labels)
        loss = d_loss(e_i, e_j, e_fake, h)
        check_finite_loss(loss, "MBGAN discriminator loss")
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            dist_pos, dist_fake = distance(e_i, e_j), distance(e_i, e_fake)
        return {
            "d_loss": loss.item(),
            "dist_pos": dist_pos.mean().item(),  # mean d(x_i, x_j) in D's space
            "dist_fake": dist_fake.mean().item(),  # mean d(x_i, G(z))
            "margin": h.mean().item(),
            # share of triplets whose hinge is active (before the step): with the raw L1 sum
            # it is 1, and then α does not change the gradients at all (see docs/mbgan.md)
            "hinge_active": (h + dist_pos - dist_fake > 0).float().mean().item(),
        }

    def generator_loss(self, x_j: torch.Tensor, z: torch.Tensor, labels=None) -> torch.Tensor:
        """L_G = d(x_j, G(z)) (eq. 2 / eq. 6), D's weights fixed."""
        D = self.nets["D"]
        with frozen(D):
            with torch.no_grad():
                e_j = self.embed(x_j, labels)
            return g_loss(e_j, self.embed(self.generate(z, labels), labels))

    def generator_step(self, x_j: torch.Tensor, z: torch.Tensor, labels=None) -> dict[str, float]:
        loss = self.generator_loss(x_j, z, labels)
        check_finite_loss(loss, "MBGAN generator loss")
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = grad_norm(self.nets["G"])  # Fig. 6: ‖∇_θ L_G‖₂
        opt.step()
        return {"g_loss": loss.item(), "g_grad_norm": norm}


@dataclass(frozen=True)
class ConditionalConfig(Config):
    """Conditional MBGAN (§3.3): ``conditional=True`` by default."""

    conditional: bool = True


class ConditionalMBGAN(MBGAN):
    name = "mbgan-cond"
    Config = ConditionalConfig
