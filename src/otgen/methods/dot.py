"""Discriminator optimal transport (DOT; Tanaka, NeurIPS 2019): refine GAN samples with D.

DOT is a *post-processing* algorithm, not a training method: given a trained generator G and
the discriminator D that reads G's output, it moves each sample along the optimal transport
map that D/K approximates (Kantorovich-Rubinstein duality, Theorem 1, eq. 16):

    T(y) = argmin_x { ‖x − y‖₂ − D(x)/K_eff }                                   (eq. 22)

with the Lipschitz constant of D estimated on generated samples,

    K_eff = max |D(x) − D(x')| / ‖x − x'‖,  x, x' ~ p_G                          (eq. 20)
    k_eff = max |D∘G(z) − D∘G(z')| / ‖z − z'‖,  z, z' ~ p_Z                      (eq. 21)
    k_eff(c) = the same with G(·|c), D(·|c) for one class c                      (eq. 26)

Three solvers, each the paper's algorithm box, share one gradient loop (:func:`_descend`):

- :func:`target_dot` (Algorithm 1): minimise ‖x − y + δ‖₂ − D(x)/K over x, starting at y;
  ``naive=True`` drops the transport cost (−D(x)/K only; the paper's Fig. 3 baseline).
- :func:`latent_dot` (Algorithms 2 and 3): minimise ‖z − z_y + δ‖₂ − D(G(z|c)|c)/k over z,
  keeping z on the prior's support (tangent projection for N(0, I), clipping for U[−1, 1]).

Defaults follow the authors' published settings: δ = 0.001 added to
every coordinate; target space Adam(lr 0.01, β = (0, 0.9)), 100 updates, x clipped to
[−2, 2]; latent space SGD lr 0.01, 20 updates (Table 1); K from 100 pairs, averaged over 10
repeats; per class from 50 pairs.

G and D can be plain modules (:meth:`GANPair.from_modules`) or a trained otgen method
(:meth:`GANPair.from_method`). They stay frozen: their parameters get no gradient, their
``requires_grad`` flags and train/eval modes are restored afterwards, and they run in eval
mode (so BatchNorm statistics and spectral-norm power iterations are not updated).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from otgen.errors import NonFiniteError, OTGenError
from otgen.methods._common import frozen
from otgen.methods.latent import PRIORS as LATENT_PRIORS
from otgen.methods.latent import SUPPORT, draw_latent
from otgen.utils.checks import as_tensor, check_choice, check_finite, check_int, check_positive

# The methods' prior vocabulary plus "none" (no constraint on the transported latent).
PRIORS = (*LATENT_PRIORS, "none")
PROJECTIONS = ("tangent", "reference", "none")
OPTIMIZERS = ("adam", "sgd")

Tensor = torch.Tensor


# -- the pair (G, D) --------------------------------------------------------------------------
@dataclass(frozen=True)
class GANPair:
    """A generator and the critic that reads its output, seen through four callables.

    ``generate(z, labels)`` -> samples; ``critic(x, labels)`` -> (n,) scores;
    ``sample_latent(n, labels)`` -> latents drawn with torch's global RNG; ``modules`` are
    the networks to freeze. ``num_classes`` is set for conditional models (labels required).
    """

    generate: Callable[[Tensor, Tensor | None], Tensor]
    critic: Callable[[Tensor, Tensor | None], Tensor]
    sample_latent: Callable[[int, Tensor | None], Tensor]
    prior: str
    modules: tuple[nn.Module, ...]
    device: torch.device
    num_classes: int | None = None

    @classmethod
    def from_modules(
        cls,
        G: nn.Module,
        D: nn.Module,
        *,
        latent_shape: int | tuple[int, ...],
        prior: str = "normal",
        num_classes: int | None = None,
        device: str | torch.device | None = None,
    ) -> GANPair:
        """Wrap plain modules; conditional nets are called as ``G(z, labels)``, ``D(x, labels)``."""
        check_choice(prior, "prior", PRIORS)
        shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        if device is None:
            first = next(iter(G.parameters()), None)
            device = first.device if first is not None else torch.device("cpu")
        device = torch.device(device)

        def sample_latent(n: int, labels: Tensor | None = None) -> Tensor:
            return draw_latent(prior, (n, *shape), device)

        return cls(
            generate=lambda z, c=None: _call(G, z, c),
            critic=lambda x, c=None: _call(D, x, c),
            sample_latent=sample_latent,
            prior=prior,
            modules=(G, D),
            device=device,
            num_classes=num_classes,
        )

    @classmethod
    def from_method(cls, method: Any, D: nn.Module | None = None) -> GANPair:
        """Wrap a trained otgen method (``generator``/``discriminator``, ``sample_latent``,
        ``generate`` and its latent prior); ``D`` replaces its own discriminator (Table 2)."""
        G = method.generator
        D = D if D is not None else method.discriminator
        if G is None or D is None:
            raise OTGenError(
                f"method {getattr(method, 'name', type(method).__name__)!r} has no "
                "generator/discriminator pair; DOT needs both"
            )
        prior = _method_prior(method)
        num_classes = method.spec.num_classes if method_is_conditional(method) else None
        generate = getattr(method, "generate", None) or (lambda z, c=None: _call(G, z, c))
        sample_latent = getattr(method, "sample_latent", None)
        if sample_latent is None:
            raise OTGenError("method has no sample_latent(n, labels); cannot draw latents for DOT")
        critic_fn = getattr(method, "critic", None) if D is method.discriminator else None
        critic = critic_fn or (lambda x, c=None: _call(D, x, c))
        return cls(
            generate=generate,
            critic=critic,
            sample_latent=sample_latent,
            prior=prior,
            modules=(G, D),
            device=torch.device(method.device),
            num_classes=num_classes,
        )


def method_is_conditional(method: Any) -> bool:
    """A method is conditional when it says so (``otgen.methods.gan``: ``conditional=True``)."""
    flag = getattr(method, "conditional", getattr(method.cfg, "conditional", False))
    return bool(flag) and method.spec.num_classes is not None


def _method_prior(method: Any) -> str:
    """The latent prior a method draws from (:data:`otgen.methods.latent.PRIORS`)."""
    prior = str(getattr(method, "prior", getattr(method.cfg, "prior", "normal")))
    return check_choice(prior, "prior", LATENT_PRIORS)


def _call(net: nn.Module, x: Tensor, labels: Tensor | None) -> Tensor:
    return net(x) if labels is None else net(x, labels)


def _scores(pair: GANPair, x: Tensor, labels: Tensor | None) -> Tensor:
    """D's scores as a flat (n,) vector (critics often return (n, 1))."""
    out = pair.critic(x, labels)
    return out.reshape(x.shape[0], -1)[:, 0] if out.dim() > 1 else out


