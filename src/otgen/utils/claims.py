"""Claims of the papers and otgen's verdicts on them, with the evidence a verdict needs.

A verdict ("holds" / "does not hold") is only printed when two conditions are met:

1. the models were trained to convergence: the report's metric curve over training is
   steady — the last three evaluations agree pairwise within their standard errors (and the
   last six show no least-squares trend, :func:`trend_over_window`),
   ``|m_i − m_j| ≤ tol · sqrt(se_i² + se_j²)`` for each pair i, j of the last three
   (:func:`check_steady`; :func:`check_convergence` tests one pair, which a curve pausing on
   its way down also passes);
2. the number is a mean over at least :data:`MIN_SEEDS` independent trainings (seeds), so it
   has a standard error.

Otherwise the verdict is "untested" and the record says why. A claim about a model that is
still noise says nothing about the method.

Typical use in a reproduction::

    conv = convergence_from_seeds(steps, curves)          # curves: (n_seeds, n_evals)
    claim = make_claim("dot-fig3-gauss25-G", seed_values=final_emd_per_seed,
                       holds=lambda m, se: m <= 1.5 * 0.052, convergence=conv, budget=0.2)
    write_report(..., claims=[claim])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from otgen.errors import OTGenError
from otgen.utils.tables import markdown_table, mean_se

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "untested"
VERDICTS = (HOLDS, FAILS, UNTESTED)
MIN_SEEDS = 2


@dataclass(frozen=True)
class Convergence:
    """Evidence that a metric curve has flattened (or not)."""

    converged: bool
    evidence: str  # one line a reader can check against the report's curve
    steps: tuple[int, ...] = ()
    means: tuple[float, ...] = ()
    ses: tuple[float, ...] = ()


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and otgen's measurement of it (immutable; see :func:`make_claim`)."""

    key: str  # stable id, e.g. "dot-fig3-gauss25-G"; SUMMARY.md matches reports on it
    paper: str  # short paper name: "DOT", "EOT", "AE-OT", "AE-OT-GAN", "MBGAN"
    claim: str  # the claim in one line
    paper_value: str  # the paper's number as published (text: units and ± vary)
    ours_mean: float | None = None
    ours_se: float | None = None
    n_seeds: int = 0
    budget: float | None = None  # fraction of the paper's training budget (1.0 = paper's)
    convergence: Convergence | None = None
    verdict: str = UNTESTED
    reason: str = ""  # why untested, or the rule that decided the verdict
    ours_text: str = ""  # optional richer text for otgen's number (several quantities)
    seed_values: tuple[float, ...] = field(default=())

    def ours(self) -> str:
        if self.ours_text:
            return self.ours_text
        if self.ours_mean is None:
            return "—"
        if self.ours_se is None or math.isnan(self.ours_se):
            return f"{self.ours_mean:.4g}"
        return f"{self.ours_mean:.4g} ± {self.ours_se:.2g}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ours"] = self.ours()
        return d


def check_convergence(
    steps: Sequence[int], means: Sequence[float], ses: Sequence[float], *, tol: float = 1.0
) -> Convergence:
    """Flattened iff the last two evaluations agree within their standard errors.

    ``|m_k − m_{k−1}| ≤ tol · sqrt(se_k² + se_{k−1}²)`` (the s.e. of the difference of two
    independent estimates). Fewer than two evaluations, or a missing/NaN s.e., is "not shown".
    """
    if not (len(steps) == len(means) == len(ses)):
        raise OTGenError("steps, means and ses must have the same length")
    steps_t, means_t, ses_t = (
        tuple(int(s) for s in steps),
        tuple(map(float, means)),
        tuple(map(float, ses)),
    )
    if len(means_t) < 2:
        return Convergence(False, "fewer than two evaluations", steps_t, means_t, ses_t)
    (m0, m1), (s0, s1) = means_t[-2:], ses_t[-2:]
    if not all(math.isfinite(v) for v in (m0, m1, s0, s1)):
        return Convergence(False, "last evaluations lack a finite s.e.", steps_t, means_t, ses_t)
    diff, bound = abs(m1 - m0), tol * math.hypot(s0, s1)
    ok = diff <= bound
    evidence = (
        f"last two evaluations (step {steps_t[-2]}: {m0:.4g} ± {s0:.2g}, step {steps_t[-1]}: "
        f"{m1:.4g} ± {s1:.2g}) differ by {diff:.2g} {'≤' if ok else '>'} {bound:.2g}"
        f"{'' if tol == 1.0 else f' ({tol:g}×s.e.)'}: {'flattened' if ok else 'still moving'}"
    )
    return Convergence(ok, evidence, steps_t, means_t, ses_t)


