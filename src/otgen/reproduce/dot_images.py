"""DOT paper, Tables 1-3 analogue on Fashion-MNIST: latent-space DOT on trained DCGAN-type GANs.

The paper refines CIFAR-10/STL-10 DCGAN/ResNet GANs (Table 1), swaps in the discriminator of
another GAN for a fixed G (Table 2) and runs conditional latent DOT on ImageNet (Table 3). Here,
at a profile's budget (:data:`PROFILES`), on Fashion-MNIST 28×28 with the DCGAN nets:

1. train ``seeds`` independent seeds of each of WGAN-GP, SNGAN (ns), SNGAN (hinge) and a
   class-conditional SNGAN (hinge, projection D) through the engine with
   :func:`otgen.reproduce._converge.train_until_flat`: FID-fmnist-net of a fixed latent sample
   set every ``eval_every`` steps, stop when the last three evaluations agree pairwise within
   their bootstrap s.e. and the last six show no least-squares trend (or at the cap);
2. Table 1: per GAN and seed, k_eff (eq. 21: 100 pairs, mean of 10 repeats) and latent DOT
   (Algorithm 2: SGD lr 0.01, ``dot_steps`` updates, δ = 0.001, tangent projection for the
   N(0, I) prior) on ``n_eval`` fixed latents; FID and IS (``otgen.metrics.evaluate``, fmnist-net
   features, FID against the 10,000 test images) of the same latents bare and after DOT;
3. Table 2: G of SNGAN (ns) fixed, latent DOT with the D of every unconditional GAN of the same
   seed (k_eff re-estimated for each (G, D) pair);
4. Table 3: conditional latent DOT (Algorithm 3) with Adam(0.01, 0, 0.9) for ``cond_updates``
   updates, k_eff(y) = 1 and k_eff(y) per class (eq. 26, 50 pairs per class).

Scores are mean ± s.e. over the training seeds. A claim gets a verdict only when every GAN it
rests on converged (``otgen.utils.claims``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from otgen.data import load
from otgen.reproduce import check_profile, one_thread, profiled
from otgen.utils.claims import Convergence
from otgen.utils.claims import all_converged as joint
from otgen.utils.tables import mean_se

NAME = "dot-images"
GANS = {  # label: (engine method, params besides arch/width)
    "WGAN-GP": ("wgan-gp", {}),
    "SNGAN(ns)": ("sngan", {"loss": "ns"}),
    "SNGAN(hi)": ("sngan", {"loss": "hinge"}),
}
COND = "cSNGAN(hi)"
COND_GAN = ("sngan", {"loss": "hinge", "conditional": True})
FIXED_G = "SNGAN(ns)"  # Table 2's fixed generator (the paper's: SAGAN(hi) of CIFAR-10)
PAPER_G_UPDATES = 100_000  # SNGAN's schedule for its standard CNN (Miyato et al. 2018)
PAPER_BATCH = 64
N_CRITIC = {"WGAN-GP": 5}  # critic steps per generator update (engine steps count critic steps)
DOT_LR = 0.01  # Tables 1-3: SGD / Adam step size ε
K_PAIRS, K_REPEATS = 100, 10  # eq. 21 (eq. 26: half of the pairs per class)


@dataclass(frozen=True)
class Settings:
    seeds: int  # independent trainings per GAN
    width: int | None  # DCGAN base channels (None: the paper's size)
    batch: int
    n_train: int  # training images (subset of the 60,000)
    probe_n: int  # generated images of the convergence probe (fixed latents)
    eval_every: int  # engine steps between evaluations (scaled by n_critic for WGAN-GP)
    max_steps: int  # cap on generator updates (engine steps; scaled by n_critic for WGAN-GP)
    n_eval: int  # generated images per DOT score (same latents bare and after DOT)
    dot_steps: int  # latent DOT updates (Table 1: 20 SGD steps on CIFAR-10, 10 on STL-10)
    cond_updates: tuple[int, ...]  # Table 3 columns
    k_pairs: int = K_PAIRS
    k_repeats: int = K_REPEATS
    wgan_scale: int = 1  # WGAN-GP's cap and eval interval are this many times the others'

    def steps(self, label: str) -> tuple[int, int]:
        """(eval_every, max_steps) of one GAN, in engine (critic) steps: the same number of
        generator updates for every GAN."""
        scale = self.wgan_scale if label == "WGAN-GP" else 1
        return self.eval_every * scale, self.max_steps * scale


PROFILES = {
    # the paper's DCGAN-size nets and SNGAN's schedule (100k generator updates, batch 64; WGAN-GP
    # 5 critic steps per update), for a GPU; evaluated on 10,000 samples
    "paper": Settings(seeds=2, width=None, batch=PAPER_BATCH, n_train=60_000, probe_n=10_000,
                      eval_every=10_000, max_steps=PAPER_G_UPDATES, n_eval=10_000, dot_steps=20,
                      cond_updates=(0, 4, 16, 32), wgan_scale=5),
    # cap from session 5's curves (3,000 steps: every GAN still falling 14-19 FID per 500
    # steps); WGAN-GP gets 5 critic steps per generator update, like the paper profile (session
    # 7: at 65,000 critic steps = 13,000 updates it was still falling ~1-2 FID per 5,000);
    # worst case ~5 h at one thread (~0.037 s per WGAN-GP critic step, ~0.03 s per SNGAN step
    # at width 16, batch 32), resumable; the cap is not part of a run's key. Session 8: both
    # cSNGAN runs were still falling ~9 FID per 10,000 steps at 30,000, hence its 3x cap.
    # Session 9: both WGAN-GP runs reached their 30,000 updates still falling (31.2 -> 27.9
    # and 32.5 -> 29.9 over the last 7,000 updates), hence the same 3x cap for them.
    # Session 13 (BN-free critic): SNGAN(ns) and SNGAN(hi) seed 0 reached the 30,000 cap still
    # moving, so every GAN now has the same cap of 90,000 generator updates (WGAN-GP's and
    # cSNGAN's unchanged). Whole call measured at ~60 min with --jobs 2 on that machine.
    "cpu": Settings(seeds=2, width=16, batch=32, n_train=60_000, probe_n=5_000, eval_every=1000,
                    max_steps=90_000, n_eval=2_000, dot_steps=20, cond_updates=(0, 4, 16, 32),
                    wgan_scale=5),
    "quick": Settings(seeds=2, width=4, batch=16, n_train=400, probe_n=64, eval_every=2,
                      max_steps=4, n_eval=64, dot_steps=2, cond_updates=(0, 2), k_pairs=4,
                      k_repeats=1),
}  # fmt: skip


def budget_fraction(s: Settings, label: str) -> float:
    """Engine steps × batch of the cap over the paper's (SNGAN: 100k updates at batch 64)."""
    paper = PAPER_G_UPDATES * N_CRITIC.get(label, 1) * PAPER_BATCH
    return s.steps(label)[1] * s.batch / paper


