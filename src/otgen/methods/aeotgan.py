"""AE-OT-GAN: a GAN whose generator starts from the AE-OT decoder and whose latent codes come
from the extended semi-discrete OT map (AE-OT-GAN paper, §3, §4).

Stages: the AE-OT pipeline (:mod:`otgen.methods.aeot`: phases "ae", "ae-refine", "ot"), then
phase **"gan"**, or only "gan" when started from a finished AE-OT run (``init_from=RUN_DIR``).
G *is* the decoder (same module), D a DCGAN/InfoGAN discriminator, the encoder E is frozen.

One training step (§4, Fig. 2) on a data batch x of size B:

- :func:`split_sizes`: ``n_rec = B / (1 + r)`` reconstructions and ``n_gen = B − n_rec``
  generated images, r = ``gen_ratio`` = 3 in the paper;
- :func:`compose_batches`: fake batch = [G(E(x_p)) ; G(T(u))] with x_p = x[:n_rec] and
  u ~ U[-1/2, 1/2]^d through the extended OT map T; real batch = [x_p ; x[n_rec:]] (the
  paired images first, then random real images);
- one D step on the vanilla GAN loss (eq. 1; ``otgen.methods.gan.d_loss``), then ``g_steps``
  G steps (§4 (iii): several G updates per D update) on :func:`generator_loss`

      L_G = w_adv · L_adv + λ_c · ‖G(E(x_p)) − x_p‖² + Σ_l w_l ‖E_l(G(E(x_p))) − E_l(x_p)‖²

  (eq. 2 adversarial term, content loss, feature loss over the encoder layers, latent code
  last); different learning rates for G and D (TTUR, §4 (ii)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from otgen.data.spec import DataSpec
from otgen.errors import OTGenError
from otgen.methods._common import check_betas
from otgen.methods.aeot import AEOT, AEOTConfig
from otgen.methods.base import Method, Phase
from otgen.methods.gan import LOSSES, d_loss, g_loss
from otgen.nets import build_discriminator
from otgen.utils.checks import check_choice, check_int, check_positive


@dataclass(frozen=True)
class AEOTGANConfig(AEOTConfig):
    """AE-OT settings plus the GAN stage.

    ``init_from``: a finished ``aeot`` run directory (its encoder, decoder and OT map are
    loaded, its architecture replaces ``arch``/``latent_dim``/``width``; training is then only
    phase "gan"). ``gan_fraction``: share of the total steps given to "gan" in a one-config
    run. ``gen_ratio``: generated / reconstructed images in the fake batch (3, §4 (i)).
    ``lr_g``/``lr_d``: TTUR rates (the paper's values are not in the text: ours).
    ``g_steps``: G updates per D update. ``feature_weights``: one weight per encoder layer
    (latent code last; None = 1/L each).
    """

    init_from: str | None = None
    gan_fraction: float = 0.5
    loss: str = "ns"
    disc_arch: str = "auto"
    disc_width: int | None = None
    gen_ratio: float = 3.0
    adv_weight: float = 1.0
    content_weight: float = 1.0
    feature_weights: tuple[float, ...] | None = None
    lr_g: float = 2e-4
    lr_d: float = 5e-5
    gan_beta1: float = 0.5
    gan_beta2: float = 0.999
    g_steps: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.disc_arch, "disc_arch", ("auto", "infogan", "dcgan"))
        check_positive(self.gen_ratio, "gen_ratio")
        check_positive(self.lr_g, "lr_g")
        check_positive(self.lr_d, "lr_d")
        check_int(self.g_steps, "g_steps")
        check_betas(gan_beta1=self.gan_beta1, gan_beta2=self.gan_beta2)
        if not 0.0 < self.gan_fraction <= 1.0:
            raise OTGenError(f"gan_fraction must be in (0, 1], got {self.gan_fraction}")
        for name in ("adv_weight", "content_weight"):
            if getattr(self, name) < 0:
                raise OTGenError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.feature_weights is not None:
            object.__setattr__(
                self, "feature_weights", tuple(float(w) for w in self.feature_weights)
            )
            if any(w < 0 for w in self.feature_weights):
                raise OTGenError("feature_weights must be >= 0")


# -- pure pieces (unit-tested) -------------------------------------------------------------
def split_sizes(batch_size: int, gen_ratio: float) -> tuple[int, int]:
    """(n_rec, n_gen) with n_gen / n_rec ≈ gen_ratio and n_rec + n_gen = batch_size, n_rec ≥ 1."""
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    n_rec = min(batch_size - 1, max(1, round(batch_size / (1.0 + gen_ratio))))
    return n_rec, batch_size - n_rec


@dataclass(frozen=True)
class GanBatch:
    real: torch.Tensor  # [paired real images ; random real images]
    fake: torch.Tensor  # [reconstructions of the paired images ; generated images]
    n_paired: int  # real[:n_paired] <-> fake[:n_paired] are pairs (x, G(E(x)))


def compose_batches(x: torch.Tensor, recon: torch.Tensor, generated: torch.Tensor) -> GanBatch:
    """Real and fake batches of AE-OT-GAN §4 (i) / Fig. 2 from a data batch ``x`` whose first
    ``len(recon)`` images are the ones reconstructed; both batches have ``len(x)`` images."""
    n_rec = len(recon)
    if n_rec + len(generated) != len(x):
        raise OTGenError(
            f"fake batch ({n_rec} reconstructions + {len(generated)} generated) must match the "
            f"real batch ({len(x)})"
        )
    return GanBatch(real=x, fake=torch.cat([recon, generated]), n_paired=n_rec)


def generator_loss(
    fake_logits: torch.Tensor,
    recon: torch.Tensor,
    x_paired: torch.Tensor,
    recon_feats: list[torch.Tensor],
    real_feats: list[torch.Tensor],
    *,
    loss: str = "ns",
    adv_weight: float = 1.0,
    content_weight: float = 1.0,
    feature_weights: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total generator loss (module docstring) and its parts (unweighted).

    Parts: ``adv`` (eq. 2), ``content`` (mean squared error of the pairs), ``feature`` (the
    weighted sum over layers), ``feature_<l>`` per layer, ``code`` (the latent-code layer).
    """
    if len(recon_feats) != len(real_feats):
        raise OTGenError("recon_feats and real_feats must list the same layers")
    weights = feature_weights or (1.0 / len(recon_feats),) * len(recon_feats)
    if len(weights) != len(recon_feats):
        raise OTGenError(
            f"feature_weights has {len(weights)} entries, the encoder has {len(recon_feats)} layers"
        )
    parts = {"adv": g_loss(loss, fake_logits), "content": F.mse_loss(recon, x_paired)}
    feat = recon.new_zeros(())
    for i, (a, b, w) in enumerate(zip(recon_feats, real_feats, weights, strict=True)):
        parts[f"feature_{i}"] = F.mse_loss(a, b)
        feat = feat + w * parts[f"feature_{i}"]
    parts["feature"] = feat
    parts["code"] = parts[f"feature_{len(recon_feats) - 1}"]
    total = adv_weight * parts["adv"] + content_weight * parts["content"] + feat
    return total, parts


# -- the method ------------------------------------------------------------------------------
class AEOTGAN(AEOT):
    """AE-OT-GAN (module docstring). Nets: ``E`` (frozen in "gan"), ``G`` (= decoder), ``D``."""

    name = "aeotgan"
    Config = AEOTGANConfig

    def __init__(
        self,
        cfg: AEOTGANConfig | None,
        spec: DataSpec,
        device: torch.device,
        source: Method | None = None,
    ) -> None:
        cfg = self.Config() if cfg is None else cfg
        if cfg.init_from is not None:
            # The engine loads the run named by warm_start_run() and passes it as `source`.
            if source is None:
                raise OTGenError(
                    f"init_from={cfg.init_from}: build this method with "
                    "otgen.engine.build_method, which loads the source run"
                )
            if not isinstance(source, AEOT) or source.ot is None:
                raise OTGenError(f"init_from={cfg.init_from}: not a finished aeot run")
            p = source.cfg
            cfg = replace(cfg, arch=p.arch, latent_dim=p.latent_dim, width=p.width)
        super().__init__(cfg, spec, device)
        if not self.trainable:
            raise OTGenError("aeotgan needs image data (arch='identity' has no generator)")
        arch = cfg.disc_arch
        if arch == "auto":
            arch = "infogan" if spec.shape[1] == 28 else "dcgan"
        D = build_discriminator(arch, spec, width=cfg.disc_width or cfg.width)
        self.nets["D"] = D.to(self.device)
        self.optimizers["G"] = torch.optim.Adam(
            self.nets["G"].parameters(), lr=cfg.lr_g, betas=(cfg.gan_beta1, cfg.gan_beta2)
        )
        self.optimizers["D"] = torch.optim.Adam(
            D.parameters(), lr=cfg.lr_d, betas=(cfg.gan_beta1, cfg.gan_beta2)
        )
        self.in_gan = False
        if source is not None:
            self.nets["E"].load_state_dict(source.nets["E"].state_dict())
            self.nets["G"].load_state_dict(source.nets["G"].state_dict())
            self.ext_map, self.frozen = source.ext_map, True

    @classmethod
    def warm_start_run(cls, cfg: AEOTGANConfig | None) -> str | None:
        return None if cfg is None else cfg.init_from

    def phases(self, total_steps: int) -> list[Phase]:
        if self.cfg.init_from is not None:
            return [Phase("gan", total_steps)]
        gan = round(self.cfg.gan_fraction * total_steps)
        return [*self._ae_phases(total_steps - gan), Phase("ot", 0), Phase("gan", gan)]

    def begin_phase(self, name: str, data: torch.Tensor, labels: torch.Tensor | None) -> None:
        super().begin_phase(name, data, labels)
        if name == "gan":
            if self.ext_map is None:
                raise OTGenError("phase 'gan' needs the OT map (run phase 'ot' first)")
            self.in_gan, self.frozen = True, True
            # E only provides codes and features now: no gradients accumulate in it.
            self.nets["E"].requires_grad_(False)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, float]:
        if not self.in_gan:
            return super().train_step(x, y, step)
        return self._gan_step(x.to(self.device))

    # -- phase "gan" --------------------------------------------------------------------------
    def _fake(self, codes_p: torch.Tensor, codes_g: torch.Tensor):
        """(reconstructions G(E(x_p)), generated G(T(u))) from one generator pass."""
        out = self.nets["G"](torch.cat([codes_p, codes_g]))
        return out[: len(codes_p)], out[len(codes_p) :]

    def _gan_step(self, x: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        E, D = self.nets["E"], self.nets["D"]
        # §4 (i): B = n_rec reconstructed + n_gen generated images, n_gen = r · n_rec
        n_rec, n_gen = split_sizes(len(x), cfg.gen_ratio)
        x_p = x[:n_rec]
        with torch.no_grad():
            codes_p = self._encoder_eval(E, x_p)
            real_feats = [f.detach() for f in self._encoder_eval(E.features, x_p)]
            # One call of the extended map for the D step and every G step: its cost is
            # mostly per call (candidate simplices), not per code.
            codes_g = self.sample_codes(n_gen * (1 + cfg.g_steps)).split(n_gen)
            recon, gen = self._fake(codes_p, codes_g[0])
        # Fig. 2: fake = [G(E(x_p)); G(T(u))], real = [x_p; the rest of x]; D step on eq. (1)
        batch = compose_batches(x, recon, gen)
        real_out, fake_out = D(batch.real), D(batch.fake)
        loss_d = d_loss(cfg.loss, real_out, fake_out)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["D"].step()
        logs = {
            "d_loss": loss_d.item(),
            "p_real": torch.sigmoid(real_out).mean().item(),  # D's probability "real" (Fig. 5c)
            "p_fake": torch.sigmoid(fake_out).mean().item(),
        }
        # §4 (iii): g_steps G steps per D step, each on fresh codes T(u), loss L_G (eq. 2 + content
        # + feature terms, :func:`generator_loss`)
        for k in range(cfg.g_steps):
            recon, gen = self._fake(codes_p, codes_g[k + 1])
            fake_out = D(torch.cat([recon, gen]))
            recon_feats = self._encoder_eval(E.features, recon)
            total, parts = generator_loss(
                fake_out,
                recon,
                x_p,
                recon_feats,
                real_feats,
                loss=cfg.loss,
                adv_weight=cfg.adv_weight,
                content_weight=cfg.content_weight,
                feature_weights=cfg.feature_weights,
            )
            self.optimizers["G"].zero_grad(set_to_none=True)
            total.backward()
            self.optimizers["G"].step()
        # D's gradients from the G passes are discarded: the next D step zeroes them.
        logs.update(
            g_loss=total.item(),
            g_adv=parts["adv"].item(),
            content_loss=parts["content"].item(),
            feature_loss=parts["feature"].item(),
            code_loss=parts["code"].item(),
        )
        return logs

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {**super().extra_state(), "in_gan": torch.tensor(int(self.in_gan))}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_extra_state(state)
        if "in_gan" in state:
            self.in_gan = bool(int(state["in_gan"]))