# -- Lipschitz constants (eqs. 20, 21, 26) -----------------------------------------------------
@dataclass(frozen=True)
class LipschitzEstimate:
    """Mean over repeats of the max ratio over random pairs; per class when ``value`` is 1-D."""

    value: Tensor  # scalar, or (num_classes,) for eq. 26
    std: Tensor  # spread of the per-repeat maxima (same shape)
    space: str  # "target" (eq. 20) or "latent" (eq. 21 / 26)
    n_pairs: int
    n_repeats: int

    def __float__(self) -> float:
        if self.value.dim() != 0:
            raise OTGenError("a per-class Lipschitz estimate has no single float value")
        return float(self.value)


def _max_ratio(pair: GANPair, space: str, n_pairs: int, labels: Tensor | None) -> Tensor:
    """max over ``n_pairs`` fresh pairs of |D(x1) − D(x2)| / ‖x1 − x2‖ (or ‖z1 − z2‖)."""
    z1, z2 = pair.sample_latent(n_pairs, labels), pair.sample_latent(n_pairs, labels)
    x1, x2 = pair.generate(z1, labels), pair.generate(z2, labels)
    num = (_scores(pair, x1, labels) - _scores(pair, x2, labels)).abs()
    a, b = (x1, x2) if space == "target" else (z1, z2)
    den = (a - b).flatten(1).norm(dim=1)
    # Coincident pairs (den = 0) say nothing about the slope; drop them rather than divide by 0.
    ratio = torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))
    return ratio.max()


