"""AE-OT and AE-OT-GAN on Fashion-MNIST against DCGAN and WGAN-GP (AE-OT Tables 3-4, Fig. 14;
AE-OT-GAN Figs. 5-7 and its FID claim), on a CPU budget.

Models, all trained by the engine on the same training subset and batch size:

* **AE** (reconstructions of test images) and **AE-OT** (``aeot``: phases ae, ae-refine, ot);
* **AE-OT-GAN** (``aeotgan``, ``init_from`` the AE-OT run: only its GAN phase is trained;
  its checkpoints give the progression from epoch 0 = AE-OT, Figs. 6-7, and the FID curve of
  Fig. 5d);
* **DCGAN**, **WGAN-GP** (``otgen.methods.gan`` presets) with as many updates as AE-OT-GAN's
  pipeline in total (AE steps + GAN steps). Train seconds are measured and reported: "same CPU
  budget" is the same number of updates of the same batch size, not the same seconds.

Metrics on ``N_EVAL`` samples against as many test images: FID in the ``fmnist-net``
feature space, PRD max F₈ / F₁/₈ (Sajjadi et al.), class coverage (predicted classes of
fmnist-net: classes covered, reverse KL to the test labels' distribution).
Fig. 12b analogue: decoded straight paths in the source cube through a singular facet (the
image jumps) and through a regular one (the image morphs).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch

from otgen.data import load
from otgen.methods.aeot import pairwise_codes
from otgen.reproduce import one_thread
from otgen.reproduce._engine_runs import train_fresh
from otgen.utils.report import write_report

QUICK = {
    "n_train": 3000,
    "n_eval": 1000,
    "batch": 64,
    "ae_steps": 300,
    "gan_steps": 120,
    "width": 16,
    "latent_dim": 8,
    "ot_targets": 1000,
    "ot_time_limit": 60.0,
    "progress": 4,
}
FULL = {
    "n_train": 10000,
    "n_eval": 2000,
    "batch": 64,
    "ae_steps": 1200,
    "gan_steps": 400,
    "width": 16,
    "latent_dim": 8,
    "ot_targets": 2000,
    "ot_time_limit": 300.0,
    "progress": 4,
}


def _fit(
    method: str,
    params: dict,
    data,
    steps: int,
    s: dict,
    seed: int,
    dev,
    run_dir: Path,
    checkpoint_every: int = 0,
):
    return train_fresh(
        method, params, data, steps=steps, batch=s["batch"], seed=seed, device=dev,
        run_dir=run_dir, log_points=50, checkpoint_every=checkpoint_every, keep_checkpoints=100,
    )  # fmt: skip


def _draw(method, n: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.cat([method.sample(min(500, n - i)).cpu() for i in range(0, n, 500)])


def _scores(images: torch.Tensor, evaluator) -> dict:
    """FID, PRD and class coverage of ``images`` through :mod:`otgen.metrics.evaluate`."""
    report = evaluator(images, ("fid", "prd", "coverage"))
    sc, cov, tag = report.scores, report.details["coverage"], report.extractor["name"]
    return {
        "fid": round(sc[f"FID-{tag}"], 2),
        "prd_f8": round(sc[f"PRD-F8-{tag}"], 3),
        "prd_f1_8": round(sc[f"PRD-F1/8-{tag}"], 3),
        "classes": cov["classes_covered"],
        "reverse_kl": round(cov["reverse_kl"], 4),
        "min_class_frac": round(min(cov["fractions"]), 3),
        "max_class_frac": round(max(cov["fractions"]), 3),
    }


def _plot_curves(records, fids, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.2))
    FigureCanvasAgg(fig)
    panels = [
        ("content_loss", "(a) image content loss"),
        ("code_loss", "(b) latent-code loss"),
        (("p_real", "p_fake"), "(c) D(real) vs D(fake)"),
    ]
    for i, (keys, title) in enumerate(panels):
        ax = fig.add_subplot(1, 4, i + 1)
        for key in (keys,) if isinstance(keys, str) else keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key, lw=0.9)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 4, 4)
    ax.plot([s for s, _ in fids], [f for _, f in fids], "o-")
    ax.set_title("(d) FID (fmnist-net) per checkpoint", fontsize=9)
    ax.set_xlabel("GAN step (0 = AE-OT)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _singularity_paths(aeot, n_steps: int = 10) -> tuple[torch.Tensor, dict]:
    """Fig. 12b: a straight cube path c_i -> c_j (cell centroids) across the largest singular
    facet and across the largest regular one. Per facet two rows: the decoded semi-discrete OT
    map along the path (one jump, at the facet), and the decoded straight latent segment
    y_i -> y_j that a continuous generator would have to produce there (mode mixture when the
    facet is singular)."""
    ext = aeot.ext_map
    f, y = ext.facets, ext.result.y.double()
    out, info = [], {}
    ok = torch.isfinite(ext.centroids).all(1)
    for label, mask in (("singular", f.singular), ("regular", ~f.singular)):
        cand = mask.nonzero(as_tuple=True)[0]
        cand = cand[ok[f.pairs[cand, 0]] & ok[f.pairs[cand, 1]]]
        if len(cand) == 0:
            info[label] = None
            continue
        k = cand[f.measure[cand].argmax()]
        i, j = f.pairs[k].tolist()
        t = torch.linspace(0, 1, n_steps, dtype=torch.float64)[:, None]
        path = (1 - t) * ext.centroids[i] + t * ext.centroids[j]
        cells = ext.result.assign(path)
        info[label] = {
            "pair": [i, j],
            "angle_rad": round(float(f.angle[k]), 3),
            "code_distance": round(float((y[i] - y[j]).norm()), 3),
            "cells_on_path": sorted(set(cells.tolist())),
        }
        out += [aeot.decode(y[cells]).cpu(), aeot.decode((1 - t) * y[i] + t * y[j]).cpu()]
    return (torch.cat(out) if out else torch.empty(0)), info


@one_thread
def run(out: Path, quick: bool, seed: int, dev: torch.device) -> dict:
    return _run(out, quick, seed, dev)


def _run(out: Path, quick: bool, seed: int, dev: torch.device) -> dict:
    from otgen.engine.checkpoint import list_checkpoints
    from otgen.engine.trainer import load_run
    from otgen.metrics.evaluate import Evaluator
    from otgen.viz.images import save_image_grid

    s = QUICK if quick else FULL
    out.mkdir(parents=True, exist_ok=True)
    data = load("fashion-mnist", n=s["n_train"], seed=seed)
    test = load("fashion-mnist", split="test", n=s["n_eval"], seed=seed)
    evaluator = Evaluator(test, "fmnist-net", device=str(dev))
    runs = out / "runs"
    rows, figures, times, extra = [], [], {}, {}

    # -- AE-OT ---------------------------------------------------------------------------------
    ae_params = {
        "width": s["width"],
        "latent_dim": s["latent_dim"],
        "ot_targets": s["ot_targets"],
        "ot_time_limit": s["ot_time_limit"],
        "ot_tol": 0.05,
        "generation": "pairwise",
    }
    ae_records, times["AE-OT"] = _fit(
        "aeot", ae_params, data, s["ae_steps"], s, seed, dev, runs / "aeot"
    )
    aeot, _ = load_run(runs / "aeot", dev)
    before = [r["rec_loss"] for r in ae_records if r["phase"] == "ae"]
    after = [r["rec_loss"] for r in ae_records if r["phase"] == "ae-refine"]
    extra["table1_rec_loss"] = {
        "before_freezing": before[-1] if before else None,
        "after_refinement": after[-1] if after else None,
    }
    recon = torch.cat(
        [aeot.decode(aeot.encode(test.x[i : i + 500])).cpu() for i in range(0, len(test.x), 500)]
    )
    samples = {"AE (reconstructions)": recon, "AE-OT": _draw(aeot, s["n_eval"], seed + 1)}
    pairwise_cfg = aeot.cfg
    aeot.cfg = replace(pairwise_cfg, generation="extended")  # the barycentric extended map
    samples["AE-OT (barycentric map)"] = _draw(aeot, s["n_eval"], seed + 1)
    aeot.cfg = pairwise_cfg
    torch.manual_seed(seed + 2)
    u = torch.rand(20000, aeot.latent_dim, dtype=torch.float64) - 0.5
    _, linear = aeot.ext_map.map(u)
    _, paired = pairwise_codes(aeot.ext_map, u, aeot.cfg.pair_k, aeot.cfg.pair_weight)
    ot = aeot.ot
    extra["ot"] = {
        "targets": ot.n,
        "marginal_error_l1": round(ot.marginal_error, 4),
        "converged": ot.converged,
        "n_iter": ot.n_iter,
        "facets": len(aeot.ext_map.facets.pairs),
        "singular_facets": aeot.ext_map.facets.n_singular,
        "theta": aeot.ext_map.theta,
        "piecewise_linear_fraction": round(float(linear.double().mean()), 4),
        "pairwise_new_code_fraction": round(float(paired.double().mean()), 4),
    }
    paths, extra["singularity_paths"] = _singularity_paths(aeot)
    if len(paths):
        figures.append(save_image_grid(paths, out / "aeot_singularity_paths.png", nrow=10, scale=2))

    # -- AE-OT-GAN from the AE-OT run ------------------------------------------------------------
    gan_params = {
        **ae_params,
        "init_from": str(runs / "aeot"),
        "disc_width": s["width"],
    }
    every = max(1, s["gan_steps"] // s["progress"])
    gan_records, gan_s = _fit(
        "aeotgan",
        gan_params,
        data,
        s["gan_steps"],
        s,
        seed,
        dev,
        runs / "aeotgan",
        checkpoint_every=every,
    )
    times["AE-OT-GAN"] = times["AE-OT"] + gan_s
    fixed_x = test.x[:8]
    torch.manual_seed(seed + 3)
    fixed_codes = aeot.sample_codes(8)
    prog_rec, prog_gen = [aeot.decode(aeot.encode(fixed_x)).cpu()], [aeot.decode(fixed_codes).cpu()]
    fids = [(0, _scores(samples["AE-OT"], evaluator)["fid"])]
    ckpts = list_checkpoints(runs / "aeotgan" / "checkpoints")
    for step, path in ckpts:
        m, _ = load_run(runs / "aeotgan", dev, checkpoint=path)
        prog_rec.append(m.decode(m.encode(fixed_x)).cpu())
        prog_gen.append(m.decode(fixed_codes).cpu())
        if step != ckpts[-1][0]:
            fids.append(
                (
                    step,
                    _scores(_draw(m, s["n_eval"], seed + 1), evaluator)["fid"],
                )
            )
    aeotgan, _ = load_run(runs / "aeotgan", dev)
    samples["AE-OT-GAN"] = _draw(aeotgan, s["n_eval"], seed + 1)
    prog_rec.append(fixed_x)
    figures.append(
        save_image_grid(torch.cat(prog_rec), out / "aeotgan_progress_recon.png", nrow=8, scale=2)
    )
    figures.append(
        save_image_grid(
            torch.cat(prog_gen), out / "aeotgan_progress_generated.png", nrow=8, scale=2
        )
    )

    # -- GAN baselines: as many updates as the whole AE-OT-GAN pipeline -------------------------
    total = s["ae_steps"] + s["gan_steps"]
    for name, method in (("DCGAN", "dcgan"), ("WGAN-GP", "wgan-gp")):
        _, times[name] = _fit(
            method, {"width": s["width"]}, data, total, s, seed, dev, runs / method
        )
        m, _ = load_run(runs / method, dev)
        samples[name] = _draw(m, s["n_eval"], seed + 1)

    # -- table -----------------------------------------------------------------------------------
    for name, images in samples.items():
        sc = _scores(images, evaluator)
        if name == "AE-OT-GAN":
            fids.append((s["gan_steps"], sc["fid"]))
        rows.append({"model": name, "train_s": round(times.get(name, times["AE-OT"]), 1), **sc})
        slug = name.split(" (")[0].lower() + ("-barycentric" if "barycentric" in name else "")
        figures.append(save_image_grid(images[:64], out / f"samples_{slug}.png", scale=2))
    figures.append(_plot_curves(gan_records, fids, out / "aeotgan_curves.png"))
    figures.append(save_image_grid(test.x[:64], out / "samples_real_test.png", scale=2))
    for ckdir in runs.glob("*/checkpoints"):  # weights (~50 MB) do not belong in results;
        shutil.rmtree(ckdir, ignore_errors=True)  # re-run the stored config to get them back
    extra["fid_progression"] = fids
    claims = _claims(rows)
    write_report(
        out,
        "aeot_fmnist",
        title="AE-OT / AE-OT-GAN vs DCGAN / WGAN-GP on Fashion-MNIST (CPU budget)",
        rows=rows,
        data={"settings": s, **extra, "claims": claims},
        command="otgen reproduce aeot-fmnist" + (" --quick" if quick else ""),
        figures=figures,
        notes=_notes(s, extra, claims),
    )
    return {r["model"]: f"FID {r['fid']}, rKL {r['reverse_kl']}" for r in rows}


def _claims(rows: list[dict]) -> dict[str, dict]:
    by = {r["model"]: r for r in rows}
    rkl = {k: r["reverse_kl"] for k, r in by.items() if not k.startswith("AE (")}
    ae, aeot, gan = by["AE (reconstructions)"], by["AE-OT"], by["AE-OT-GAN"]
    return {
        "AE-OT's class coverage is the most uniform (lowest reverse KL among generators)": {
            "holds": min(rkl, key=rkl.get).startswith("AE-OT ") or min(rkl, key=rkl.get) == "AE-OT",
            "numbers": rkl,
        },
        "AE-OT's class coverage is more uniform than DCGAN's and WGAN-GP's": {
            "holds": aeot["reverse_kl"]
            < min(by["DCGAN"]["reverse_kl"], by["WGAN-GP"]["reverse_kl"]),
            "numbers": {k: rkl[k] for k in ("AE-OT", "DCGAN", "WGAN-GP")},
        },
        "AE-OT's FID is close to the AE reconstruction FID (within 25%)": {
            "holds": abs(aeot["fid"] - ae["fid"]) <= 0.25 * ae["fid"],
            "numbers": {"AE-OT": aeot["fid"], "AE": ae["fid"]},
        },
        "AE-OT-GAN's FID is lower than AE-OT's": {
            "holds": gan["fid"] < aeot["fid"],
            "numbers": {"AE-OT-GAN": gan["fid"], "AE-OT": aeot["fid"]},
        },
    }


def _notes(s: dict, extra: dict, claims: dict) -> str:
    ot, t1 = extra["ot"], extra["table1_rec_loss"]
    lines = [
        f"Fashion-MNIST: {s['n_train']} training images, metrics on {s['n_eval']} samples vs "
        f"{s['n_eval']} test images; FID/PRD/coverage use the shipped fmnist-net (fc1 features, "
        "logits). Nets: InfoGAN layout at width "
        f"{s['width']} (the paper: 64), latent dim {s['latent_dim']}, batch {s['batch']}.",
        f"Budget: AE-OT {s['ae_steps']} AE steps (last 30% with the encoder frozen); AE-OT-GAN "
        f"= that run + {s['gan_steps']} GAN steps (2 G steps per D step); DCGAN and WGAN-GP "
        f"{s['ae_steps'] + s['gan_steps']} steps each (critic steps for WGAN-GP). train_s is "
        "measured on a shared, loaded 2-core machine.",
        f"Table 1 analogue (MSE on the training batches): before freezing the encoder "
        f"{t1['before_freezing']}, after refining the decoder {t1['after_refinement']}.",
        f"OT: {ot['targets']} codes as targets (a CPU budget; the paper uses all), estimated L1 "
        f"marginal error {ot['marginal_error_l1']} (converged={ot['converged']}, "
        f"{ot['n_iter']} iterations); {ot['singular_facets']} of {ot['facets']} facets singular "
        f"at θ = {ot['theta']}; fraction of cube samples mapped piecewise linearly (new codes): "
        f"{ot['piecewise_linear_fraction']} — the rest map to a training code, i.e. AE-OT then "
        "decodes training codes (see docs/aeot.md).",
        f"Pairwise reference generator (the AE-OT row, and AE-OT-GAN's codes): fraction of new "
        f"codes {ot['pairwise_new_code_fraction']}.",
        "Singularity figure rows: (1) OT map along a cube path across the largest singular "
        "facet, (2) straight latent segment between its two codes, (3)-(4) the same for the "
        f"largest regular facet: {extra['singularity_paths']}.",
        "Progression figures (Figs. 6-7): rows are GAN step 0 (= AE-OT), then every checkpoint "
        f"(every {max(1, s['gan_steps'] // s['progress'])} GAN steps); reconstructions end with "
        "a row of the ground-truth test images, generated images use fixed latent codes.",
        "Claims:",
    ]
    for claim, v in claims.items():
        lines.append(f"- {claim}: {'HOLDS' if v['holds'] else 'DOES NOT HOLD'} {v['numbers']}")
    lines.append(
        "Reading the coverage numbers: the AE's own reconstructions of test images are not at "
        "reverse KL 0 either — fmnist-net misreads blurry images (shirt / pullover / coat), so "
        "blur, not missing modes, dominates the small values; AE-OT-GAN's sharper images are "
        "read more like the data. AE-OT and AE-OT-GAN cover all classes on the same codes."
    )
    return "\n".join(lines)
