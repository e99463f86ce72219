"""AE-OT: autoencoder + semi-discrete optimal transport in the latent space.

AE-OT paper (An et al., ICLR 2020) §5.3 (the pipeline) and §6 (settings):

1. **"ae"**: train an autoencoder ``x ↦ D(E(x))`` on the data with the loss
   ``‖D(E(x)) − x‖² (mean) + λ₁ ‖E(x)‖₁`` (λ₁ = 1e-5, the authors' setting), Adam lr 3e-3,
   β1 0.5 (§6.1). Decoder = the GAN generator of the architecture (InfoGAN 28×28, DCGAN
   32/64), encoder its mirror (:func:`otgen.nets.build_autoencoder`).
2. **"ae-refine"**: freeze the encoder and keep training the decoder (the codes no longer
   move, so the reconstruction loss can still drop; Table 1 reports before/after). The switch
   happens at a configured step, or earlier when the loss plateaus (``plateau_patience``).
3. **"ot"** (no steps; in :meth:`AEOT.begin_phase`): encode the training set, solve the
   semi-discrete OT problem from the uniform cube ``[-1/2, 1/2]^d`` to the codes
   ``ν = Σ_i δ_{y_i}/n`` (eqs. 17-26, :func:`otgen.ot.semidiscrete.solve`) and build the
   piecewise linear extended map with its singular-facet test (θ = 0.75 for MNIST-like data,
   :func:`otgen.ot.extended_map.extend`). Everything is kept in :meth:`extra_state`, so a
   resumed run or ``load_run`` never recomputes it.

Sampling (:meth:`AEOT.sample`): ``u ~ U[-1/2, 1/2]^d`` → OT map extended between neighbouring
cells (``generation``: the authors' pairwise rule by default, or the barycentric map) → decoder.

``arch="identity"`` (2D point data only) uses the identity as encoder and decoder, which is the
2D AE-OT experiment of §6.3: OT straight from the cube to the data points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import check_betas, eval_mode
from otgen.methods.base import Method, Phase
from otgen.nets import build_autoencoder
from otgen.ot import extended_map as em
from otgen.ot import semidiscrete as sd
from otgen.utils.checks import check_choice, check_int, check_positive

ARCHS = ("auto", "infogan", "dcgan", "identity")
GENERATIONS = ("extended", "pairwise")
_ENCODE_CHUNK = 512


@dataclass(frozen=True)
class AEOTConfig:
    """Hyper-parameters of AE-OT (``otgen train aeot``).

    ``refine_fraction``: share of the training steps spent with the encoder frozen (phase
    "ae-refine"); ``refine_at`` (a step) overrides it. ``plateau_patience``: freeze the
    encoder earlier, inside phase "ae", once the loss has not improved by ``plateau_tol``
    (relative, on a running mean) for that many steps (None: off).
    ``ot_targets``: number of training codes used as OT targets (None: all; a CPU budget
    knob, the paper uses all of them). ``theta``/``scale``: singular-facet threshold (rad)
    and target scale of the normal-angle test (:func:`otgen.ot.extended_map.extend`).
    ``generation``: "pairwise" (default: the authors' reference generator,
    :func:`pairwise_codes`, ``pair_k`` planes, ``pair_weight``) or "extended" (the paper's
    barycentric extended map). The default is pairwise because the barycentric map only
    interpolates inside the convex hull of the cell centroids, a vanishing share of the cube in
    latent dimension ≥ 8 (``benchmarks/results/extended_map.md``): elsewhere it returns
    training codes unchanged.
    """

    arch: str = "auto"
    latent_dim: int = 64
    width: int = 64
    init: str = "default"
    lr: float = 3e-3
    beta1: float = 0.5
    beta2: float = 0.999
    l1_weight: float = 1e-5
    refine_fraction: float = 0.3
    refine_at: int | None = None
    plateau_patience: int | None = None
    plateau_tol: float = 0.01
    ot_targets: int | None = 10_000
    ot_method: str = "averaged"
    ot_tol: float = 0.05
    ot_max_iter: int = 5_000
    ot_time_limit: float | None = None
    ot_seed: int = 0
    theta: float = 0.75
    scale: float = 1.0
    ext_samples: int | None = None
    ext_neighbours: int | None = None
    generation: str = "pairwise"
    pair_k: int = 20
    pair_weight: float = 0.75

    def __post_init__(self) -> None:
        check_choice(self.arch, "arch", ARCHS)
        check_choice(self.init, "init", ("default", "normal"))
        check_choice(self.ot_method, "ot_method", sd.METHODS)
        check_choice(self.generation, "generation", GENERATIONS)
        check_int(self.pair_k, "pair_k", minimum=2)
        if not 0.0 <= self.pair_weight <= 1.0:
            raise OTGenError(f"pair_weight must be in [0, 1], got {self.pair_weight}")
        check_int(self.latent_dim, "latent_dim")
        check_int(self.width, "width")
        check_positive(self.lr, "lr")
        check_positive(self.theta, "theta")
        check_positive(self.scale, "scale")
        check_positive(self.ot_tol, "ot_tol")
        check_int(self.ot_max_iter, "ot_max_iter")
        if self.l1_weight < 0:
            raise OTGenError(f"l1_weight must be >= 0, got {self.l1_weight}")
        if not 0.0 <= self.refine_fraction < 1.0:
            raise OTGenError(f"refine_fraction must be in [0, 1), got {self.refine_fraction}")
        for name in ("refine_at", "plateau_patience", "ot_targets", "ext_samples"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=0 if name == "refine_at" else 1)
        check_betas(beta1=self.beta1, beta2=self.beta2)


def autoencoder_loss(
    x: torch.Tensor, recon: torch.Tensor, code: torch.Tensor, l1_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, mse): mean squared reconstruction error + l1_weight · E‖z‖₁ (§6.1)."""
    mse = (recon - x).pow(2).mean()
    return mse + l1_weight * code.abs().sum(1).mean(), mse