@torch.no_grad()
def estimate_lipschitz(
    pair: GANPair,
    space: str = "target",
    *,
    n_pairs: int = 100,
    n_repeats: int = 10,
    num_classes: int | None = None,
    seed: int = 0,
) -> LipschitzEstimate:
    """K_eff (eq. 20, ``space="target"``) or k_eff (eq. 21, ``space="latent"``).

    Each repeat draws ``n_pairs`` pairs of latents and takes the max ratio; the estimate is the
    mean over ``n_repeats`` repeats (reference: 100 pairs, 10 repeats). With ``num_classes``
    (conditional models, eq. 26) both samples of a pair share a class and one value per class
    is returned (the paper uses 50 samples per class). The draw is seeded by ``seed`` without
    disturbing torch's global RNG.
    """
    check_choice(space, "space", ("target", "latent"))
    n_pairs = check_int(n_pairs, "n_pairs")
    n_repeats = check_int(n_repeats, "n_repeats")
    if num_classes is None and pair.num_classes is not None:
        raise OTGenError("conditional model: pass num_classes to estimate one k_eff per class")
    classes = [None] if num_classes is None else list(range(check_int(num_classes, "num_classes")))
    devices = [pair.device] if pair.device.type == "cuda" else []
    maxima = torch.empty(len(classes), n_repeats)
    with frozen(*pair.modules, eval_mode=True), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for i, c in enumerate(classes):
            labels = None if c is None else torch.full((n_pairs,), c, device=pair.device)
            for r in range(n_repeats):
                maxima[i, r] = _max_ratio(pair, space, n_pairs, labels).cpu()
    check_finite(maxima, "Lipschitz estimate")
    value, std = maxima.mean(1), maxima.std(1) if n_repeats > 1 else torch.zeros(len(classes))
    if num_classes is None:
        value, std = value[0], std[0]
    return LipschitzEstimate(value, std, space, n_pairs, n_repeats)


def _as_constant(k: float | Tensor | LipschitzEstimate, labels: Tensor | None, n: int) -> Tensor:
    """K or k_eff as a (n,) tensor: a scalar broadcast, or per-class values indexed by label."""
    k = k.value if isinstance(k, LipschitzEstimate) else k
    t = as_tensor(k, "K", dtype=torch.float32)
    check_finite(t, "K")
    if bool((t <= 0).any()):
        raise OTGenError("K (the Lipschitz constant) must be positive")
    if t.dim() == 0:
        return t.expand(n)
    if t.dim() != 1 or labels is None:
        raise OTGenError("a per-class K needs labels (one class per sample)")
    if int(labels.max()) >= t.numel() or int(labels.min()) < 0:
        raise OTGenError(f"labels must lie in [0, {t.numel()}) to index the per-class K")
    return t.to(labels.device)[labels]


# -- the shared gradient loop ------------------------------------------------------------------
@dataclass(frozen=True)
class DOTResult:
    """Refined samples; ``z``/``z0`` are set in latent space; ``objective`` when tracked."""

    x: Tensor  # refined samples, shaped like G's output
    x0: Tensor  # the starting samples y = G(z_y)
    z: Tensor | None  # refined latents (latent mode)
    z0: Tensor | None  # starting latents z_y
    K: Tensor  # Lipschitz constant used, per sample (n,)
    mode: str  # "target", "naive" or "latent"
    steps: int
    objective: Tensor | None  # (steps + 1,) mean objective, before each update and at the end

    @property
    def displacement(self) -> Tensor:
        """‖x − x0‖ per sample: how far DOT moved each sample."""
        return (self.x - self.x0).flatten(1).norm(dim=1)