class Flattened(Protocol):
    """Anything that says whether its curve flattened (a :class:`Convergence`, a training's
    ``otgen.reproduce._converge.Curve``)."""

    @property
    def converged(self) -> bool: ...


def all_converged(parts: Mapping[str, Flattened]) -> Convergence:
    """One :class:`Convergence` for a verdict resting on several trainings (or solves):
    converged only if every part is; the evidence names the parts that are not."""
    bad = [name for name, c in parts.items() if not c.converged]
    if bad:
        return Convergence(False, f"{len(bad)} of {len(parts)} did not flatten: {', '.join(bad)}")
    return Convergence(True, f"all {len(parts)} flattened ({', '.join(parts)})")


def convergence_from_seeds(
    steps: Sequence[int], curves: Sequence[Sequence[float]], *, tol: float = 1.0
) -> Convergence:
    """:func:`check_convergence` on the across-seed mean ± s.e. of per-seed curves
    ``curves[seed][eval]`` (a single seed has no s.e., hence never "flattened")."""
    if not curves or any(len(c) != len(steps) for c in curves):
        raise OTGenError("every seed's curve needs one value per evaluation step")
    stats = [mean_se([c[i] for c in curves]) for i in range(len(steps))]
    return check_convergence(steps, [m for m, _ in stats], [s for _, s in stats], tol=tol)


TREND_WINDOW = 6  # evaluations the trend test of :func:`check_steady` reads


def check_steady(
    steps: Sequence[int], means: Sequence[float], ses: Sequence[float], *, tol: float = 1.0
) -> Convergence:
    """:func:`check_convergence` made stricter, twice.

    1. The last *three* evaluations agree pairwise within their standard errors (both
       consecutive pairs and the first with the last). A single flat pair is what a curve
       pausing on its way down also shows (session 7: EOTGAN fell 119 -> 107.6 -> 108.0 FID).
    2. The last :data:`TREND_WINDOW` evaluations show no trend (:func:`trend_over_window`).
       Three evaluations that happen to agree are also what a curve shows that is still
       falling by more than their s.e. per evaluation *on average* (session 8: WGAN fell 106
       -> 87.9 over five evaluations, then read 87.9, 88.5, 87.5 and passed rule 1).
    """
    conv = check_convergence(steps, means, ses, tol=tol)
    if not conv.converged:
        return conv
    if len(conv.steps) < 3:
        why = "fewer than three evaluations"
    else:
        why = _third_point_disagrees(conv, tol)
    if not why:
        trend, why = trend_over_window(conv.steps, conv.means, conv.ses)
        if not why:
            return Convergence(True, f"{conv.evidence}, as does the evaluation before; {trend}",
                               conv.steps, conv.means, conv.ses)  # fmt: skip
    return Convergence(False, f"{conv.evidence}; but {why}", conv.steps, conv.means, conv.ses)


def trend_over_window(
    steps: Sequence[int], means: Sequence[float], ses: Sequence[float], *,
    window: int = TREND_WINDOW, z: float = 2.0,
) -> tuple[str, str]:  # fmt: skip
    """``(evidence, why not flat)``: the least-squares line through the last ``window``
    evaluations, and '' as the second item if its change over the window is within ``z``
    standard errors of zero.

    The noise of one evaluation is σ = max(residual s.d. about the line, r.m.s. bootstrap
    s.e.): the residuals carry the training's own step-to-step oscillation (a GAN moves by more
    than its FID estimate's s.e. between evaluations), which the bootstrap s.e. does not; the
    s.e. floors σ so that a window that happens to lie on a line is not over-confident. The
    change's s.e. is σ·span/√Σ(x − x̄)². With ``window`` − 2 degrees of freedom the 5% two-sided
    t bound would be 2.78, so z = 2 errs towards "still moving"."""
    if len(steps) < window:
        return "", f"fewer than {window} evaluations (the trend test reads {window})"
    x = [float(v) for v in steps[-window:]]
    y = [float(v) for v in means[-window:]]
    se = [float(v) for v in ses[-window:]]
    if not all(math.isfinite(v) for v in (*y, *se)):
        return "", f"the last {window} evaluations lack finite values or s.e."
    x_mean, y_mean = sum(x) / window, sum(y) / window
    sxx = sum((v - x_mean) ** 2 for v in x)
    slope = sum((a - x_mean) * (b - y_mean) for a, b in zip(x, y, strict=True)) / sxx
    residual = [b - y_mean - slope * (a - x_mean) for a, b in zip(x, y, strict=True)]
    sigma = max(math.sqrt(sum(r * r for r in residual) / (window - 2)),
                math.sqrt(sum(v * v for v in se) / window))  # fmt: skip
    span = x[-1] - x[0]
    change, change_se = slope * span, sigma * span / math.sqrt(sxx)
    flat = abs(change) <= z * change_se
    evidence = (f"the last {window} evaluations (steps {steps[-window]}-{steps[-1]}) change by "
                f"{change:.3g} along their least-squares line, {'within' if flat else 'beyond'} "
                f"{z:g} s.e. ({z * change_se:.2g})")  # fmt: skip
    if flat:
        return evidence, ""
    return evidence, f"{evidence}: still trending"


