"""EOT paper Fig. 1c-d analogue: DCGAN, WGAN, EOTGM and EOTGAN on Fashion-MNIST, trained for
the same number of epochs, compared by the mixing-ratio protocol (IS and FID against the
generated fraction r).

Protocol (``otgen.metrics.protocols.mixing_ratio``, EOT paper §3.3): S_em = n real test images,
S_syn = round(r·n) generated + the rest real (disjoint from S_em); FID(S_em, S_syn) and
IS(S_syn) for r = 0, 0.1, ..., 1, averaged over repeats. The paper uses MNIST and a ResNet-34
trained on it; here Fashion-MNIST and the shipped ``fmnist-net`` extractor
(``otgen.metrics.features``), so scores are labelled FID-/IS-fmnist-net.

Equal epochs (the paper's protocol: every model 50 epochs): all four get the same batch size
and the same cap on training steps, i.e. the same number of passes over the data, except where
a profile's ``cap_scale`` raises a model's cap (``cpu``: WGAN's ×5, so that its generator gets
as many updates as the others', and EOTGAN's ×1.5, since it oscillates). Under the
``cpu`` profile each model is trained by :func:`otgen.reproduce._converge.train_until_flat`:
FID-fmnist-net of a fixed generated set is evaluated every ``eval_every`` steps and training
stops early once the curve is steady (the last three evaluations agree pairwise within their
standard errors and the last six show no least-squares trend; a flattened
model's mixing curve would not move further), or at the common cap. The ``paper`` profile runs
every model the full 50 epochs (no early stop), as the paper does.

All four use the same DCGAN generator (``otgen.nets.dcgan``, base ``width``) and 100-d N(0, I)
latents, and each method's paper defaults (DCGAN: Adam 2e-4; WGAN: clipping 0.01, RMSprop 5e-5,
5 critic steps per generator step; EOTGM: ε = 15 on pixels, RMSprop 1e-4; EOTGAN: ε = 5,
γ = 5, m = 2, RMSprop 1e-4, anchor/positive = the two halves of the batch).

The claims checked (EOT paper §3.3, Fig. 1c-d): as r grows EOTGAN degrades slowest and EOTGM
fastest, by IS (drop IS(0) − IS(1)) and by FID (rise FID(1) − FID(0)); per-seed drops/rises are
averaged over independent training seeds (mean ± s.e.). A verdict needs every model of every
seed to have flattened (otherwise "untested") and ≥ 2 seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from otgen.data import load
from otgen.methods.gan import WGANConfig
from otgen.reproduce import check_profile, generator_ema, one_thread, profiled
from otgen.utils.claims import Convergence, all_converged, make_claim
from otgen.utils.report import method_nets, write_report
from otgen.utils.tables import fmt_mean_se, mean_se

METHODS = ("dcgan", "wgan", "eotgm", "eotgan")
LABELS = {"dcgan": "DCGAN", "wgan": "WGAN", "eotgm": "EOTGM", "eotgan": "EOTGAN"}
EXTRACTOR = "fmnist-net"
PAPER_EPOCHS, PAPER_BATCH, PAPER_TRAIN = 50, 128, 60_000  # EOT paper (reference notes)
TRAIN_SET = 60_000  # Fashion-MNIST's training set
N_CRITIC = WGANConfig.n_critic  # WGAN's critic updates per generator update


@dataclass(frozen=True)
class Settings:
    """One profile. ``max_steps`` is the common cap (equal epochs: same batch for all);
    ``cap_scale``: a model whose cap is that many times the common one (see :meth:`cap`);
    ``early_stop``: stop a model once its FID curve flattens (False: always run the cap)."""

    n_train: int | None  # None: the full training set
    batch: int
    width: int | None  # base channels of the generator (and DCGAN/WGAN critic); None: 64
    max_steps: int
    eval_every: int
    probe_n: int  # generated (and real) images of the convergence probe
    mix_n: int
    repeats: int
    seeds: int
    ema: float  # generator EMA decay (0: none)
    ema_start: int = 0  # the EMA copies the weights until this step, then averages
    early_stop: bool = True
    boot: int = 20  # bootstrap resamples of the probe's standard error
    cap_scale: dict[str, int | float] = field(default_factory=dict)

    def epochs(self, steps: int) -> float:
        return steps * self.batch / (self.n_train or TRAIN_SET)

    def cap(self, name: str) -> int:
        """``name``'s cap on engine steps: the common cap, times its ``cap_scale``. The
        evaluation interval stays common, so a raised cap continues a saved run."""
        return round(self.max_steps * self.cap_scale.get(name, 1))


PROFILES = {
    "quick": Settings(n_train=2000, batch=32, width=8, max_steps=40, eval_every=20,
                      probe_n=500, mix_n=200, repeats=2, seeds=2, ema=0.0),
    # cap from session 7's curves: at 12,000 steps DCGAN was still falling ~2 FID per 800 and
    # EOTGAN paused once on its way down (the stop rule now needs three evaluations that
    # agree); worst case ~6 h at one thread (~0.07 s per DCGAN, ~0.23 s per EOTGAN step),
    # resumable, and the cap can be raised later without retraining (not part of a run's key)
    # Session 8: both EOTGANs were still moving (±2 FID) at 30,000, and under the trend test
    # most "steady" runs were still falling: the cap is now the paper's 50 epochs at batch 64
    # Session 11: at that cap both WGANs were still falling (~0.7 FID per 1,000 steps) and
    # one EOTGAN oscillated ±5 FID; WGAN's cap x5 (its 5 critic steps per generator update:
    # as many generator updates as the others' cap) and EOTGAN's x1.5 (75 epochs)
    # Session 14: under EMA 0.99 (a ~100-step average) both EOTGANs jumped 31-50 FID between
    # evaluations 1,000 steps apart through step 40,000, so the stop rule could never pass;
    # the EMA now averages ~1,000 steps (0.999, from step 1,000), one evaluation interval
    "cpu": Settings(n_train=None, batch=64, width=16, max_steps=46_875, eval_every=1000,
                    probe_n=5000, mix_n=2000, repeats=5, seeds=2, ema=0.999, ema_start=1000,
                    cap_scale={"wgan": N_CRITIC, "eotgan": 1.5}),
    "paper": Settings(n_train=None, batch=PAPER_BATCH, width=None,
                      max_steps=PAPER_EPOCHS * PAPER_TRAIN // PAPER_BATCH, eval_every=2344,
                      probe_n=5000, mix_n=2000, repeats=5, seeds=2, ema=0.0, early_stop=False),
}  # fmt: skip


def method_params(s: Settings) -> dict:
    """Each method's paper defaults, with the profile's network width."""
    return {} if s.width is None else {"width": s.width}


def degradation(res) -> dict[str, float]:
    """IS drop IS(0) − IS(1) and FID rise FID(1) − FID(0) of one mixing-ratio result."""
    fid, is_ = res.mean("fid"), res.mean("is")
    return {"IS(r=0)": float(is_[0]), "IS(r=1)": float(is_[-1]),
            "IS drop": float(is_[0] - is_[-1]), "FID(r=0)": float(fid[0]),
            "FID(r=1)": float(fid[-1]), "FID rise": float(fid[-1] - fid[0])}  # fmt: skip


def ordering_holds(per_model: dict[str, list[float]]):
    """EOTGAN degrades least and EOTGM most: every gap to another model signed by 2 s.e. of
    the difference of the across-seed means (False if a gap is clearly the other way,
    INCONCLUSIVE if the seeds cannot sign one)."""
    from otgen.utils.claims import all_of, significant

    stats = {m: mean_se(v) for m, v in per_model.items()}

    def gap(hi: str, lo: str):  # is hi's degradation above lo's?
        (mh, sh), (ml, sl) = stats[hi], stats[lo]
        return significant(mh - ml, float(np.hypot(sh, sl)))

    return all_of([gap(m, "EOTGAN") for m in stats if m != "EOTGAN"]
                  + [gap("EOTGM", m) for m in stats if m != "EOTGM"])  # fmt: skip


def joint_convergence(curves: dict[str, list]) -> Convergence:
    """Converged iff every model's every seed flattened; the evidence names those that did not."""
    return all_converged({f"{m} seed {i}": c for m, cs in curves.items()
                          for i, c in enumerate(cs)})  # fmt: skip