class _IdentityAE(nn.Module):
    """Encoder = decoder = identity (the 2D experiment of AE-OT §6.3: OT on the data)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.latent_dim = dim
        self.encoder, self.decoder = nn.Identity(), nn.Identity()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


class AEOT(Method):
    """AE-OT (see the module docstring). Nets: ``E`` encoder, ``G`` decoder (the generator).

    Public: ``latent_dim``, :meth:`encode`, :meth:`decode`, :meth:`sample_codes`,
    :attr:`ot` (the :class:`~otgen.ot.semidiscrete.SemiDiscreteResult`), :attr:`ext_map`.
    """

    name = "aeot"
    Config = AEOTConfig

    def __init__(self, cfg: AEOTConfig | None, spec: DataSpec, device: torch.device) -> None:
        cfg = self.Config() if cfg is None else cfg
        super().__init__(cfg, spec, torch.device(device))
        if cfg.arch == "identity":
            if spec.is_image:
                raise OTGenError("arch='identity' is for point data (the 2D AE-OT experiment)")
            ae = _IdentityAE(spec.shape[0])
        else:
            ae = build_autoencoder(cfg.arch, spec, cfg.latent_dim, base=cfg.width, init=cfg.init)
        self.ae = ae.to(self.device)
        self.latent_dim = ae.latent_dim
        self.trainable = cfg.arch != "identity"
        self.ext_map: em.ExtendedMap | None = None
        self.frozen = False  # encoder frozen (phase "ae-refine", or a plateau inside "ae")
        self._best, self._since_best, self._running = math.inf, 0, None
        if self.trainable:
            self.nets = {"E": self.ae.encoder, "G": self.ae.decoder}
            betas = (cfg.beta1, cfg.beta2)
            self.optimizers = {
                "AE": torch.optim.Adam(self.ae.parameters(), lr=cfg.lr, betas=betas),
                # A fresh optimiser for the refinement: its moments only ever see decoder grads.
                "refine": torch.optim.Adam(self.ae.decoder.parameters(), lr=cfg.lr, betas=betas),
            }

    # -- phases --------------------------------------------------------------------------
    def phases(self, total_steps: int) -> list[Phase]:
        if not self.trainable:
            return [Phase("ae", 0), Phase("ae-refine", 0), Phase("ot", 0)]
        return [*self._ae_phases(total_steps), Phase("ot", 0)]

    def _ae_phases(self, ae_steps: int) -> list[Phase]:
        cfg = self.cfg
        refine_at = cfg.refine_at
        if refine_at is None:
            refine_at = ae_steps - round(cfg.refine_fraction * ae_steps)
        refine_at = min(refine_at, ae_steps)
        if refine_at == ae_steps:  # no refinement: an empty "ae-refine" would still freeze the
            return [Phase("ae", ae_steps)]  # encoder, and a run extended later keeps it frozen
        return [Phase("ae", refine_at), Phase("ae-refine", ae_steps - refine_at)]

    def begin_phase(self, name: str, data: torch.Tensor, labels: torch.Tensor | None) -> None:
        if name == "ae-refine":
            self.frozen = True
        elif name == "ot" and self.ext_map is None:  # a resume restores it: never recompute
            self.solve_ot(data)

    @property
    def ot(self) -> sd.SemiDiscreteResult | None:
        return None if self.ext_map is None else self.ext_map.result

    # -- autoencoder training ---------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        if not self.trainable:
            raise OTGenError("arch='identity' has nothing to train")
        # A run extended past its OT phase (resumed with more steps) trains again: the map of
        # the old codes / old settings no longer applies, so phase "ot" must solve it anew.
        self.ext_map = None
        x = x.to(self.device)
        E, G = self.nets["E"], self.nets["G"]
        frozen = self.frozen
        if frozen:  # eval mode too: a frozen encoder's BatchNorm statistics must not move
            with torch.no_grad():
                code = self._encoder_eval(E, x)
        else:
            code = E(x)
        recon = G(code)
        loss, mse = autoencoder_loss(x, recon, code, self.cfg.l1_weight)
        opt = self.optimizers["refine" if frozen else "AE"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = mse.item()
        if not frozen:
            self._watch_plateau(value)
        return {"rec_loss": value, "loss": loss.item(), "encoder_frozen": float(frozen)}

    def _encoder_eval(self, fn, *args):
        """Run ``fn`` with the encoder in eval mode (fixed BatchNorm statistics)."""
        with eval_mode(self.nets["E"]):
            return fn(*args)

    def _watch_plateau(self, value: float) -> None:
        """Freeze the encoder once the running mean loss stops improving (AE-OT §6.1)."""
        patience = self.cfg.plateau_patience
        if patience is None:
            return
        self._running = value if self._running is None else 0.9 * self._running + 0.1 * value
        if self._running < self._best * (1 - self.cfg.plateau_tol):
            self._best, self._since_best = self._running, 0
        else:
            self._since_best += 1
            if self._since_best >= patience:
                self.frozen = True

    # -- OT stage ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes (eval mode: BatchNorm running statistics), in chunks."""
        with eval_mode(self.ae):
            out = [
                self.ae.encode(x[i : i + _ENCODE_CHUNK].to(self.device))
                for i in range(0, len(x), _ENCODE_CHUNK)
            ]
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.ae):
            return self.ae.decode(z.to(self.device).float())

    def ot_target_codes(self, data: torch.Tensor) -> torch.Tensor:
        """The codes of ``ot_targets`` training samples (a seeded subset; all when None)."""
        n = len(data)
        if self.cfg.ot_targets is not None and self.cfg.ot_targets < n:
            g = torch.Generator().manual_seed(self.cfg.ot_seed)
            data = data[torch.randperm(n, generator=g)[: self.cfg.ot_targets].to(data.device)]
        return self.encode(data).double().cpu()

    def solve_ot(self, data: torch.Tensor) -> em.ExtendedMap:
        """Encode, solve the semi-discrete OT (Alexandrov, eq. 23) and extend its map."""
        cfg = self.cfg
        codes = self.ot_target_codes(data)
        result = sd.solve(
            codes,
            source="uniform",
            method=cfg.ot_method,
            tol=cfg.ot_tol,
            max_iter=cfg.ot_max_iter,
            time_limit=cfg.ot_time_limit,
            seed=cfg.ot_seed,
            duplicates="merge",  # identical codes (e.g. saturated encoder) share one cell
        )
        self.ext_map = em.extend(
            result,
            theta=cfg.theta,
            scale=cfg.scale,
            n_samples=cfg.ext_samples,
            neighbours=cfg.ext_neighbours,
            seed=cfg.ot_seed + 1,
        )
        return self.ext_map

    # -- sampling ---------------------------------------------------------------------------
    def sample_codes(self, n: int) -> torch.Tensor:
        """``n`` new latent codes: u ~ U[-1/2, 1/2]^d (global RNG) → ``generation`` map.

        Before the OT stage (interval samples during "ae"), the cube samples themselves.
        """
        u = torch.rand(n, self.latent_dim, device=self.device, dtype=torch.float64) - 0.5
        if self.ext_map is None:
            return u.float()
        if self.cfg.generation == "pairwise":
            codes = pairwise_codes(self.ext_map, u.cpu(), self.cfg.pair_k, self.cfg.pair_weight)[0]
        else:
            codes = self.ext_map(u.cpu())
        return codes.float().to(self.device)

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.sample_codes(n))

    # -- state --------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, torch.Tensor]:
        running = -1.0 if self._running is None else self._running  # losses are >= 0
        state = {
            "frozen": torch.tensor(int(self.frozen)),
            "plateau": torch.tensor([self._best, self._since_best, running], dtype=torch.float64),
        }
        if self.ext_map is not None:
            state.update(_ext_map_state(self.ext_map))
        return state

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if "frozen" in state:
            self.frozen = bool(int(state["frozen"]))
        if "plateau" in state:
            best, since, running = state["plateau"].tolist()
            self._best, self._since_best = best, int(since)
            self._running = None if running < 0 else running
        if "ot.h" in state:
            self.ext_map = _ext_map_from_state(state)


