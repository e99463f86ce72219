"""MBGAN paper analogues on Fashion-MNIST and scikit-learn digits (Tables 3-4, Figs. 4-6, 9).

Experiments (every model trained through the engine, ``otgen.engine.train``):

1. **Fashion-MNIST, MBGAN vs DCGAN** (Table 3 / Figs. 3, 7 analogue): the same number of
   steps and batch; sample grids; FID against test images in the ``fmnist-net`` feature space;
   **linear probe** of each discriminator (activations of every conv layer max-pooled to 4x4,
   concatenated, standardised, linear L2-SVM; ``otgen.metrics.protocols``) trained on labelled
   training images and scored on test images, plus an untrained (random-init) discriminator as
   a floor.
2. **α and K sweeps** (Figs. 4-5) on digits with small nets: α ∈ {0.2, 2, 20, 200} at K = 500
   and K ∈ {5, 50, 500, 5000} at α = 20. Collapse is measured, not eyeballed: FID and class
   coverage read by the shipped ``digits-net`` classifier, and the mean pairwise pixel distance
   of the samples (diversity; ≈ 0 for a collapsed generator).
3. **Generator gradient norm** over training (Fig. 6), logged by the method (``g_grad_norm``).
4. **Latent interpolation** (Fig. 9): z = λ z_l + (1 − λ) z_r, 10 steps, 8 pairs.
5. **Conditional MBGAN** (§3.3, eqs. 5-6): one row per class.
"""

from __future__ import annotations

from pathlib import Path

import torch

from otgen.data import load
from otgen.reproduce import experiment, one_thread
from otgen.utils.report import write_report

FULL = {
    "n_train": None, "steps": 3000, "batch": 64, "width": None, "fid_n": 5000,
    "probe_train": 10000, "probe_test": 5000,
    "sweep_steps": 1500, "sweep_width": 32, "cond_steps": 3000, "cond_data": "fashion-mnist",
}  # fmt: skip
QUICK = {
    "n_train": 5000, "steps": 120, "batch": 64, "width": 32, "fid_n": 1000,
    "probe_train": 2000, "probe_test": 1000,
    "sweep_steps": 80, "sweep_width": 16, "cond_steps": 100, "cond_data": "digits",
}  # fmt: skip
# Strong L2 regularisation of the probe's SVM: with C = 1 liblinear did not converge within
# minutes on 2,000 x 1,536 standardised features; C = 1e-3 converges in ~15 s of CPU.
PROBE_C = 1e-3
ALPHAS = (0.2, 2.0, 20.0, 200.0)
KS = (5, 50, 500, 5000)
PUBLISHED_PROBE = {
    "CIFAR-10": {"DCGAN": 0.758, "MBGAN": 0.768},
    "SVHN": {"DCGAN": 0.890, "MBGAN": 0.877},
}


def _samples(method, n: int, seed: int, chunk: int = 500) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.cat([method.sample(min(chunk, n - i)).cpu() for i in range(0, n, chunk)])


def _fid(extractor, real: torch.Tensor, fake: torch.Tensor) -> float:
    from otgen.metrics.fid import fid

    return float(fid(extractor(real), extractor(fake)))


def _diversity(x: torch.Tensor, n: int = 500) -> float:
    """Mean pairwise Euclidean distance between generated images (per pixel, RMS)."""
    flat = x[:n].flatten(1)
    d = torch.cdist(flat, flat)
    k = flat.shape[0]
    return float(d.sum() / (k * (k - 1)) / flat.shape[1] ** 0.5)


def _probe(D, train, test, seed: int) -> float:
    from otgen.metrics.protocols import linear_probe, probe_features

    D.eval()
    ftr = probe_features(D.features, train.x)
    fte = probe_features(D.features, test.x)
    return linear_probe(ftr, train.y, fte, test.y, C=PROBE_C, max_iter=2000, seed=seed).accuracy


def _plot_lines(series: dict[str, list[tuple[float, float]]], path: Path, title, xlabel, ylabel):
    from matplotlib.figure import Figure

    from otgen.utils.io import atomic_write

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for name, pts in series.items():
        if pts:
            ax.plot(*zip(*pts, strict=True), lw=1.0, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))


def _interpolation(method, path: Path, seed: int, rows: int = 8, cols: int = 10) -> Path:
    from otgen.viz.images import save_image_grid

    gen = torch.Generator().manual_seed(seed)
    z_l, z_r = (torch.rand(rows, method.latent_dim, generator=gen) for _ in range(2))
    lam = torch.linspace(1, 0, cols)
    z = lam[None, :, None] * z_l[:, None] + (1 - lam[None, :, None]) * z_r[:, None]
    G = method.nets["G"]
    G.eval()
    with torch.no_grad():
        imgs = method.generate(z.reshape(rows * cols, -1).to(method.device)).cpu()
    return save_image_grid(imgs, path, nrow=cols, scale=2)


