"""AE-OT Table 2 / Fig. 13: mode collapse on grid25 (and ring8), AE-OT vs GAN / PacGAN.

Protocol (AE-OT §6.3 and reference notes): no autoencoder; semi-discrete OT from the uniform
distribution on the unit square ([-1/2, 1/2]², translation does not change the map) to 512
real samples; new samples are the extended (piecewise linear) map of uniform samples
(AE-OT-GAN §3.2, :mod:`otgen.ot.extended_map`); PacGAN metrics on 2,500 samples
(:mod:`otgen.metrics.modes`), mean ± s.e. over 10 seeds.

Choices stated in the report:

* θ: the normal-angle test depends on the targets' units, so the targets are scaled inside
  the normals to an RMS norm of 1/2 (``scale = 0.5 / RMS‖y‖``, the half width of the source
  cube) and θ = 0.1 rad. Then the closest pair of *different* modes makes 0.20 rad on grid25
  (two outer modes at a corner; unscaled, diagonal modes such as (2, 2) and (4, 4) make only
  0.16 rad and axis modes (0, 2), (0, 4) 0.22 rad) and 0.34 rad on ring8, while two samples
  of one mode stay below 0.04 rad: every cross-mode simplex is singular, every within-mode
  one regular. Raw units with θ = 0.25 bridged the axis modes (3.8% of samples off-mode).
* "iid" rows use 512 i.i.d. real samples, whose mode counts are multinomial: the target
  itself then has E[reverse KL] ≈ (K − 1)/(2·512) ≈ 0.023 on grid25, which OT reproduces
  faithfully. "balanced" rows draw exactly ⌊512/K⌋ or ⌈512/K⌉ samples per mode.
* GAN / PacGAN rows are those of the ``gan-baselines`` experiment (PacGAN architecture,
  reference-notes settings, CPU schedule) read from its saved per-run metrics; without them
  the full mode trains a short schedule with its runner and ``--quick`` omits them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from otgen.data import toy
from otgen.metrics.modes import N_SAMPLES, mode_metrics
from otgen.ot import extended_map as em
from otgen.ot import semidiscrete as sd
from otgen.reproduce import check_profile, profiled
from otgen.utils.device import resolve_device
from otgen.utils.report import write_report
from otgen.utils.tables import fmt_mean_se

N_REAL = 512
THETA = 0.1
TARGET_RMS = 0.5
PUBLISHED = {
    ("grid25", "AE-OT"): "25.0 ± 0.0 / 99.8 ± 0.2 / 0.007 ± 0.002",
    ("grid25", "GAN"): "17.3 ± 0.8 / 94.8 ± 0.7 / 0.70 ± 0.07",
    ("grid25", "PacGAN4"): "24.8 ± 0.2 / 93.6 ± 0.6 / 0.04 ± 0.01",
    ("ring8", "GAN"): "6.3 / 98.2 / 0.45",
    ("ring8", "PacGAN2"): "7.9 / 95.6 / 0.07",
}
PACK = {"grid25": 4, "ring8": 2}
GAN_STEPS, GAN_SEEDS = 2000, 1
# The OT solve stops at its tolerance or after ``max_iter`` Adam steps -- never at a wall-time
# cap, which would make the numbers depend on the machine's load. The averaged solver's windows
# double (32, 64, ...), so the caps sit at window ends: 992 steps ≈ 15 s and 480 ≈ 7 s on one
# core of the shared CPU (≈ 15 ms per 4,096-sample step), the old 20 s / 8 s time caps. Measured
# (issue 15): tol 0.15 is reached after 224 steps on grid25 and 480 on ring8.
FULL = {"seeds": 10, "tol": 0.15, "max_iter": 992, "variants": ("iid", "balanced")}
QUICK = {"seeds": 2, "tol": 0.3, "max_iter": 480, "variants": ("iid",)}
# AE-OT has no training budget beyond its OT solve: "cpu" and "paper" both run the full protocol.
PROFILES = {"paper": FULL, "cpu": FULL, "quick": QUICK}


def balanced_sample(name: str, n: int, seed: int) -> torch.Tensor:
    """n points of the mixture with ⌊n/K⌋ or ⌈n/K⌉ per mode (modes shuffled, seeded)."""
    means, std = toy.modes(name)
    g = torch.Generator().manual_seed(seed)
    k = means.shape[0]
    mode = torch.randperm(k, generator=g).repeat(n // k + 1)[:n]
    return (means[mode] + std * torch.randn(n, 2, generator=g, dtype=means.dtype)).float()


def aeot_run(name: str, variant: str, seed: int, cfg: dict, dev: torch.device) -> dict:
    """One AE-OT run: solve, extend, generate 2,500 samples, PacGAN metrics."""
    real = (
        toy.sample(name, N_REAL, seed=seed)
        if variant == "iid"
        else balanced_sample(name, N_REAL, seed)
    )
    start = time.perf_counter()
    res = sd.solve(
        real, method="averaged", tol=cfg["tol"], n_samples=4096, seed=seed,
        max_iter=cfg["max_iter"], device=dev,
    )  # fmt: skip
    scale = TARGET_RMS / float(real.double().pow(2).sum(1).mean().sqrt())
    ext = em.extend(res, theta=THETA, scale=scale, n_samples=100 * N_REAL, seed=seed + 1)
    z = torch.rand(N_SAMPLES, 2, generator=torch.Generator().manual_seed(seed + 2)) - 0.5
    fake, linear = ext.map(z.to(res.y))
    seconds = time.perf_counter() - start
    m = mode_metrics(fake.float().cpu(), name)
    return {
        "metrics": m, "fake": fake.float().cpu(), "real": real, "res": res, "ext": ext,
        "linear": float(linear.float().mean()), "seconds": seconds,
    }  # fmt: skip


def _row(name: str, method: str, runs: list, extra: dict | None = None) -> dict:
    ms = [r["metrics"] for r in runs]
    row = {
        "dataset": name,
        "method": method,
        "runs": len(ms),
        "modes": fmt_mean_se([m.modes for m in ms], 1),
        "high quality %": fmt_mean_se([100 * m.high_quality for m in ms], 1),
        "reverse KL": fmt_mean_se([m.reverse_kl for m in ms], 3),
        "published (quoted; modes / HQ% / rKL)": PUBLISHED.get((name, method.split(" ")[0]), ""),
    }
    row.update(extra or {})
    return row


def _gan_rows(name: str, seed: int, quick: bool, dev, out: Path) -> tuple[list[dict], list]:
    """GAN / PacGAN rows: the ``gan-baselines`` experiment's per-run metrics when its results
    exist (no retraining), else (full mode) a short run of its runner; none with --quick."""
    saved = out.parent / "gan-baselines" / "gan_baselines.json"
    rows, panels = [], []
    labels = (("GAN", 1), (f"PacGAN{PACK[name]}", PACK[name]))
    if saved.is_file():
        data = json.loads(saved.read_text())
        for label, _ in labels:
            runs = [r for r in data.get("runs", []) if (r["dataset"], r["model"]) == (name, label)]
            if runs:
                ms = [_Saved(r["modes"], r["high_quality"], r["reverse_kl"]) for r in runs]
                steps = data.get("settings", {}).get("steps", "?")
                frac = _budget(steps)
                extra = {"schedule": f"{steps} steps = {frac} the paper's budget, from "
                         f"`{data.get('command', '')}`"}  # fmt: skip
                rows.append(_row(name, label, [{"metrics": m} for m in ms], extra))
                if "samples" in runs[0]:
                    fake = torch.tensor(runs[0]["samples"])
                    panels.append((f"{label} ({frac} budget)", fake,
                                   toy.sample(name, len(fake), seed=seed)))  # fmt: skip
        return rows, panels
    if quick:
        return rows, panels
    try:
        from otgen.reproduce.gan_baselines import _toy_run
    except ImportError:
        return rows, panels
    for label, pack in labels:
        runs = []
        for s in range(seed, seed + GAN_SEEDS):
            metrics, fake, _, _ = _toy_run(name, pack, GAN_STEPS, s, dev, out)
            runs.append({"metrics": metrics, "fake": fake})
        frac = _budget(GAN_STEPS)
        rows.append(_row(name, label, runs, {"schedule": f"{GAN_STEPS} steps = {frac} budget"}))
        panels.append((f"{label} ({frac} budget)", runs[0]["fake"],
                       toy.sample(name, N_SAMPLES, seed=seed)))  # fmt: skip
    return rows, panels


def _budget(steps) -> str:
    """A GAN schedule as a fraction of the paper's 400 epochs of 100,000 points, batch 100."""
    return f"{steps / 400_000:.2g}×" if isinstance(steps, int) else "?×"