# -- training -----------------------------------------------------------------------------------
def train_one(label: str, s: Settings, data, probe, seed: int, dev, runs: Path) -> dict:
    """One GAN of one seed until its FID curve flattens: ``{method, curve}``."""
    from otgen.reproduce._converge import train_until_flat

    method, extra = {**GANS, COND: COND_GAN}[label]
    every, cap = s.steps(label)
    params = {"arch": "dcgan", **extra, **({} if s.width is None else {"width": s.width})}
    trained, _, curve = train_until_flat(
        method, params, data, probe=probe, batch=s.batch, seed=seed, device=dev,
        run_dir=runs / f"{_slug(label)}-seed{seed}", eval_every=every, max_steps=cap,
    )  # fmt: skip
    return {"method": trained, "curve": curve}


def train_all(s: Settings, data, probe, seed: int, dev, runs: Path) -> dict[str, list[dict]]:
    """Every GAN × seed until its FID curve flattens; ``{label: [{method, curve}, ...]}``."""
    return {label: [train_one(label, s, data, probe, seed + i, dev, runs)
                    for i in range(s.seeds)] for label in (*GANS, COND)}  # fmt: skip


def probe_of(s: Settings, seed: int, dev):
    """(test images, the convergence probe on them)."""
    from otgen.reproduce._converge import FidProbe

    test = load("fashion-mnist", split="test").x
    return test, FidProbe(test, n=s.probe_n, seed=seed + 7, device=dev)