def claims_for(rows: dict[str, list[dict]], conv: Convergence, budget: float) -> list:
    """Fig. 1c (IS drop) and Fig. 1d (FID rise) verdicts from per-seed degradations."""
    claims = []
    for key, metric in (("eot-fig1cd-is", "IS drop"), ("eot-fig1cd-fid", "FID rise")):
        per_model = {m: [r[metric] for r in rs] for m, rs in rows.items()}
        text = "; ".join(f"{m} {fmt_mean_se(v, 2)}" for m, v in
                         sorted(per_model.items(), key=lambda kv: np.mean(kv[1])))  # fmt: skip
        claims.append(make_claim(
            key, seed_values=per_model["EOTGAN"], holds=ordering_holds(per_model),
            convergence=conv, budget=budget, ours_text=f"{metric} (least first): {text}",
        ))  # fmt: skip
    return claims


def plot_fid_curves(curves: dict[str, list], floor: tuple[float, float], path: Path) -> Path:
    """FID-fmnist-net over training, one panel per model, one line per seed, with the floor."""
    from otgen.viz.curves import Line, Panel, plot_curves

    return plot_curves([Panel(model, {f"seed {i}": Line.of(c) for i, c in enumerate(cs)},
                              floor=floor[0], ylabel=f"FID-{EXTRACTOR}")
                        for model, cs in curves.items()], path,
                       title="FID of a fixed generated set over training")  # fmt: skip