def pairwise_codes(
    ext: em.ExtendedMap, u: torch.Tensor, k: int = 20, weight: float = 0.75
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' generation rule: among the ``k`` highest supporting
    planes at u, the first neighbour j of u's own cell i whose plane normal makes an angle
    below θ with i's (a regular facet) gives the code ``(1 − weight)·y_i + weight·y_j``; with
    no regular neighbour u keeps y_i. Returns (codes, mask of new codes)."""
    res = ext.result
    y = res.y.double()
    _, idx = sd.top_scores(u.to(y).float(), res.y.float(), res.h.float(), k)
    yi = y[idx[:, 0]]
    if idx.shape[1] < 2:
        return yi, torch.zeros(len(u), dtype=torch.bool)
    yj = y[idx[:, 1:]]
    regular = em.normal_angles(yi[:, None].expand_as(yj), yj, ext.scale) < ext.theta
    first = regular.double().argmax(1)  # the highest regular neighbour plane
    new = regular.any(1)
    pick = yj[torch.arange(len(u)), first]
    codes = torch.where(new[:, None], (1 - weight) * yi + weight * pick, yi)
    return codes, new


# -- (de)serialising the OT stage as plain tensors ---------------------------------------------
# Not time_s: a wall-clock time would make checkpoints of identical runs differ (restored: NaN).
_RESULT_SCALARS = ("marginal_error", "grad_norm", "n_iter", "n_samples", "seed")


def _ext_map_state(m: em.ExtendedMap) -> dict[str, torch.Tensor]:
    r, f = m.result, m.facets
    state = {
        "ot.h": r.h,
        "ot.y": r.y,
        "ot.b": r.b,
        "ot.converged": torch.tensor(int(r.converged)),
        "ext.centroids": m.centroids,
        "ext.pairs": f.pairs,
        "ext.measure": f.measure,
        "ext.angle": f.angle,
        "ext.k": torch.tensor(m.k),
        "ext.theta": torch.tensor(m.theta, dtype=torch.float64),
        "ext.scale": torch.tensor(m.scale, dtype=torch.float64),
    }
    for name in _RESULT_SCALARS:
        state[f"ot.{name}"] = torch.tensor(float(getattr(r, name)), dtype=torch.float64)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _ext_map_from_state(state: dict[str, torch.Tensor]) -> em.ExtendedMap:
    s = {k: v.cpu() for k, v in state.items()}
    ints = {"n_iter", "n_samples", "seed"}
    scalars = {
        k: (int(s[f"ot.{k}"]) if k in ints else float(s[f"ot.{k}"])) for k in _RESULT_SCALARS
    }
    result = sd.SemiDiscreteResult(
        h=s["ot.h"],
        y=s["ot.y"],
        b=s["ot.b"],
        source="uniform",
        method="restored",
        converged=bool(int(s["ot.converged"])),
        time_s=float("nan"),
        **scalars,
    )
    angle, theta = s["ext.angle"], float(s["ext.theta"])
    facets = em.Facets(s["ext.pairs"], s["ext.measure"], angle, angle >= theta, theta)
    return em.ExtendedMap(
        result=result,
        centroids=s["ext.centroids"],
        facets=facets,
        theta=theta,
        scale=float(s["ext.scale"]),
        k=int(s["ext.k"]),
    )