def train_jobs(out_dir: Path, profile: str, seed: int, dev: torch.device) -> list:
    """The runs :func:`run` trains, as independent jobs (``otgen reproduce --jobs``); WGAN-GP
    first (five critic steps per generator update: the longest runs)."""
    from otgen.reproduce._jobs import TrainJob

    s = PROFILES[profile]  # the settings travel with each job (a worker imports afresh)
    return [TrainJob(f"{label} seed {seed + i}", _train_job,
                     {"label": label, "s": s, "seed": seed, "run_seed": seed + i, "dev": dev,
                      "runs": out_dir / "runs" / profile})
            for label in (*GANS, COND) for i in range(s.seeds)]  # fmt: skip


def _train_job(label: str, s: Settings, seed: int, run_seed: int, dev, runs: Path) -> None:
    _, probe = probe_of(s, seed, dev)
    train_one(label, s, load("fashion-mnist", n=s.n_train, seed=seed), probe, run_seed, dev, runs)


def _slug(label: str) -> str:
    return label.replace("(", "-").replace(")", "").lower()


def all_converged(parts: dict[str, list[dict]]) -> Convergence:
    """One :class:`Convergence` for a verdict resting on several trainings: converged only if
    every one of them is; the evidence names those that are not."""
    return joint({f"{label} seed {i}": r["curve"]
                  for label, runs in parts.items() for i, r in enumerate(runs)})  # fmt: skip


# -- DOT and scores -----------------------------------------------------------------------------
def _latents(pair, n: int, seed: int, labels=None) -> torch.Tensor:
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        return pair.sample_latent(n, labels)


def _score(evaluator, images: torch.Tensor) -> dict[str, float]:
    sc = evaluator(images, ("fid", "is")).scores
    tag = evaluator.features.name
    return {"fid": float(sc[f"FID-{tag}"]), "is": float(sc[f"IS-{tag}"])}


def dot_once(pair, evaluator, s: Settings, seed: int, *, labels=None, k=None, steps=None,
             optimizer: str = "sgd") -> dict[str, Any]:  # fmt: skip
    """Latent DOT on ``n_eval`` latents seeded by ``seed``: scores bare/after, k_eff, moves."""
    from otgen.methods.dot import estimate_lipschitz, latent_dot

    if k is None:
        k = estimate_lipschitz(pair, "latent", n_pairs=s.k_pairs, n_repeats=s.k_repeats,
                               seed=seed)  # fmt: skip
    z = _latents(pair, s.n_eval, seed, labels)
    steps = s.dot_steps if steps is None else steps
    res = latent_dot(pair, z, k, labels=labels, steps=steps, lr=DOT_LR, optimizer=optimizer)
    return {"res": res, "k": k, "updates": steps, "bare": _score(evaluator, res.x0),
            "dot": _score(evaluator, res.x),
            "move": float(res.displacement.mean())}  # fmt: skip


def table1(models: dict, evaluator, s: Settings, seed: int) -> dict[str, list[dict]]:
    """Per unconditional GAN and seed: k_eff, FID/IS bare and after latent DOT."""
    from otgen.methods.dot import GANPair

    out: dict[str, list[dict]] = {}
    for label in GANS:
        out[label] = [dot_once(GANPair.from_method(m["method"]), evaluator, s, seed + 11 + i)
                      for i, m in enumerate(models[label])]  # fmt: skip
    return out


def table2(models: dict, t1: dict, evaluator, s: Settings, seed: int) -> dict[str, list[dict]]:
    """G of :data:`FIXED_G` with the D of every unconditional GAN of the same seed (its own D's
    run is Table 1's; same latents)."""
    from otgen.methods.dot import GANPair

    out: dict[str, list[dict]] = {}
    for label in GANS:
        if label == FIXED_G:
            out[label] = t1[label]
            continue
        out[label] = [
            dot_once(GANPair.from_method(g["method"], D=d["method"].discriminator), evaluator, s,
                     seed + 11 + i)
            for i, (g, d) in enumerate(zip(models[FIXED_G], models[label], strict=True))
        ]  # fmt: skip
    return out