def train_model(name: str, s: Settings, data, probe, seed: int, dev, run_dir: Path):
    """One model trained to the common cap (stopping early once flat if the profile allows)."""
    from otgen.reproduce._converge import train_until_flat

    evals = -(-s.cap(name) // s.eval_every)
    return train_until_flat(
        name, method_params(s), data, probe=probe, batch=s.batch, seed=seed, device=dev,
        run_dir=run_dir, eval_every=s.eval_every, max_steps=s.cap(name),
        min_evals=3 if s.early_stop else evals + 1,
        config=generator_ema(s.ema, s.ema_start),
    )  # fmt: skip


def probe_sets(s: Settings, seed: int, dev):
    """(test images, the convergence probe, the floor's real set): the probe's real images and
    the floor's are two disjoint random subsets of the test split."""
    from otgen.reproduce._converge import FidProbe

    test = load("fashion-mnist", split="test").x
    perm = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))
    probe_real, floor_real = test[perm[: s.probe_n]], test[perm[s.probe_n : 2 * s.probe_n]]
    probe = FidProbe(
        probe_real, extractor=EXTRACTOR, n=s.probe_n, seed=seed + 7, boot=s.boot, device=dev
    )
    return test, probe, floor_real


def run_dir(out_dir: Path, profile: str, name: str, seed: int) -> Path:
    return out_dir / "runs" / profile / f"{name}_s{seed}"


# --jobs: the longest runs first (session 7, one thread, seed 0: EOTGAN 0.14 s per step and
# > 26,000 steps; DCGAN 0.045 s x 19,000; WGAN 0.025 s x 28,000; EOTGM 0.022 s x 16,000)
JOB_ORDER = ("eotgan", "dcgan", "wgan", "eotgm")