def _main_runs(s, seed, dev, out_dir, fit, rows, figures, data_out):
    from otgen.methods import get_method
    from otgen.metrics.features import get_extractor
    from otgen.viz.images import save_image_grid

    data = load("fashion-mnist", n=s["n_train"], seed=seed)
    test = load("fashion-mnist", split="test", n=s["fid_n"], seed=seed)
    probe_tr = load("fashion-mnist", n=s["probe_train"], seed=seed + 1)
    probe_te = load("fashion-mnist", split="test", n=s["probe_test"], seed=seed + 2)
    extractor = get_extractor("fmnist-net", device=str(dev))
    params = {} if s["width"] is None else {"width": s["width"]}
    trained = {}
    for name, label in (("mbgan", "MBGAN"), ("dcgan", "DCGAN")):
        method, records, seconds = fit(
            name, params, data, s["steps"], s["batch"], seed, dev, out_dir / "runs" / name
        )
        trained[name] = (method, records)
        fake = _samples(method, s["fid_n"], seed + 30_000)
        figures.append(save_image_grid(fake[:64], out_dir / f"fmnist_{name}.png", scale=2))
        rows.append({
            "experiment": "fashion-mnist", "model": label, "steps": s["steps"],
            "train_s": round(seconds, 1), "FID-fmnist-net": _fid(extractor, test.x, fake),
            "probe_acc": _probe(method.discriminator, probe_tr, probe_te, seed),
        })  # fmt: skip
    with torch.random.fork_rng():  # the floor: the same D architecture, untrained
        torch.manual_seed(seed)
        cls = get_method("mbgan")
        fresh = cls(cls.Config(**params), data.spec, dev)
    rows.append({"experiment": "fashion-mnist", "model": "untrained MBGAN D",
                 "probe_acc": _probe(fresh.discriminator, probe_tr, probe_te, seed)})  # fmt: skip
    mb, records = trained["mbgan"]
    curve = [(r["step"], r["g_grad_norm"]) for r in records if "g_grad_norm" in r]
    data_out["grad_norm_curve"] = curve
    figures.append(_plot_lines({"MBGAN G": curve}, out_dir / "grad_norm.png",
                               "Generator gradient norm (Fig. 6 analogue)", "step",
                               "‖∇θ L_G‖₂ (window mean)"))  # fmt: skip
    figures.append(_interpolation(mb, out_dir / "interpolation.png", seed))
    return curve


def _sweeps(s, seed, dev, out_dir, fit, rows, figures):
    from otgen.metrics.coverage import class_coverage
    from otgen.metrics.features import get_extractor
    from otgen.viz.images import save_image_grid

    data = load("digits")
    extractor = get_extractor("digits-net", device=str(dev))
    settings = [(a, 500) for a in ALPHAS] + [(20.0, k) for k in KS if k != 500]
    grids = []
    cov = class_coverage(extractor.logits(data.x[:1000]), data.y)  # reference: the data
    rows.append({
        "experiment": "digits sweep", "model": "real digits (reference)",
        "classes": cov.classes_covered, "class_KL": cov.reverse_kl,
        "diversity": _diversity(data.x[:1000]),
    })  # fmt: skip
    for alpha, k in settings:
        tag = f"alpha{alpha:g}_K{k}"
        method, records, seconds = fit(
            "mbgan", {"alpha": alpha, "K": k, "width": s["sweep_width"]}, data,
            s["sweep_steps"], s["batch"], seed, dev, out_dir / "runs" / f"sweep_{tag}",
        )  # fmt: skip
        fake = _samples(method, 1000, seed + 30_000)
        cov = class_coverage(extractor.logits(fake), data.y)
        rows.append({
            "experiment": "digits sweep", "model": f"MBGAN α={alpha:g} K={k}",
            "steps": s["sweep_steps"], "train_s": round(seconds, 1),
            "FID-digits-net": _fid(extractor, data.x, fake),
            "classes": cov.classes_covered, "class_KL": cov.reverse_kl,
            "diversity": _diversity(fake), "final_d_loss": records[-1].get("d_loss"),
        })  # fmt: skip
        grids.append(save_image_grid(fake[:32], out_dir / f"sweep_{tag}.png", nrow=8, scale=2))
    figures.extend(grids)


def _conditional(s, seed, dev, out_dir, fit, rows, figures):
    from otgen.viz.images import save_image_grid

    data = load(s["cond_data"], n=s["n_train"] if s["cond_data"] != "digits" else None, seed=seed)
    params = {"width": s["sweep_width"] if s["cond_data"] == "digits" else s["width"]}
    params = {k: v for k, v in params.items() if v is not None}
    method, _, seconds = fit(
        "mbgan-cond", params, data, s["cond_steps"], s["batch"], seed, dev,
        out_dir / "runs" / "conditional",
    )  # fmt: skip
    torch.manual_seed(seed + 40_000)
    labels = torch.arange(10).repeat_interleave(10).to(method.device)
    imgs = method.sample(100, labels).cpu()
    figures.append(save_image_grid(imgs, out_dir / "conditional.png", nrow=10, scale=2))
    rows.append({"experiment": f"conditional ({s['cond_data']})", "model": "MBGAN-cond",
                 "steps": s["cond_steps"], "train_s": round(seconds, 1)})  # fmt: skip