def _aeot_claim(runs: list, cfg: dict):
    """AE-OT covers all 25 modes. Its "training" is the convex OT solve (budget 1.0: nothing
    is cut short), converged when the solver stopped at its tolerance on the estimated L1
    marginal error (not at ``max_iter``) in every seed."""
    from otgen.utils.claims import make_claim

    ms = [r["metrics"] for r in runs]
    return make_claim(
        "aeot-tab2-grid25", seed_values=[m.modes for m in ms],
        convergence=ot_convergence([r["res"] for r in runs], cfg["tol"]), budget=1.0,
        holds=lambda m, se: m >= 24.5,
        ours_text=f"{fmt_mean_se([m.modes for m in ms], 1)} modes / "
        f"{fmt_mean_se([100 * m.high_quality for m in ms], 1)}% / "
        f"{fmt_mean_se([m.reverse_kl for m in ms], 3)}",
    )  # fmt: skip


def ot_convergence(results: list, tol: float):
    """The OT solves' convergence: each seed's solver reached ``tol`` on its estimated L1
    marginal error Σ|w_i − b_i| before its step cap (``SemiDiscreteResult.converged``)."""
    from otgen.utils.claims import Convergence

    capped = sum(not r.converged for r in results)
    steps = [r.n_iter for r in results]
    how = (
        f"{capped} of {len(results)} seeds hit the step cap before tol {tol}"
        if capped
        else f"all {len(results)} seeds stopped at tol {tol}"
    )
    return Convergence(
        not capped,
        f"OT solve: estimated L1 marginal error ≤ {max(r.marginal_error for r in results):.3g}; "
        f"{how} (after {min(steps)}–{max(steps)} Adam steps)",
    )