def _make_optimizer(name: str, v: Tensor, lr: float, betas: tuple[float, float]):
    if name == "adam":
        return torch.optim.Adam([v], lr=lr, betas=betas)
    return torch.optim.SGD([v], lr=lr)


def _descend(
    v0: Tensor,
    objective: Callable[[Tensor], Tensor],
    *,
    steps: int,
    lr: float,
    optimizer: str,
    betas: tuple[float, float],
    project_grad: Callable[[Tensor, Tensor], Tensor] | None,
    constrain: Callable[[Tensor], None] | None,
    track: bool,
) -> tuple[Tensor, Tensor | None]:
    """Minimise the per-sample ``objective`` (n,) from ``v0``; samples never interact.

    The gradient of the *sum* is each sample's own gradient, and Adam/SGD act per
    coordinate, so a batch (or any chunking of it) gives exactly the per-sample result.
    """
    v = v0.detach().clone().requires_grad_(True)
    opt = _make_optimizer(optimizer, v, lr, betas)
    history = []
    for _ in range(steps):
        loss = objective(v)
        if not bool(torch.isfinite(loss).all()):
            raise NonFiniteError("DOT objective became NaN/Inf; lower lr or check K")
        # autograd.grad w.r.t. v only: nothing accumulates in G's or D's .grad.
        (g,) = torch.autograd.grad(loss.sum(), v)
        if project_grad is not None:
            g = project_grad(g, v.detach())
        v.grad = g
        opt.step()
        if constrain is not None:
            with torch.no_grad():
                constrain(v)
        if track:
            history.append(loss.detach().mean())
    if track:
        with torch.enable_grad():
            history.append(objective(v).detach().mean())
    out = torch.stack(history).cpu() if track else None
    return v.detach(), out


def _transport_cost(v: Tensor, v0: Tensor, delta: float) -> Tensor:
    """‖v − v0 + δ‖₂ per sample; δ keeps the norm's gradient defined at v = v0 (Alg. 1–3)."""
    return (v - v0 + delta).flatten(1).norm(dim=1)


def _check_common(steps: int, lr: float, delta: float, optimizer: str) -> int:
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    check_positive(lr, "lr")
    check_positive(delta, "delta")
    return check_int(steps, "steps", minimum=0)


def _check_labels(pair: GANPair, labels: Tensor | None, n: int) -> Tensor | None:
    if pair.num_classes is None:
        if labels is not None:
            raise OTGenError("labels given but the model is unconditional")
        return None
    if labels is None:
        raise OTGenError("conditional model: labels (one class per sample) are required")
    labels = as_tensor(labels, "labels").long().to(pair.device)
    if labels.shape != (n,):
        raise OTGenError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= pair.num_classes:
        raise OTGenError(f"labels must lie in [0, {pair.num_classes})")
    return labels