def _third_point_disagrees(conv: Convergence, tol: float) -> str:
    """Why the evaluation before the last pair does not agree with both of them ('' if it
    does)."""
    (m0, m1, m2), (s0, s1, s2) = conv.means[-3:], conv.ses[-3:]
    if not (math.isfinite(m0) and math.isfinite(s0)):
        return f"the evaluation at step {conv.steps[-3]} lacks a finite value or s.e."
    for other, m, se in ((conv.steps[-2], m1, s1), (conv.steps[-1], m2, s2)):
        if abs(m - m0) > tol * math.hypot(s0, se):
            return (
                f"step {conv.steps[-3]} ({m0:.4g} ± {s0:.2g}) and step {other} ({m:.4g}) "
                f"differ by {abs(m - m0):.2g} > {tol * math.hypot(s0, se):.2g}"
            )
    return ""


def steady_convergence(steps: Sequence[int], curves: Sequence[Sequence[float]]) -> Convergence:
    """:func:`check_steady` on the across-seed mean ± s.e. of per-seed curves (for short
    budgets); a curve with every seed identical (no spread, e.g. all collapsed) is no
    evidence."""
    seeds = convergence_from_seeds(steps, curves)
    conv = check_steady(seeds.steps, seeds.means, seeds.ses)
    if conv.converged and not any(conv.ses[-2:]):
        why = "no spread across seeds (degenerate)"
        return Convergence(False, f"{conv.evidence}; but {why}", conv.steps, conv.means, conv.ses)
    return conv


def decide_verdict(
    holds: bool | object | None, n_seeds: int, convergence: Convergence | None
) -> tuple[str, str]:
    """``(verdict, reason)``: "untested" unless converged AND ≥ MIN_SEEDS seeds AND decided."""
    if convergence is None:
        return UNTESTED, "no convergence check"
    if not convergence.converged:
        return UNTESTED, "not converged"
    if n_seeds < MIN_SEEDS:
        return UNTESTED, f"{n_seeds} seed(s); a verdict needs ≥ {MIN_SEEDS} independent trainings"
    if holds is None:
        return UNTESTED, "no decision rule"
    if holds is INCONCLUSIVE:
        return UNTESTED, "inconclusive: mean ± 2 s.e. over seeds spans both outcomes"
    return (HOLDS if holds else FAILS), "converged, ≥ 2 seeds"


INCONCLUSIVE = object()  # a rule's answer when the seeds' spread allows either verdict


def all_of(answers):
    """Three-way AND: False if any answer is False, else INCONCLUSIVE if any is, else True."""
    answers = list(answers)
    if any(a is False for a in answers):
        return False
    return INCONCLUSIVE if any(a is INCONCLUSIVE for a in answers) else True


def positive(values) -> bool | object:
    """:func:`significant` on the mean ± s.e. of per-seed ``values``."""
    return significant(*mean_se([float(v) for v in values]))


def significant(mean: float, se: float, threshold: float = 0.0, k: float = 2.0):
    """Three-way rule for "mean > threshold": True if mean − k·se > threshold, False if
    mean + k·se < threshold, else :data:`INCONCLUSIVE` (the spread allows either)."""
    if mean - k * se > threshold:
        return True
    if mean + k * se < threshold:
        return False
    return INCONCLUSIVE