def table3(models: list[dict], evaluator, s: Settings, seed: int) -> list[dict]:
    """Per seed: conditional latent DOT, Adam(0.01, 0, 0.9), k_eff(y) = 1 and per class."""
    from otgen.methods.dot import GANPair, estimate_lipschitz

    rows = []
    for i, m in enumerate(models):
        pair = GANPair.from_method(m["method"])
        C = pair.num_classes
        labels = (torch.arange(s.n_eval) % C).to(pair.device)
        k_class = estimate_lipschitz(
            pair,
            "latent",
            n_pairs=max(2, s.k_pairs // 2),
            n_repeats=s.k_repeats,
            num_classes=C,
            seed=seed + i,
        )
        # a class whose D∘G is constant on every drawn pair (an untrained net) estimates
        # k_eff(y) = 0, where -D/k is undefined: such classes get the smallest positive k
        k_pos = k_class.value.clamp_min(torch.finfo(torch.float32).tiny)
        per: dict[str, Any] = {
            "k_per_class": k_class.value.tolist(),
            "k_zero_classes": int((k_class.value <= 0).sum()),
        }
        for trial, k in (("k1", 1.0), ("kclass", k_pos)):
            per[trial] = {n: dot_once(pair, evaluator, s, seed + 21 + i, labels=labels, k=k,
                                      steps=n, optimizer="adam")
                          for n in s.cond_updates}  # fmt: skip
        rows.append(per)
    return rows


# -- report -------------------------------------------------------------------------------------
def _ms(values: list[float], digits: int = 2) -> str:
    m, se = mean_se(values)
    return f"{m:.{digits}f}" if se != se else f"{m:.{digits}f} ± {se:.{digits}f}"


def _col(runs: list[dict], when: str, metric: str) -> list[float]:
    return [r[when][metric] for r in runs]


def _delta(runs: list[dict], metric: str) -> list[float]:
    """Improvement per seed: FID falls (bare − DOT), IS rises (DOT − bare)."""
    sign = 1.0 if metric == "fid" else -1.0
    return [sign * (r["bare"][metric] - r["dot"][metric]) for r in runs]


def table1_rows(t1: dict, models: dict) -> list[dict]:
    rows = []
    for label, runs in t1.items():
        curves = [m["curve"] for m in models[label]]
        rows.append({
            "GAN": label, "seeds": str(len(runs)),
            "steps (per seed)": ", ".join(str(c.steps[-1]) for c in curves),
            "converged": ", ".join("yes" if c.converged else "no" for c in curves),
            "k_eff": _ms([float(r["k"]) for r in runs], 3),
            "DOT updates": str(runs[0]["updates"]),
            "bare FID": _ms(_col(runs, "bare", "fid")), "DOT FID": _ms(_col(runs, "dot", "fid")),
            "ΔFID (↓ is +)": _ms(_delta(runs, "fid")),
            "bare IS": _ms(_col(runs, "bare", "is")), "DOT IS": _ms(_col(runs, "dot", "is")),
            "ΔIS": _ms(_delta(runs, "is")),
        })  # fmt: skip
    return rows


def table2_rows(t2: dict) -> list[dict]:
    runs0 = next(iter(t2.values()))
    rows = [{"D": "without D (bare G)", "k_eff": "—", "FID": _ms(_col(runs0, "bare", "fid")),
             "IS": _ms(_col(runs0, "bare", "is")), "ΔFID (↓ is +)": "—"}]  # fmt: skip
    for label, runs in t2.items():
        rows.append({"D": f"D of {label}" + (" (its own)" if label == FIXED_G else ""),
                     "k_eff": _ms([float(r["k"]) for r in runs], 3),
                     "FID": _ms(_col(runs, "dot", "fid")), "IS": _ms(_col(runs, "dot", "is")),
                     "ΔFID (↓ is +)": _ms(_delta(runs, "fid"))})  # fmt: skip
    return rows


def table3_rows(t3: list[dict], updates: tuple[int, ...]) -> list[dict]:
    rows = []
    for trial, tag in (("k1", "k_eff(y) = 1"), ("kclass", "k_eff(y) per class (eq. 26)")):
        row = {"trial": tag}
        for n in updates:
            runs = [seed_rows[trial][n] for seed_rows in t3]
            row[f"#updates={n} (IS, FID)"] = (
                f"{_ms(_col(runs, 'dot', 'is'))}, {_ms(_col(runs, 'dot', 'fid'))}"
            )
        rows.append(row)
    return rows


def make_claims(t1: dict, t2: dict, t3: list[dict], models: dict, s: Settings) -> list:
    from otgen.utils.claims import all_of, make_claim, positive

    # Every "improves" below must be positive by 2 s.e. over seeds (utils.claims.significant):
    # one clearly negative makes the claim fail, one the seeds cannot sign leaves it untested.
    uncond = {k: models[k] for k in GANS}
    budget = max(budget_fraction(s, k) for k in GANS)
    n = len(next(iter(t1.values())))
    # Table 1: every GAN's FID falls and IS rises; the per-seed number is the smallest FID
    # improvement over the GANs
    d1 = {k: (_delta(v, "fid"), _delta(v, "is")) for k, v in t1.items()}
    ok1 = all_of(positive(v) for pair in d1.values() for v in pair)
    text1 = "; ".join(f"{k}: ΔFID {_ms(f)}, ΔIS {_ms(i)}" for k, (f, i) in d1.items())
    worst1 = [min(d1[k][0][j] for k in d1) for j in range(n)]
    # Table 2: every other GAN's D improves the fixed G's FID
    others = {k: _delta(v, "fid") for k, v in t2.items() if k != FIXED_G}
    ok2 = all_of(positive(v) for v in others.values())
    text2 = "; ".join(f"D of {k}: ΔFID {_ms(v)}" for k, v in others.items())
    worst2 = [min(v[j] for v in others.values()) for j in range(n)]
    # Table 3: FID after the most updates below FID without DOT, in both trials
    last = max(s.cond_updates)
    d3 = {tr: [r[tr][last]["bare"]["fid"] - r[tr][last]["dot"]["fid"] for r in t3]
          for tr in ("k1", "kclass")}  # fmt: skip
    ok3 = all_of(positive(v) for v in d3.values())
    text3 = (f"ΔFID at {last} updates: k_eff(y) = 1 {_ms(d3['k1'])}; per class "
             f"{_ms(d3['kclass'])}")  # fmt: skip
    return [
        make_claim("dot-tab1-latent", seed_values=worst1, holds=ok1, ours_text=text1,
                   convergence=all_converged(uncond), budget=budget),
        make_claim("dot-tab2-other-d", seed_values=worst2, holds=ok2, ours_text=text2,
                   convergence=all_converged(uncond), budget=budget),
        make_claim("dot-tab3-conditional", seed_values=d3["k1"], holds=ok3, ours_text=text3,
                   convergence=all_converged({COND: models[COND]}),
                   budget=budget_fraction(s, COND)),
    ]  # fmt: skip


def plot_curves(models: dict, floor: tuple[float, float], path: Path) -> Path:
    """FID-fmnist-net of the probe over training, one line per seed, one panel per GAN."""
    from otgen.viz.curves import Line, Panel, plot_curves

    return plot_curves([Panel(label, {f"seed {i}": Line.of(r["curve"]) for i, r in
                                      enumerate(runs)}, floor=floor[0], xlabel="engine steps")
                        for label, runs in models.items()], path)  # fmt: skip


def _grids(t1: dict, t3: list[dict], out: Path) -> list[Path]:
    """Seed 0 of every GAN: upper half bare, lower half the same latents after DOT."""
    from otgen.viz.images import save_image_grid

    paths = []
    for label, runs in t1.items():
        res = runs[0]["res"]
        path = out / f"dot_images_{_slug(label)}.png"
        paths.append(save_image_grid(torch.cat([res.x0[:32], res.x[:32]]).cpu(), path, scale=2))
    res = t3[0]["k1"][max(t3[0]["k1"])]["res"]
    path = out / "dot_images_conditional.png"
    paths.append(save_image_grid(torch.cat([res.x0[:40], res.x[:40]]).cpu(), path, nrow=10,
                                 scale=2))  # fmt: skip
    return paths


def _strip(tables: Any) -> Any:
    """Tables without the tensors (DOT results) and with k_eff as numbers, for the JSON."""
    if isinstance(tables, dict):
        return {str(k): _strip(v) for k, v in tables.items() if k != "res"}
    if isinstance(tables, list):
        return [_strip(v) for v in tables]
    if hasattr(tables, "value"):  # LipschitzEstimate
        return tables.value.tolist()
    return tables


def real_floor(probe, seed: int) -> tuple[float, float]:
    """FID (± s.e.) of ``probe.n`` training images against the probe's test set: the value a
    perfect generator would reach at these sample sizes."""
    real = load("fashion-mnist", n=probe.n, seed=seed + 99).x
    return probe.floor(real)


@one_thread
@profiled
def run(out_dir: Path, profile: str | bool, seed: int, dev: torch.device) -> dict:
    from otgen.metrics.evaluate import Evaluator
    from otgen.utils.report import write_report

    if isinstance(profile, bool):  # the old ``quick`` flag
        profile = "quick" if profile else "cpu"
    s = PROFILES[check_profile(profile)]
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load("fashion-mnist", n=s.n_train, seed=seed)
    test, probe = probe_of(s, seed, dev)
    floor = real_floor(probe, seed)
    models = train_all(s, data, probe, seed, dev, out_dir / "runs" / profile)
    evaluator = Evaluator(test, "fmnist-net", device=dev)
    t1 = table1(models, evaluator, s, seed)
    t2 = table2(models, t1, evaluator, s, seed)
    t3 = table3(models[COND], evaluator, s, seed)
    claims = make_claims(t1, t2, t3, models, s)
    figures = [plot_curves(models, floor, out_dir / "dot_images_fid_curves.png"),
               *_grids(t1, t3, out_dir)]  # fmt: skip
    rows = table1_rows(t1, models)
    dot_floor = _score(evaluator, load("fashion-mnist", n=s.n_eval, seed=seed + 98).x)
    notes = _notes(s, profile, evaluator, floor, dot_floor, models, t2, t3)
    data_out = {"settings": asdict(s), "seed": seed, "profile": profile,
                "budget_fraction": {k: budget_fraction(s, k) for k in models},
                "real_vs_real_fid": floor, "real_vs_real_dot": dot_floor,
                "curves": {k: [r["curve"].to_dict() for r in v] for k, v in models.items()},
                "table1": _strip(t1), "table2": _strip(t2), "table3": _strip(t3),
                "k_per_class": [r["k_per_class"] for r in t3]}  # fmt: skip
    write_report(out_dir, "dot_images", title="DOT Tables 1-3 analogue (Fashion-MNIST)",
                 rows=rows, data=data_out, notes=notes, claims=claims, figures=figures,
                 profile=profile, command=f"otgen reproduce {NAME} --profile {profile} "
                 f"--seed {seed}", wall_s=time.perf_counter() - t_start)  # fmt: skip
    return {c.key: f"{c.ours()} ({c.verdict})" for c in claims}


def _notes(s, profile, evaluator, floor, dot_floor, models, t2, t3) -> str:
    from otgen.utils.tables import markdown_table

    info = evaluator.features.describe()
    curve_lines = []
    for label, runs in models.items():
        for i, r in enumerate(runs):
            c = r["curve"]
            pts = ", ".join(
                f"{st}: {f:.2f}±{e:.2f}" for st, f, e in zip(c.steps, c.fids, c.ses, strict=True)
            )
            curve_lines.append(f"- {label} seed {i} ({c.seconds:.0f} s training): {pts} — "
                               f"{c.convergence.evidence}")  # fmt: skip
    budget = ", ".join(f"{k} {budget_fraction(s, k):.3g}×" for k in models)
    return "\n\n".join([
        f"Profile **{profile}**: {s.seeds} independent training seeds per GAN; every ± is the "
        "standard error over those seeds. Extractor: "
        f"{info.get('label', info['name'])}; FID against the 10,000 test images, IS over 10 "
        f"splits; DOT scores on {s.n_eval} generated images (the same latents bare and after "
        f"DOT). Real-vs-real floor (training images vs the test set): FID {floor[0]:.2f} ± "
        f"{floor[1]:.2f} at the probe's {s.probe_n} images; FID {dot_floor['fid']:.2f}, IS "
        f"{dot_floor['is']:.2f} at DOT's {s.n_eval} images.",
        f"Training budget (cap) as a fraction of the paper's schedule: {budget}.",
        "Convergence curves (probe FID ± bootstrap s.e. at engine steps):\n" +
        "\n".join(curve_lines),
        "## Table 2 analogue: G of SNGAN(ns) fixed, latent DOT with each D",
        markdown_table(table2_rows(t2)),
        "## Table 3 analogue: conditional latent DOT, Adam(0.01, 0, 0.9), (IS, FID)",
        markdown_table(table3_rows(t3, s.cond_updates)),
        "k_eff(y) per class (seed 0): "
        + ", ".join(f"{v:.3g}" for v in t3[0]["k_per_class"]),
        "Grids: upper half G's samples, lower half the same latents after DOT (seed 0).",
        _deviations(s, models),
    ])  # fmt: skip


def _deviations(s: Settings, models: dict) -> str:
    """Every way this run differs from the paper's protocol (DOT paper §4, Tables 1-3, and the
    reference notes), with the networks as trained (seed 0 of each GAN)."""
    from otgen.methods.gan import WGANGPConfig
    from otgen.utils.report import method_nets

    nets = "; ".join(f"{label} {name}: {text}" for label, runs in models.items()
                     for name, text in method_nets(runs[0]["method"]).items())  # fmt: skip
    latent = models[FIXED_G][0]["method"].latent_dim
    items = [
        f"Data: Fashion-MNIST 28×28 grey ({s.n_train} training images), not CIFAR-10 / STL-10 "
        "(Tables 1-2) or ImageNet (Table 3); pixels in [−1, 1].",
        "Extractor: FID and IS use `fmnist-net` (its 128-d fc1 features, its logits), a small "
        "Fashion-MNIST classifier, not Inception-v3; numbers are not comparable with the "
        f"paper's. DOT's FID/IS use {s.n_eval} generated images against the 10,000 test images "
        f"(IS over 10 splits); the convergence probe uses {s.probe_n}. The paper's sample sizes "
        "for CIFAR-10 / STL-10 are not stated in its main text (ImageNet: reference statistics "
        "of all 798,900 training images). FID at these sample sizes is biased upwards; the "
        "real-vs-real floors above are the reference points.",
        f'Networks, as trained (seed 0): {nets}. The paper: SNGAN\'s "standard CNN" for 32×32 '
        "(a 7-conv D, a 3-deconv G; its WGAN-GP critic without normalisation) and SAGAN / "
        "ResNet models (Table 1's other rows, not run here); the conditional GAN is a small "
        "conditional SNGAN(hinge) with a projection D trained here, not the public pre-trained "
        f"ImageNet cGAN. z ∈ R^{latent} ~ N(0, I) (the SNGAN models: R^128).",
        f"Training: batch {s.batch} (paper: {PAPER_BATCH}); at most {s.max_steps} generator "
        f"updates per GAN (WGAN-GP: ×{s.wgan_scale} engine steps, as an engine step is one "
        f"critic update and WGAN-GP takes {WGANGPConfig.n_critic} per generator update) with "
        "early stop once the FID curve is "
        "steady, vs SNGAN's 100,000 generator updates; no EMA of G (DOT needs the G that D was "
        "trained against); losses, optimisers and learning rates are the presets' (WGAN-GP: "
        "Adam 1e-4 (0.5, 0.9), λ = 10, 5 critic steps; SNGAN: Adam 2e-4 (0.5, 0.999), 1 "
        "critic step). Batch-norm layers (listed above) run in eval mode (running statistics) "
        "during DOT and k_eff.",
        f"Table 2: the fixed G is {FIXED_G} (the paper's: SAGAN of CIFAR-10), with the D of "
        "every other unconditional GAN of the same seed; no SAGAN discriminators.",
        f"DOT: latent SGD ε = {DOT_LR} for {s.dot_steps} updates (the paper's CIFAR-10 "
        "setting), δ = 0.001; the exact tangent projection g − (g·z)z/‖z‖² keeps ‖z‖ (Algorithm "
        '2 prints g − (g·z)z/√D, which does not: `projection="reference"`); k_eff from '
        f"{s.k_pairs} pairs × {s.k_repeats} repeats, the mean of the repeats' maxima.",
        f"Table 3: Adam(0.01, 0, 0.9), {', '.join(map(str, s.cond_updates))} updates, one trial "
        "per k_eff choice per seed (paper: 4 trials of one pre-trained model); per-class "
        f"k_eff(y) from {max(2, s.k_pairs // 2)} pairs × {s.k_repeats} repeats per class "
        "(paper: 50 samples per label).",
        f"Seeds: {s.seeds} independent trainings per GAN (the paper reports one model per row).",
    ]
    return "## Deviations from the paper's protocol\n\n" + "\n".join(f"- {i}" for i in items)