@experiment("mbgan", "MBGAN paper: samples, FID, D linear probe vs DCGAN, α/K sweeps, Figs. 6, 9")
@one_thread
def run(out_dir: Path, quick: bool, seed: int, dev: torch.device) -> dict:
    from otgen.reproduce.gan_baselines import fit

    s = QUICK if quick else FULL
    rows, figures, data_out = [], [], {"settings": s, "published_probe": PUBLISHED_PROBE}
    curve = _main_runs(s, seed, dev, out_dir, fit, rows, figures, data_out)
    _sweeps(s, seed, dev, out_dir, fit, rows, figures)
    _conditional(s, seed, dev, out_dir, fit, rows, figures)
    main = {r["model"]: r for r in rows if r["experiment"] == "fashion-mnist"}
    sweep = [r for r in rows if r["experiment"] == "digits sweep"]
    for r in sweep:  # collapsed: at most 2 predicted classes or < half the data's diversity
        if "FID-digits-net" in r:
            r["collapsed"] = r["classes"] <= 2 or r["diversity"] < 0.5 * sweep[0]["diversity"]
    tail = [g for _, g in curve[len(curve) // 2 :]]
    notes = _notes(s, quick, main, sweep, tail)
    write_report(
        out_dir,
        "mbgan",
        title="MBGAN (metric-based GAN) on Fashion-MNIST and digits",
        rows=rows,
        columns=["experiment", "model", "steps", "train_s", "FID-fmnist-net", "probe_acc",
                 "FID-digits-net", "classes", "class_KL", "diversity", "collapsed", "final_d_loss"],
        data=data_out,
        notes=notes,
        command="otgen reproduce mbgan" + (" --quick" if quick else ""),
        figures=figures,
    )  # fmt: skip
    return {
        "probe MBGAN / DCGAN": f"{main['MBGAN']['probe_acc']:.3f} / "
        f"{main['DCGAN']['probe_acc']:.3f}",
        "FID MBGAN / DCGAN": f"{main['MBGAN']['FID-fmnist-net']:.1f} / "
        f"{main['DCGAN']['FID-fmnist-net']:.1f}",
    }


def _notes(s, quick, main, sweep, tail) -> str:
    mb, dc = main["MBGAN"], main["DCGAN"]
    diff = mb["probe_acc"] - dc["probe_acc"]

    def fmt(r: dict) -> str:
        return (
            f"{r['model']}: FID {r['FID-digits-net']:.1f}, {r['classes']} classes, "
            f"diversity {r['diversity']:.3f}"
        )

    lines = [
        f"Settings: {'QUICK' if quick else 'FULL'} {s}. MBGAN: K = 500, α = 20 with the margin "
        "h = α·mean|x_j − G(z)| (L1 norm divided by the pixel count, see docs/mbgan.md), "
        "z ~ U(0, 1)^100, Adam 2e-4 β1 0.5, one G step per D step, 5x5 kernels; DCGAN: the "
        "`dcgan` preset (4x4 kernels, N(0, I) latents).",
        f"Linear probe (Table 3 analogue, Fashion-MNIST): MBGAN D {mb['probe_acc']:.3f} vs DCGAN "
        f"D {dc['probe_acc']:.3f} (difference {diff:+.3f}); the paper reports +0.010 on CIFAR-10 "
        "(0.768 vs 0.758) and −0.013 on SVHN (0.877 vs 0.890), i.e. comparable features. Compare "
        "with the untrained-D floor row: the probe on 4x4-pooled conv features of a random D is "
        "already strong on Fashion-MNIST.",
        "α / K sweeps (Figs. 4-5 claim: α ∈ {0.2, 2} and K ∈ {5, 50} collapse to noise, α ∈ {20, "
        "200} and K ∈ {500, 5000} work): "
        + "; ".join(fmt(r) for r in sweep if "collapsed" in r)
        + f". Reference: real digits diversity {sweep[0]['diversity']:.3f} "
        f"({sweep[0]['classes']} classes). Collapsed runs (≤ 2 classes or < half the real "
        f"diversity): {sum(r['collapsed'] for r in sweep if 'collapsed' in r)} of "
        f"{sum('collapsed' in r for r in sweep)}. MBGAN's generator loss d(x_j, G(z)) pulls "
        "every G(z) towards real embeddings independently of z (towards one median point) "
        "until D separates the collapsed samples; whether training escapes this, and whether "
        "α and K then matter as in Figs. 4-5, needs the longer variant.",
        f"Generator gradient norm (Fig. 6 claim: stays well above 0): second half of training "
        f"min {min(tail):.3g}, mean {sum(tail) / len(tail):.3g}."
        if tail
        else "",
    ]
    if quick:
        lines.append(
            "QUICK runs train for a few minutes on a shared 2-core CPU: the sweeps' runs are far "
            "from converged, so differences between settings are early-training differences; "
            "the full variant (`otgen reproduce mbgan`) trains 1,500 sweep steps and 3,000 main "
            "steps."
        )
    return "\n\n".join(x for x in lines if x)