@dataclass(frozen=True)
class _Saved:
    modes: int
    high_quality: float
    reverse_kl: float


def _figure(panels: list[tuple[str, torch.Tensor, torch.Tensor]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (title, real, fake) in zip(axes[0], panels, strict=True):
        ax.scatter(real[:, 0], real[:, 1], s=4, c="tab:orange", label="real")
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:green", alpha=0.5, label="generated")
        ax.set_title(title)
        ax.set_aspect("equal")
    axes[0][0].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@profiled
def run(out: str, profile: str, seed: int, device: str) -> dict:
    """AE-OT has no training budget beyond its OT solve: "cpu" and "paper" both run FULL."""
    from otgen.viz.power import plot_interpolation, plot_power_diagram

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    quick = check_profile(profile) == "quick"
    cfg = PROFILES[profile]
    rows, figures, summary, raw, claims = [], [], {}, {}, []
    for name in ("grid25", "ring8"):
        panels = []
        for variant in cfg["variants"]:
            runs = [aeot_run(name, variant, seed + s, cfg, dev) for s in range(cfg["seeds"])]
            err = [r["res"].marginal_error for r in runs]
            rows.append(
                _row(
                    name, f"AE-OT ({variant} {N_REAL})", runs,
                    {
                        "schedule": f"OT L1 err {fmt_mean_se(err, 3)}, "
                        f"{fmt_mean_se([r['seconds'] for r in runs], 1)} s/run",
                        "linear %": fmt_mean_se([100 * r["linear"] for r in runs], 1),
                    },
                )
            )  # fmt: skip
            raw[f"{name}/{variant}"] = [r["metrics"].as_dict() for r in runs]
            if (name, variant) == ("grid25", "iid"):
                claims.append(_aeot_claim(runs, cfg))
            summary[f"{name} {variant}"] = (
                rows[-1]["modes"] + " modes, " + rows[-1]["high quality %"] + "% HQ"
            )
            if variant == "iid":
                first = runs[0]
                panels.append(("AE-OT", first["fake"], first["real"]))
                if name == "grid25":
                    plot_power_diagram(
                        first["res"], first["ext"], samples=first["fake"],
                        path=out_dir / "aeot_grid_power.png",
                        title="grid25: cells of the OT map, singular facets bold",
                    )  # fmt: skip
                    figures.append(out_dir / "aeot_grid_power.png")
                    plot_interpolation(
                        first["res"], transport=first["ext"], path=out_dir / "aeot_grid_interp.png"
                    )
                    figures.append(out_dir / "aeot_grid_interp.png")
        gan_rows, gan_panels = _gan_rows(name, seed, quick, dev, out_dir)
        rows.extend(gan_rows)
        panels = gan_panels + panels
        # Fig. 13 layout: real (orange) vs generated (green), one panel per method.
        figures.append(
            _figure([(t, r, f) for t, f, r in panels], out_dir / f"aeot_{name}_fig13.png")
        )
    gan_note = (
        "GAN / PacGAN rows: the published rows are quoted (column 'published (quoted)'); "
        "otgen's rows (PacGAN nets and settings of the reference notes) come from the "
        "`gan-baselines` experiment's saved per-run metrics when present, with their fraction "
        "of the paper's 400 epochs x 10 seeds in the schedule column and the Fig. 13 panel "
        f"titles; otherwise the full mode trains {GAN_STEPS} steps x {GAN_SEEDS} seed(s) and "
        "--quick omits them."
    )
    notes = (
        f"AE-OT: averaged-Adam semi-discrete OT (tol {cfg['tol']} on the estimated L1 marginal "
        f"error, at most {cfg['max_iter']} steps and no wall-time cap, so a seed gives the same "
        f"numbers on any machine), extended map with θ = {THETA} rad on targets scaled to RMS "
        f"norm {TARGET_RMS} (see module docstring for the choice), 2,500 uniform samples per run, "
        f"{cfg['seeds']} seeds. 'linear %' = samples mapped piecewise linearly (the rest go to "
        "their cell's target). i.i.d. 512-point targets have multinomial mode counts, "
        "E[reverse KL] ≈ (K−1)/(2·512) ≈ 0.023 on grid25; the 'balanced' rows remove that "
        "floor (2,500 generated samples alone give ≈ (K−1)/(2·2500) ≈ 0.005). " + gan_note
    )
    config = {**cfg, "variants": list(cfg["variants"])}
    write_report(
        out_dir, "aeot-grid", title="AE-OT mode-collapse comparison (AE-OT Table 2, Fig. 13)",
        rows=rows, data={"runs": raw, "theta": THETA, "config": config}, notes=notes,
        claims=claims, profile=profile,
        command=f"otgen reproduce aeot-grid --profile {profile} --seed {seed}",
        figures=figures,
    )  # fmt: skip
    return summary