def train_jobs(out_dir: Path, profile: str, seed: int, dev: torch.device) -> list:
    """The runs :func:`run` trains, as independent jobs (``otgen reproduce --jobs``)."""
    from otgen.reproduce._jobs import TrainJob

    s = PROFILES[profile]  # the settings travel with each job (a worker imports afresh)
    return [TrainJob(f"{LABELS[name]} seed {sd}", _train_job,
                     {"name": name, "s": s, "profile": profile, "seed": seed, "run_seed": sd,
                      "dev": dev, "out_dir": out_dir})
            for name in JOB_ORDER for sd in range(seed, seed + s.seeds)]  # fmt: skip


def _train_job(name: str, s: Settings, profile: str, seed: int, run_seed: int, dev,
               out_dir: Path) -> None:  # fmt: skip
    _, probe, _ = probe_sets(s, seed, dev)
    data = load("fashion-mnist", n=s.n_train, seed=run_seed)
    train_model(name, s, data, probe, run_seed, dev, run_dir(out_dir, profile, name, run_seed))


@one_thread
@profiled
def run(out_dir: Path, profile: str, seed: int, dev: torch.device) -> dict:
    from otgen.metrics.features import get_extractor
    from otgen.metrics.protocols import mixing_ratio, plot_mixing_ratio
    from otgen.viz.images import save_image_grid

    s = PROFILES[check_profile(profile)]
    extractor = get_extractor(EXTRACTOR, device=str(dev))
    test, probe, floor_real = probe_sets(s, seed, dev)
    floor = probe.floor(floor_real)  # two disjoint real sets of the probe's size
    curves: dict[str, list] = {LABELS[m]: [] for m in METHODS}
    degr: dict[str, list[dict]] = {LABELS[m]: [] for m in METHODS}
    rows, runs, figures, mixing_figs = [], [], [], []
    nets: dict[str, dict[str, str]] = {}  # the networks as trained (seed 0), for the notes
    summary_rows: list[dict] = []
    for i in range(s.seeds):
        sd = seed + i
        data = load("fashion-mnist", n=s.n_train, seed=sd)
        results = {}
        for name in METHODS:
            label = LABELS[name]
            method, records, curve = train_model(
                name, s, data, probe, sd, dev, run_dir(out_dir, profile, name, sd)
            )
            res = mixing_ratio(test, method.sample, extractor, n=s.mix_n, repeats=s.repeats,
                               seed=sd, label=EXTRACTOR)  # fmt: skip
            results[label] = res
            curves[label].append(curve)
            d = degradation(res)
            degr[label].append(d)
            steps = curve.steps[-1]
            rows.append({"model": label, "seed": sd, "steps": steps,
                         "epochs": round(s.epochs(steps), 2), "FID-probe": round(curve.fids[-1], 2),
                         "converged": curve.converged, "train_s": round(curve.seconds),
                         **{k: round(v, 3) for k, v in d.items()}})  # fmt: skip
            runs.append(
                {
                    "model": label,
                    "seed": sd,
                    "curve": curve.to_dict(),
                    "mixing": res.rows(),
                    "last_log": records[-1] if records else {},
                }
            )
            if i == 0:
                nets[label] = method_nets(method)
                torch.manual_seed(seed + 30_000)
                figures.append(
                    save_image_grid(
                        method.sample(64).cpu(), out_dir / f"samples_{name}.png", scale=2
                    )
                )
        mixing_figs.append(plot_mixing_ratio(results, out_dir / f"mixing_ratio_seed{sd}.png"))
        # a report after every seed: a run cut off later still leaves the seeds it finished
        summary_rows = _report(out_dir, s, profile, seed, floor, curves, degr, rows, runs,
                               [*mixing_figs, *figures], nets)  # fmt: skip
    return {r["model"]: f"FID rise {r['FID rise']}, IS drop {r['IS drop']}" for r in summary_rows}


