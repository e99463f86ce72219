"""GAN baselines: the PacGAN mode-collapse protocol (AE-OT Table 2) and DCGAN / WGAN-GP on
Fashion-MNIST.

``gan-baselines`` (reference notes, "Mode-collapse metrics"): grid25 and ring8, 100,000
training points, PacGAN networks (G 2->400x4->2 BN+ReLU, D 3x maxout(200, 5)), z ~ N(0, I_2),
non-saturating loss, Adam 1e-4 β1 0.8, N(0, 0.02) init. The unpacked GAN reads batches of 100
samples; PacGANm reads 100 packs of m samples, so its discriminator sees as many inputs per
step as the GAN's (PacGAN Sec. 3). Evaluation: 2,500 samples, modes / high-quality % / reverse
KL (``otgen.metrics.modes``), mean ± standard error over seeds. The paper trains 400 epochs
(400,000 steps); the full setting here is 4,000 steps x 2 seeds (about 8 minutes per run on
one CPU core at 60 ms per step), so fewer modes may be found.

``gan-baselines-fmnist``: the "dcgan" preset (DCGAN nets, non-saturating loss, Adam 2e-4 β1 0.5)
and the "wgan-gp" preset (λ = 10, 5 critic steps, Adam 1e-4 (0.5, 0.9)) on Fashion-MNIST 28x28,
a few epochs; sample grids, loss curves and, when the ``fmnist-net`` extractor's weights are
available, FID against 5,000 test images.

Every run goes through the training engine (``otgen.engine.trainer.train``); the trained
method is reloaded with ``load_run`` from its final checkpoint. The run folders
(``runs/<name>``: config.json, metrics.jsonl, samples) stay under ``out``; their checkpoints are
deleted to keep results small.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from otgen.data import load
from otgen.data.toy import modes
from otgen.errors import OTGenError
from otgen.metrics.modes import N_SAMPLES, mode_metrics
from otgen.reproduce import one_thread
from otgen.reproduce._engine_runs import train_fresh
from otgen.utils.report import write_report
from otgen.utils.tables import fmt_mean_se

# Published (mean ± s.e., 10 runs), reference notes: modes, high-quality %, reverse KL.
PUBLISHED = {
    ("grid25", "GAN"): (17.3, 94.8, 0.70),
    ("grid25", "PacGAN4"): (24.8, 93.6, 0.04),
    ("ring8", "GAN"): (6.3, 98.2, 0.45),
    ("ring8", "PacGAN2"): (7.9, 95.6, 0.07),
}
TOY_RUNS = (("grid25", 4), ("ring8", 2))  # (dataset, PacGAN's packing degree)
TOY_FULL = {"steps": 4_000, "seeds": 2}  # CPU budget; the paper: 400,000 steps x 10
TOY_QUICK = {"steps": 1_500, "seeds": 1}
TOY_BATCH = 100  # packs (or samples) per discriminator step
TOY_TRAIN_POINTS = 100_000
FIGURE_SAMPLES = 1_000  # generated points of each first seed stored in the JSON


def fit(method: str, params: dict, data, steps: int, batch: int, seed: int, dev, run_dir: Path):
    """Train ``method`` with the engine; returns (trained method, metric records, seconds)."""
    from otgen.engine.trainer import load_run

    records, seconds = train_fresh(
        method, params, data, steps=steps, batch=batch, seed=seed, device=dev, run_dir=run_dir
    )
    trained, _ = load_run(run_dir, dev)
    # Checkpoints (~10 MB per run) do not belong in benchmarks/results; config, metrics and
    # samples stay. Re-run with the config to get the weights back.
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return trained, records, seconds


def _toy_run(dataset: str, pack: int, steps: int, seed: int, dev: torch.device, out: Path):
    data = load(dataset, n=TOY_TRAIN_POINTS, seed=seed)
    run_dir = out / "runs" / f"{dataset}_pack{pack}_seed{seed}"
    method, records, seconds = fit(
        "pacgan", {"pack": pack}, data, steps, TOY_BATCH * pack, seed, dev, run_dir
    )
    torch.manual_seed(seed + 30_000)
    fake = method.sample(N_SAMPLES).cpu()
    return mode_metrics(fake, dataset), fake, records[-1]["d_loss"], seconds


@one_thread  # small nets on a shared CPU: one thread avoids stalls (10x here)
def run_toys(out_dir: Path, quick: bool, seed: int, dev: torch.device) -> dict:
    from otgen.viz.points import plot_points

    settings = TOY_QUICK if quick else TOY_FULL
    rows, figures, runs, summary = [], [], [], {}
    for dataset, m in TOY_RUNS:
        for label, pack in (("GAN", 1), (f"PacGAN{m}", m)):
            metrics = []
            for s in range(seed, seed + settings["seeds"]):
                result, fake, d_loss, seconds = _toy_run(
                    dataset, pack, settings["steps"], s, dev, out_dir
                )
                metrics.append(result)
                runs.append(
                    {
                        "dataset": dataset,
                        "model": label,
                        "seed": s,
                        "train_s": seconds,
                        "final_d_loss": d_loss,
                        **result.as_dict(),
                    }
                )
                if s == seed:  # kept for other reports' figures (aeot-grid's Fig. 13)
                    runs[-1]["samples"] = fake[:FIGURE_SAMPLES].double().round(decimals=4).tolist()
                    real = load(dataset, n=N_SAMPLES, seed=seed + 10_000).x
                    figures.append(
                        plot_points(
                            real,
                            fake,
                            out_dir / f"{dataset}_{label.lower()}.png",
                            title=f"{label} on {dataset}, {settings['steps']} steps (seed {s})",
                            means=modes(dataset)[0],
                            contours=False,
                        )
                    )
            pub = PUBLISHED.get((dataset, label))
            row = {
                "dataset": dataset,
                "model": label,
                "modes": fmt_mean_se([r.modes for r in metrics], 1),
                "high_quality_%": fmt_mean_se([100 * r.high_quality for r in metrics], 1),
                "reverse_kl": fmt_mean_se([r.reverse_kl for r in metrics], 3),
                "published (modes / hq% / KL)": " / ".join(map(str, pub)) if pub else "",
                "seeds": len(metrics),
                "steps": settings["steps"],
            }
            rows.append(row)
            summary[f"{dataset} {label}"] = f"modes {row['modes']}, KL {row['reverse_kl']}"
    notes = (
        "PacGAN protocol (reference notes): 2,500 samples; a sample is high quality within 3σ of "
        "its nearest mode; modes = modes with >= 1 high-quality sample; reverse KL = "
        "KL(q || uniform) of the high-quality counts (natural log). Mean ± standard error over "
        "seeds. Published values: mean ± s.e. over 10 runs of 400 epochs (400,000 steps); "
        f"these runs use {settings['steps']} steps, so they are not expected to match yet."
    )
    write_report(
        out_dir,
        "gan_baselines",
        title="GAN vs PacGAN mode collapse (grid25, ring8)",
        rows=rows,
        data={"runs": runs, "settings": settings},
        notes=notes,
        command="otgen reproduce gan-baselines" + (" --quick" if quick else ""),
        figures=figures,
    )
    return summary


# -- gan-baselines-fmnist ----------------------------------------------------------------------
IMG_FULL = {"steps": {"dcgan": 2_800, "wgan-gp": 5_600}, "batch": 64}  # ~3 epochs of G updates
IMG_QUICK = {"steps": {"dcgan": 150, "wgan-gp": 300}, "batch": 64}
FID_REAL = 5_000


def _fid(fake: torch.Tensor, real: torch.Tensor, dev: torch.device) -> float | None:
    """FID in the fmnist-net feature space; None when its weights are not available."""
    from otgen.metrics.evaluate import fid_of

    try:
        return fid_of(fake, real, "fmnist-net", device=str(dev))
    except OTGenError:
        return None


def _plot_curves(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.5))
    FigureCanvasAgg(fig)
    for i, (name, history) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        for key in ("d_loss", "g_loss"):
            pts = [(h["step"], h[key]) for h in history if key in h]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key, lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("critic step (window means)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


@one_thread  # small nets on a shared CPU: one thread avoids stalls (10x here)
def run_fmnist(out_dir: Path, quick: bool, seed: int, dev: torch.device) -> dict:
    from otgen.viz.images import save_image_grid

    settings = IMG_QUICK if quick else IMG_FULL
    data = load("fashion-mnist")
    test = load("fashion-mnist", split="test", n=FID_REAL, seed=seed).x
    rows, figures, curves, summary = [], [], {}, {}
    for name in ("dcgan", "wgan-gp"):
        steps = settings["steps"][name]
        method, history, seconds = fit(
            name, {}, data, steps, settings["batch"], seed, dev, out_dir / "runs" / name
        )
        curves[name] = history
        torch.manual_seed(seed + 30_000)
        fake = torch.cat([method.sample(500).cpu() for _ in range(FID_REAL // 500)])
        figures.append(save_image_grid(fake[:64], out_dir / f"fmnist_{name}.png", scale=2))
        score = _fid(fake, test, dev)
        epochs = steps * settings["batch"] / data.x.shape[0]
        rows.append(
            {
                "model": name,
                "critic_steps": steps,
                "epochs": round(epochs, 2),
                "train_s": round(seconds, 1),
                "fid_fmnist_net": score,
                "final_d_loss": history[-1]["d_loss"] if history else None,
            }
        )
        summary[name] = f"FID(fmnist-net) {score}" if score is not None else "FID n/a"
    figures.append(_plot_curves(curves, out_dir / "fmnist_losses.png"))
    write_report(
        out_dir,
        "gan_baselines_fmnist",
        title="DCGAN and WGAN-GP on Fashion-MNIST 28x28",
        rows=rows,
        data={"settings": settings},
        command="otgen reproduce gan-baselines-fmnist" + (" --quick" if quick else ""),
        figures=figures,
        notes="FID between 5,000 generated and 5,000 test images in the fmnist-net feature "
        "space (empty when that extractor's weights are missing). Steps count critic updates; "
        "WGAN-GP updates G once per 5 of them.",
    )
    return summary