def make_claim(
    key: str,
    *,
    seed_values: Sequence[float] = (),
    holds: bool | Callable[[float, float], bool] | None = None,
    convergence: Convergence | None = None,
    budget: float | None = None,
    ours_text: str = "",
    paper: str | None = None,
    claim: str | None = None,
    paper_value: str | None = None,
) -> Claim:
    """Build a :class:`Claim` with its verdict decided by :func:`decide_verdict`.

    ``key`` names an entry of :data:`CATALOG` (its paper/claim/paper_value are used unless
    given). ``seed_values``: otgen's number, one per independent training seed. ``holds``: a
    bool, or a predicate ``(mean, se) -> bool`` evaluated on the seeds' mean ± s.e., which may
    answer :data:`INCONCLUSIVE` (see :func:`significant`).
    """
    entry = CATALOG_BY_KEY.get(key)
    if entry is None and None in (paper, claim, paper_value):
        raise OTGenError(f"claim {key!r} is not in the catalogue: give paper, claim, paper_value")
    values = tuple(float(v) for v in seed_values)
    mean, se = mean_se(values) if values else (None, None)
    decided = holds(mean, se) if callable(holds) and mean is not None else holds
    decided = None if callable(decided) else decided
    verdict, reason = decide_verdict(decided, len(values), convergence)
    return Claim(
        key=key,
        paper=paper or entry.paper,
        claim=claim or entry.claim,
        paper_value=paper_value or entry.paper_value,
        ours_mean=mean,
        ours_se=se,
        n_seeds=len(values),
        budget=budget,
        convergence=convergence,
        verdict=verdict,
        reason=reason,
        ours_text=ours_text,
        seed_values=values,
    )


CLAIM_COLUMNS = ("paper", "claim", "paper's value", "otgen (mean ± s.e.)", "seeds", "budget",
                 "convergence", "verdict")  # fmt: skip


def claim_row(c: Claim) -> dict[str, str]:
    conv = c.convergence.evidence if c.convergence else "—"
    budget = "—" if c.budget is None else f"{c.budget:.3g}×"
    verdict = c.verdict if c.verdict != UNTESTED else f"untested ({c.reason})"
    return dict(zip(CLAIM_COLUMNS, (c.paper, c.claim, c.paper_value, c.ours(), str(c.n_seeds),
                                     budget, conv, verdict), strict=True))  # fmt: skip


def claims_markdown(claims: Sequence[Claim]) -> str:
    """The claims table of a report (Markdown)."""
    return markdown_table([claim_row(c) for c in claims], CLAIM_COLUMNS)


@dataclass(frozen=True)
class CatalogEntry:
    """A claim of one of the five papers, as SUMMARY.md lists it."""

    key: str
    paper: str
    claim: str
    paper_value: str
    report: str  # the report folder under benchmarks/results expected to test it
    reproducible_here: bool = True  # False: needs data or weights this machine lacks
    why_not: str = ""


def _c(key: str, paper: str, claim: str, value: str, report: str, why_not: str = ""):
    return CatalogEntry(key, paper, claim, value, report, not why_not, why_not)


_NO_CIFAR = "CIFAR-10 / STL-10 not on the machine; Inception weights absent"
_NO_IMAGENET = "ImageNet and the public pre-trained conditional GAN are not on the machine"
_NO_CELEBA = "CelebA / CIFAR-10 / MNIST not on the machine; Inception weights absent"
_NO_SVHN = "CIFAR-10 / SVHN not on the machine"