def _report(out_dir, s, profile, seed, floor, curves, degr, rows, runs, figures,
            nets) -> list[dict]:  # fmt: skip
    summary_rows = _summary_rows(degr, curves, s)
    budget = s.max_steps * s.batch / (PAPER_EPOCHS * PAPER_TRAIN)
    claims = claims_for(degr, joint_convergence(curves), budget)
    write_report(
        out_dir, "eot_mixing", title="Mixing-ratio test (EOT paper Fig. 1c-d) on Fashion-MNIST",
        rows=summary_rows + rows, claims=claims, profile=profile,
        figures=[plot_fid_curves(curves, floor, out_dir / "fid_curves.png"), *figures],
        notes=_notes(s, profile, floor, summary_rows, nets),
        data={"settings": asdict(s), "floor": {"fid": floor[0], "se": floor[1]}, "runs": runs,
              "budget_fraction": budget},
        command=f"otgen reproduce eot-mixing --profile {profile} --seed {seed}",
    )  # fmt: skip
    return summary_rows


def _summary_rows(degr: dict[str, list[dict]], curves: dict[str, list], s: Settings):
    """Per model, mean ± s.e. over seeds (one row each, above the per-seed rows)."""
    out = []
    for label, ds in degr.items():
        cs = curves[label]
        out.append({"model": label, "seed": f"mean of {len(ds)}",
                    "steps": "/".join(str(c.steps[-1]) for c in cs),
                    "epochs": "/".join(f"{s.epochs(c.steps[-1]):.2f}" for c in cs),
                    "FID-probe": fmt_mean_se([c.fids[-1] for c in cs], 2),
                    "converged": f"{sum(c.converged for c in cs)}/{len(cs)}",
                    "train_s": round(sum(c.seconds for c in cs)),
                    **{k: fmt_mean_se([d[k] for d in ds], 3) for k in ds[0]}})  # fmt: skip
    return out


def _notes(s: Settings, profile: str, floor: tuple[float, float], summary: list[dict],
           nets: dict[str, dict[str, str]]) -> str:  # fmt: skip
    epochs = s.epochs(s.max_steps)
    stop = ("each model stops early once the last three evaluations agree pairwise within "
            "their bootstrap s.e. and the last six show no least-squares trend (change within "
            "2 s.e.)" if s.early_stop else
            "no early stop: every model runs the full cap")  # fmt: skip
    ended = "; ".join(f"{r['model']} FID-probe {r['FID-probe']} at steps {r['steps']} "
                      f"({r['converged']} flattened)" for r in summary)  # fmt: skip
    return (
        f"Profile `{profile}`: Fashion-MNIST "
        f"({'full 60,000-image training set' if s.n_train is None else f'{s.n_train} images'}), "
        f"batch {s.batch} for every model; common cap {s.max_steps} steps = {epochs:.2f} epochs "
        f"(the paper: {PAPER_EPOCHS} epochs at batch {PAPER_BATCH}); {stop}. FID-{EXTRACTOR} "
        f"probe every {s.eval_every} steps on a fixed set of {s.probe_n} generated images vs "
        f"{s.probe_n} real test images; real-vs-real floor on the same sizes (two disjoint "
        f"test sets): {floor[0]:.3f} ± {floor[1]:.3f}. {s.seeds} independent training seeds. "
        f"Where each model's curve ended: {ended}.\n\n"
        f"Mixing ratio: n = {s.mix_n} per set, {s.repeats} repeats per seed, real pool = the "
        f"10,000 test images. Rows: per model mean ± s.e. over seeds, then per seed; IS drop = "
        f"IS(r=0) − IS(r=1), FID rise = FID(r=1) − FID(r=0).\n\n"
        + _deviations(s, epochs, nets)
    )  # fmt: skip


def _batch_note(s: Settings) -> str:
    if s.batch == PAPER_BATCH:
        return ""
    halves = f"EOTGAN's anchor/positive halves {s.batch // 2} instead of {PAPER_BATCH // 2}"
    return f" instead of {PAPER_BATCH} ({halves})"