def _chunks(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _samples(t: Any, name: str, device: torch.device) -> Tensor:
    t = as_tensor(t, name, dtype=torch.float32, device=device)
    if t.dim() < 2 or t.shape[0] == 0:
        raise OTGenError(f"{name} must be a non-empty batch (n, ...), got {tuple(t.shape)}")
    return check_finite(t, name)


def _join(parts: list[Tensor | None]) -> Tensor | None:
    """Trajectories of several chunks: their sample-weighted mean (chunks hold disjoint rows)."""
    return None if parts[0] is None else torch.stack(parts).sum(0)


# -- Algorithm 1: target-space DOT (and the naive baseline) ------------------------------------
def target_dot(
    pair: GANPair,
    y: Tensor,
    K: float | Tensor | LipschitzEstimate,
    *,
    labels: Tensor | None = None,
    naive: bool = False,
    steps: int = 100,
    lr: float = 0.01,
    optimizer: str = "adam",
    betas: tuple[float, float] = (0.0, 0.9),
    delta: float = 1e-3,
    clip: tuple[float, float] | None = (-2.0, 2.0),
    batch_size: int = 4096,
    track: bool = False,
) -> DOTResult:
    """Algorithm 1: x ← argmin_x ‖x − y + δ‖₂ − D(x)/K_eff, from x = y, by gradient descent.

    ``naive=True`` minimises −D(x)/K only (the paper's "naive transport"). ``clip`` is the box
    x is kept in after each update (reference: [−2, 2] for the 2D toys; use the data range,
    e.g. (−1, 1) for images), or None.
    """
    steps = _check_common(steps, lr, delta, optimizer)
    y = _samples(y, "y", pair.device)
    labels = _check_labels(pair, labels, y.shape[0])
    Kn = _as_constant(K, labels, y.shape[0]).to(pair.device)
    if clip is not None and not clip[0] < clip[1]:
        raise OTGenError(f"clip must be (low, high) with low < high, got {clip}")
    xs, hist = [], []
    with frozen(*pair.modules, eval_mode=True):
        for sl in _chunks(y.shape[0], check_int(batch_size, "batch_size")):
            y_i, c_i, K_i = y[sl], None if labels is None else labels[sl], Kn[sl]

            def objective(x, y_i=y_i, c_i=c_i, K_i=K_i):
                gain = -_scores(pair, x, c_i) / K_i
                return gain if naive else _transport_cost(x, y_i, delta) + gain

            x_i, h = _descend(
                y_i,
                objective,
                steps=steps,
                lr=lr,
                optimizer=optimizer,
                betas=betas,
                project_grad=None,
                constrain=None if clip is None else (lambda v: v.clamp_(*clip)),
                track=track,
            )
            xs.append(x_i)
            hist.append(None if h is None else h * (y_i.shape[0] / y.shape[0]))
    mode = "naive" if naive else "target"
    return DOTResult(torch.cat(xs), y, None, None, Kn, mode, steps, _join(hist))


# -- Algorithms 2 and 3: latent-space DOT ------------------------------------------------------
def project_gaussian(g: Tensor, z: Tensor, projection: str = "tangent") -> Tensor:
    """Keep a N(0, I_dim) latent near the sphere ‖z‖ = √dim where its mass concentrates.

    ``"tangent"`` removes the radial part exactly, g − (g·z) z/‖z‖² (the paper's intent);
    ``"reference"`` is the formula as printed in Algorithm 2 and the reference code,
    g − (g·z) z/√dim — dimensionally it rescales the radial part by (1 − ‖z‖²/√dim) ≈ 1 − √dim
    instead of removing it, so it does *not* keep ‖z‖ fixed; kept for comparison only.
    """
    gf, zf = g.flatten(1), z.flatten(1)
    dot = (gf * zf).sum(1, keepdim=True)
    if projection == "tangent":
        # Clamp guards the (measure-zero) z = 0, where every direction is tangent.
        scale = dot / (zf * zf).sum(1, keepdim=True).clamp_min(1e-12)
    elif projection == "reference":
        scale = dot / math.sqrt(zf.shape[1])
    else:
        return g
    return (gf - scale * zf).view_as(g)


def latent_dot(
    pair: GANPair,
    z: Tensor,
    k: float | Tensor | LipschitzEstimate,
    *,
    labels: Tensor | None = None,
    steps: int = 20,
    lr: float = 0.01,
    optimizer: str = "sgd",
    betas: tuple[float, float] = (0.0, 0.9),
    delta: float = 1e-3,
    prior: str | None = None,
    projection: str = "tangent",
    batch_size: int = 1024,
    track: bool = False,
) -> DOTResult:
    """Algorithm 2 (and 3 with ``labels``): z ← argmin_z ‖z − z_y + δ‖₂ − D(G(z|c)|c)/k_eff(c).

    ``k`` is a scalar (eq. 21, or the shortcut k = 1) or one value per class (eq. 26).
    ``prior`` (default: the pair's) keeps z on the prior's support: for ``"normal"`` the
    gradient is projected (``projection``, see :func:`project_gaussian`), for a uniform prior
    z is clipped to its box (``otgen.methods.latent.SUPPORT``) after each update. Defaults:
    SGD lr 0.01, 20 updates (Table 1).
    """
    steps = _check_common(steps, lr, delta, optimizer)
    prior = check_choice(prior or pair.prior, "prior", PRIORS)
    check_choice(projection, "projection", PROJECTIONS)
    z = _samples(z, "z", pair.device)
    labels = _check_labels(pair, labels, z.shape[0])
    kn = _as_constant(k, labels, z.shape[0]).to(pair.device)
    project = (lambda g, v: project_gaussian(g, v, projection)) if prior == "normal" else None
    box = SUPPORT.get(prior)
    clip = (lambda v: v.clamp_(*box)) if box is not None else None
    zs, xs, x0s, hist = [], [], [], []
    with frozen(*pair.modules, eval_mode=True):
        for sl in _chunks(z.shape[0], check_int(batch_size, "batch_size")):
            z_i, c_i, k_i = z[sl], None if labels is None else labels[sl], kn[sl]

            def objective(v, z_i=z_i, c_i=c_i, k_i=k_i):
                return (
                    _transport_cost(v, z_i, delta) - _scores(pair, pair.generate(v, c_i), c_i) / k_i
                )

            z_new, h = _descend(
                z_i,
                objective,
                steps=steps,
                lr=lr,
                optimizer=optimizer,
                betas=betas,
                project_grad=project,
                constrain=clip,
                track=track,
            )
            with torch.no_grad():
                xs.append(pair.generate(z_new, c_i))
                x0s.append(pair.generate(z_i, c_i))
            zs.append(z_new)
            hist.append(None if h is None else h * (z_i.shape[0] / z.shape[0]))
    return DOTResult(
        torch.cat(xs), torch.cat(x0s), torch.cat(zs), z, kn, "latent", steps, _join(hist)
    )


# -- one call from a pair to refined samples ---------------------------------------------------
def refine(
    pair: GANPair,
    n: int,
    mode: str = "latent",
    *,
    keff: str | float = "auto",
    labels: Tensor | None = None,
    seed: int = 0,
    n_pairs: int | None = None,
    n_repeats: int = 10,
    **options: Any,
) -> DOTResult:
    """Draw ``n`` latents (seeded), estimate K ("auto": eq. 20/21/26) or use ``keff``, run DOT.

    ``mode`` is "target" (Alg. 1), "naive" (the baseline) or "latent" (Alg. 2/3); ``options``
    go to :func:`target_dot` / :func:`latent_dot`. Conditional models without ``labels`` get
    balanced labels 0, 1, …, C−1, 0, …
    """
    check_choice(mode, "mode", ("latent", "target", "naive"))
    n = check_int(n, "n")
    space = "latent" if mode == "latent" else "target"
    C = pair.num_classes
    if C is not None and labels is None:
        labels = torch.arange(n, device=pair.device) % C
    if keff == "auto":
        pairs = n_pairs or (50 if C is not None else 100)
        K: Any = estimate_lipschitz(
            pair, space, n_pairs=pairs, n_repeats=n_repeats, num_classes=C, seed=seed
        )
    elif isinstance(keff, str):
        raise OTGenError(f"keff must be 'auto' or a positive number, got {keff!r}")
    else:
        K = check_positive(keff, "keff")
    devices = [pair.device] if pair.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed + 1)
        z = pair.sample_latent(n, labels)
    if mode == "latent":
        return latent_dot(pair, z, K, labels=labels, **options)
    with frozen(*pair.modules, eval_mode=True), torch.no_grad():
        y = pair.generate(z, labels)
    result = target_dot(pair, y, K, labels=labels, naive=mode == "naive", **options)
    return DOTResult(result.x, y, None, z, result.K, mode, result.steps, result.objective)