# The papers' claims (papers/ + issues 15 and 16). Image claims are tested on Fashion-MNIST
# analogues (issue 16); the published tables on other datasets cannot be reproduced here.
CATALOG: tuple[CatalogEntry, ...] = (
    _c("dot-fig3-gauss25-G", "DOT", "Fig. 3, 25 gaussians: EMD of WGAN-GP samples",
       "0.052 (0.008)", "dot-2d"),
    _c("dot-fig3-gauss25-dot", "DOT", "Fig. 3, 25 gaussians: target DOT keeps/improves EMD",
       "0.052 (0.010)", "dot-2d"),
    _c("dot-fig3-gauss25-naive", "DOT", "Fig. 3, 25 gaussians: naive transport is worse than G",
       "0.065 (0.011)", "dot-2d"),
    _c("dot-fig3-swissroll-G", "DOT", "Fig. 3, swiss roll: EMD of WGAN-GP samples",
       "0.021 (0.005)", "dot-2d"),
    _c("dot-fig3-swissroll-dot", "DOT", "Fig. 3, swiss roll: target DOT keeps/improves EMD",
       "0.020 (0.006)", "dot-2d"),
    _c("dot-fig3-swissroll-naive", "DOT", "Fig. 3, swiss roll: naive transport is far worse",
       "0.160 (0.022)", "dot-2d"),
    _c("dot-keff-gauss25", "DOT", "K_eff of the trained critic, 25 gaussians", "1.98", "dot-2d"),
    _c("dot-keff-swissroll", "DOT", "K_eff of the trained critic, swiss roll", "1.05", "dot-2d"),
    _c("dot-tab1-latent", "DOT", "Table 1: latent DOT improves IS and FID of every trained GAN",
       "e.g. SNGAN(ns) CIFAR-10 FID 20.74 → 15.78", "dot-images"),
    _c("dot-tab1-cifar-published", "DOT", "Table 1 on CIFAR-10 / STL-10 with Inception scores",
       "published table", "dot-images", _NO_CIFAR),
    _c("dot-tab2-other-d", "DOT", "Table 2: a D from another GAN improves a fixed G",
       "FID 25.78 → 21.07–24.47", "dot-images"),
    _c("dot-tab3-conditional", "DOT", "Table 3: conditional latent DOT improves a conditional GAN",
       "FID 43.34 → 42.35 (32 updates)", "dot-images"),
    _c("dot-tab3-imagenet-published", "DOT", "Table 3 on ImageNet (pre-trained cGAN)",
       "published table", "dot-images", _NO_IMAGENET),
    _c("eot-fig1a-gauss4", "EOT", "Fig. 1a: EOTGM fits the 4-gaussian mixture",
       "visual (fitted modes)", "eotgm-gauss4"),
    _c("eot-fig1cd-is", "EOT", "Fig. 1c: as mixing grows, EOTGAN's IS falls slowest, EOTGM's "
       "fastest", "curve ordering", "eot-mixing"),
    _c("eot-fig1cd-fid", "EOT", "Fig. 1d: as mixing grows, EOTGAN's FID rises slowest, EOTGM's "
       "fastest", "curve ordering", "eot-mixing"),
    _c("eot-mnist-published", "EOT", "Published MNIST scores with their ResNet-34 extractor",
       "published figure", "eot-mixing", "MNIST and the paper's ResNet-34 are not on the machine"),
    _c("aeot-tab2-grid25", "AE-OT", "Table 2, grid25: AE-OT covers all modes (vs GAN, PacGAN4)",
       "25.0 modes / 99.8% / rKL 0.007", "aeot-grid"),
    _c("aeot-tab2-grid25-gan", "AE-OT", "Table 2, grid25 baseline GAN (quoted from PacGAN)",
       "17.3 / 94.8% / 0.70", "gan-baselines"),
    _c("aeot-tab2-grid25-pacgan4", "AE-OT", "Table 2, grid25 baseline PacGAN4",
       "24.8 / 93.6% / 0.04", "gan-baselines"),
    _c("aeot-tab2-ring8-gan", "AE-OT", "Table 2, ring8 baseline GAN", "6.3 / 98.2% / 0.45",
       "gan-baselines"),
    _c("aeot-tab2-ring8-pacgan2", "AE-OT", "Table 2, ring8 baseline PacGAN2",
       "7.9 / 95.6% / 0.07", "gan-baselines"),
    _c("aeot-fid-close", "AE-OT", "The AE's and AE-OT's FID are close", "Table 4 (per dataset)",
       "aeot-fmnist"),
    _c("aeot-coverage", "AE-OT", "AE-OT covers all classes better than the GANs (rKL)",
       "Table 3", "aeot-fmnist"),
    _c("aeot-tab1-freeze", "AE-OT", "Table 1: freezing the encoder lowers reconstruction loss",
       "Table 1", "aeot-fmnist"),
    _c("aeot-prd", "AE-OT", "PRD F8 / F1/8 (Fig. 14)", "Fig. 14", "aeot-fmnist"),
    _c("aeot-tab4-published", "AE-OT", "Table 4 FIDs on MNIST, CIFAR-10, CelebA",
       "published table", "aeot-fmnist", _NO_CELEBA),
    _c("aeotgan-fid", "AE-OT-GAN", "AE-OT-GAN's FID is below AE-OT's", "paper's table",
       "aeot-fmnist"),
    _c("aeotgan-losses", "AE-OT-GAN", "Content and code losses decrease over training (Fig. 5)",
       "Fig. 5", "aeot-fmnist"),
    _c("aeotgan-published", "AE-OT-GAN", "Published FIDs on CelebA / CIFAR-10",
       "published table", "aeot-fmnist", _NO_CELEBA),
    _c("mbgan-probe", "MBGAN", "Linear probe on D's features: MBGAN ≥ DCGAN (Tables 3–4)",
       "+0.01 accuracy", "mbgan"),
    _c("mbgan-probe-mean", "MBGAN", "Linear probe on D's features: MBGAN ≥ DCGAN (Tables "
       "3–4), margin's L1 norm per pixel", "+0.01 accuracy", "mbgan"),
    _c("mbgan-sweeps", "MBGAN", "α and K sweeps (Figs. 4–5)", "Figs. 4–5", "mbgan"),
    _c("mbgan-published", "MBGAN", "Tables 3–4 on CIFAR-10 / SVHN", "published tables", "mbgan",
       _NO_SVHN),
)  # fmt: skip
CATALOG_BY_KEY = {e.key: e for e in CATALOG}