def _scaled_caps(s: Settings) -> str:
    """The models whose cap differs from the common one, as report text."""
    raised = [f"{LABELS[m]} {s.cap(m)} steps = {s.epochs(s.cap(m)):.2f} epochs"
              for m in METHODS if s.cap(m) != s.max_steps]  # fmt: skip
    return f" ({'; '.join(raised)})" if raised else ""


def _wgan_note(s: Settings) -> str:
    """WGAN's critic steps against the others' generator updates, as report text."""
    share = s.cap("wgan") / (N_CRITIC * s.max_steps)
    return (f"WGAN: an engine step is one critic update ({N_CRITIC} per generator update); "
            f"its cap is {s.cap('wgan') / s.max_steps:g}× the common one, so at its cap its "
            f"generator has had {share:g}× the updates of a generator at the common cap, and "
            "its steady window (six evaluations, in engine steps) spans 1/"
            f"{N_CRITIC} of the generator updates of the others'; its weight clipping 0.01 and "
            "RMSprop 5e-5 are the WGAN paper's.")  # fmt: skip


def _deviations(s: Settings, epochs: float, nets: dict[str, dict[str, str]]) -> str:
    """Every way this run differs from the paper's protocol (EOT paper §3.3, reference notes)."""
    trained = "; ".join(f"{model} {name}: {text}" for model, parts in nets.items()
                        for name, text in parts.items())  # fmt: skip
    items = [
        "Data: Fashion-MNIST instead of MNIST (MNIST is not on the machine), 28×28 (the paper "
        "pads MNIST to 32×32), pixels in [−1, 1] (tanh generators).",
        f"Extractor: the shipped `{EXTRACTOR}` classifier (its 128-d fc1 features for FID, its "
        "logits for IS; our own FID/IS code, 10 IS splits) instead of the paper's MNIST "
        "ResNet-34.",
        "Networks, as trained (seed 0): " + trained + ". The paper: DCGAN-size nets (64 base "
        "channels, 32×32) for g, DCGAN's and WGAN's critics; EOTGAN's f as in the authors' "
        "code (kept at full size here). The generator is otgen's DCGAN generator for 28×28 "
        "(7·2² layout, two up-convolutions) for all four models, N(0, 0.02) initialised.",
        "EOTGM: ε = 15 kept although the squared-Euclidean pixel cost sums 784 pixels in "
        "[−1, 1] (the authors': 1,024 of padded MNIST); the generator follows the dual update "
        'of eq. (5) (the authors\' code back-propagates ⟨π*, M⟩ with π* fixed: `update="plan"`).',
        "EOTGAN: the loss back-propagates ⟨π*, M_f⟩ with π* fixed (the authors' code), not the "
        "entropic W of eq. (10); hinge margin γ = 5, ε = 5, m = 2.",
        "Sinkhorn (EOTGM, EOTGAN): stops at an L1 marginal error of 1e-3 or 1,000 iterations "
        "(the authors use POT's defaults).",
        f"Batch {s.batch}{_batch_note(s)}.",
        _wgan_note(s),
    ]
    if s.early_stop:
        items.append(f"Budget: a {epochs:.2f}-epoch cap{_scaled_caps(s)} instead of "
                     f"{PAPER_EPOCHS} epochs, with early stopping once the FID curve is steady, "
                     "so the models end at different epochs (each on its own plateau) where "
                     "the paper compares them at equal epochs.")  # fmt: skip
    if s.ema:
        items.append(f"A generator EMA (decay {s.ema}, averaging from step {s.ema_start}, "
                     "updated every engine step, so every critic step for WGAN) is evaluated; "
                     "the paper has none.")  # fmt: skip
    return "Deviations from the paper's protocol:\n\n" + "\n".join(f"- {i}" for i in items)
