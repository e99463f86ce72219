"""Evaluation protocols built on the metrics: the mixing-ratio test and the linear probe.

**Mixing ratio** (EOT generative models paper, §3.3 and Fig. 1c–d). A set S_em of 2,000 real
samples is compared with a set S_syn of 2,000 samples of which a fraction r comes from the
generator and 1 − r from the data; FID(S_em, S_syn) and IS(S_syn) are plotted against r, each
point being the mean of 5 independent repeats with the range shaded. At r = 0 the scores are the
real-vs-real bounds (IS upper, FID lower); a good generator's curves stay flat as r grows.
Choices (the paper leaves them open): the real part of S_syn is disjoint from S_em (so r = 0
measures two independent real sets, not a set against itself), which needs ≥ 2n real samples;
within one repeat the generated part for ratio r is the first round(r·n) of one batch of n
generated samples, so the curve of a repeat is nested and costs n generated samples, not n per r.

**Linear probe** (DCGAN §5.1, as used by MBGAN Tables 3–4). The trained discriminator is used
as a feature extractor: the activations of every convolutional layer are max-pooled to a 4 × 4
spatial grid, flattened and concatenated, and a regularised linear L2-SVM (squared hinge loss,
scikit-learn ``LinearSVC``) is trained on labelled training images; the score is test accuracy.
Features are standardised (zero mean, unit variance, fitted on the training set) before the SVM
so that one C suits layers of very different scales.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.metrics._inputs import as_features
from otgen.utils.checks import ArrayLike, check_int

MIXING_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIXING_N = 2000
MIXING_REPEATS = 5
PROBE_GRID = 4

Sampler = Callable[[int], torch.Tensor]
FeatureFn = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# Batched feature extraction
# ---------------------------------------------------------------------------------------------
def extract(fn: FeatureFn, x: torch.Tensor, *, batch_size: int = 500) -> np.ndarray:
    """Apply ``fn`` to ``x`` in batches without gradients; (N, D) float64 NumPy array."""
    batch_size = check_int(batch_size, "batch_size")
    outs = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            out = fn(x[s : s + batch_size])
            outs.append(torch.as_tensor(out).detach().cpu().double().reshape(out.shape[0], -1))
    return as_features(torch.cat(outs), "extracted features")


# ---------------------------------------------------------------------------------------------
# Mixing-ratio protocol
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MixingRatioResult:
    ratios: tuple[float, ...]
    values: dict[str, np.ndarray]  # metric ("fid" | "is") -> (repeats, len(ratios))
    n: int
    repeats: int
    label: str = ""  # extractor label, e.g. "fmnist-net"
    meta: dict = field(default_factory=dict)

    def mean(self, metric: str) -> np.ndarray:
        return self.values[metric].mean(axis=0)

    def range(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        return self.values[metric].min(axis=0), self.values[metric].max(axis=0)

    def rows(self) -> list[dict]:
        """One row per ratio: mean, min and max of every metric (for ``write_report``)."""
        rows = []
        for i, r in enumerate(self.ratios):
            row: dict = {"r": r}
            for m, v in self.values.items():
                row[f"{m}_mean"] = float(v[:, i].mean())
                row[f"{m}_min"] = float(v[:, i].min())
                row[f"{m}_max"] = float(v[:, i].max())
            rows.append(row)
        return rows


def mixing_ratio(
    real: torch.Tensor,
    sampler: Sampler | torch.Tensor,
    extractor: FeatureFn,
    *,
    ratios: Sequence[float] = MIXING_RATIOS,
    n: int = MIXING_N,
    repeats: int = MIXING_REPEATS,
    metrics: Sequence[str] = ("fid", "is"),
    logits: FeatureFn | None = None,
    seed: int = 0,
    batch_size: int = 500,
    label: str = "",
) -> MixingRatioResult:
    """FID(S_em, S_syn) and IS(S_syn) against the generated fraction r (see module docstring).

    ``real``: a pool of ≥ 2n real samples. ``sampler``: ``sampler(k) -> k samples`` (torch's
    global RNG is seeded per repeat inside a forked RNG state, so it is reproducible and leaves
    the caller's RNG untouched), or a tensor of pre-generated samples (≥ n) to draw from.
    ``extractor(x) -> (N, D)`` features for FID; ``logits`` (default ``extractor.logits``) gives
    classifier logits for IS.
    """
    from otgen.metrics.fid import fid
    from otgen.metrics.inception_score import inception_score

    n, repeats = check_int(n, "n", minimum=2), check_int(repeats, "repeats")
    ratios = tuple(float(r) for r in ratios)
    if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
        raise OTGenError("ratios must be a non-empty list of numbers in [0, 1]")
    metrics = tuple(metrics)
    if unknown := sorted(set(metrics) - {"fid", "is"}):
        raise OTGenError(f"unknown mixing-ratio metric(s) {unknown}; choose fid, is")
    if "is" in metrics:
        if logits is None and getattr(extractor, "is_classifier", True):
            logits = getattr(extractor, "logits", None)
        if logits is None:
            raise OTGenError("IS needs classifier logits; this extractor has none")
    real = torch.as_tensor(real)
    if real.shape[0] < 2 * n:
        raise OTGenError(
            f"the mixing-ratio protocol needs at least 2n = {2 * n} real samples, "
            f"got {real.shape[0]}"
        )
    values = {m: np.empty((repeats, len(ratios))) for m in metrics}
    for rep in range(repeats):
        rng = np.random.default_rng([seed, rep])
        idx = torch.as_tensor(rng.permutation(real.shape[0])[: 2 * n])
        s_em, real_rest = real[idx[:n]], real[idx[n:]]
        fake = _draw(sampler, n, rng)
        feats = {}
        if "fid" in metrics:
            feats["fid"] = [
                extract(extractor, t, batch_size=batch_size) for t in (s_em, real_rest, fake)
            ]
        if "is" in metrics:
            feats["is"] = [None] + [
                extract(logits, t, batch_size=batch_size) for t in (real_rest, fake)
            ]
        for j, r in enumerate(ratios):
            k = round(r * n)  # generated samples in S_syn
            if "fid" in metrics:
                em, rest, gen = feats["fid"]
                values["fid"][rep, j] = fid(em, np.concatenate([gen[:k], rest[: n - k]]))
            if "is" in metrics:
                _, rest, gen = feats["is"]
                syn = np.concatenate([gen[:k], rest[: n - k]])
                values["is"][rep, j] = inception_score(syn).mean
    meta = {"seed": seed, "real_pool": int(real.shape[0])}
    return MixingRatioResult(ratios, values, n, repeats, label, meta)


def _draw(sampler: Sampler | torch.Tensor, n: int, rng: np.random.Generator) -> torch.Tensor:
    """n generated samples: from a callable under a seeded, forked torch RNG, or from a pool."""
    if isinstance(sampler, (torch.Tensor, np.ndarray)):
        pool = torch.as_tensor(sampler)
        if pool.shape[0] < n:
            raise OTGenError(f"need at least n = {n} generated samples, got {pool.shape[0]}")
        return pool[torch.as_tensor(rng.choice(pool.shape[0], n, replace=False))]
    # manual_seed also seeds CUDA, so fork the current CUDA device's RNG too when there is one.
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(rng.integers(2**62)))
        out = torch.as_tensor(sampler(n))
    if out.shape[0] != n:
        raise OTGenError(f"sampler({n}) returned {out.shape[0]} samples")
    return out.detach().cpu()


def plot_mixing_ratio(
    results: MixingRatioResult | Mapping[str, MixingRatioResult],
    path: str | Path,
    *,
    metrics: Sequence[str] | None = None,
) -> Path:
    """One panel per metric (IS, FID, like Fig. 1c–d): mean with markers, range shaded."""
    from matplotlib.figure import Figure

    from otgen.utils.io import atomic_write

    if isinstance(results, MixingRatioResult):
        results = {results.label or "model": results}
    first = next(iter(results.values()))
    metrics = list(metrics or sorted(first.values, key=lambda m: m != "is"))  # IS first
    fig = Figure(figsize=(4.5 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for name, res in results.items():
            if metric not in res.values:
                continue
            r = np.asarray(res.ratios)
            lo, hi = res.range(metric)
            (line,) = ax.plot(r, res.mean(metric), marker="o", ms=4, label=name)
            ax.fill_between(r, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
        tag = f"-{first.label}" if first.label else ""
        ax.set(xlabel="mixing ratio r", ylabel=f"{metric.upper()}{tag}", xlim=(0, 1))
        ax.set_title(f"{metric.upper()} vs r (n = {first.n}, {first.repeats} repeats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))


# ---------------------------------------------------------------------------------------------
# Linear probe on discriminator features
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearProbeResult:
    accuracy: float  # test accuracy of the linear SVM
    train_accuracy: float
    num_features: int
    num_train: int
    num_test: int
    converged: bool  # liblinear reached its tolerance within max_iter


def max_pooled_features(
    feature_maps: Sequence[torch.Tensor], grid: int = PROBE_GRID
) -> torch.Tensor:
    """DCGAN probe features: each (N, C, H, W) map max-pooled to grid × grid, concatenated.

    Maps already smaller than the grid are kept at their size; (N, D) tensors pass through.
    """
    grid = check_int(grid, "grid")
    if not feature_maps:
        raise OTGenError("no feature maps given to the linear probe")
    parts = []
    for i, fm in enumerate(feature_maps):
        fm = torch.as_tensor(fm).detach()
        if fm.ndim == 4:
            size = (min(grid, fm.shape[2]), min(grid, fm.shape[3]))
            fm = torch.nn.functional.adaptive_max_pool2d(fm.float(), size)
        elif fm.ndim != 2:
            raise OTGenError(
                f"feature map {i} must be (N, C, H, W) or (N, D), got {tuple(fm.shape)}"
            )
        parts.append(fm.reshape(fm.shape[0], -1).cpu())
    if len({p.shape[0] for p in parts}) != 1:
        raise OTGenError("feature maps have different numbers of samples")
    return torch.cat(parts, dim=1)


def conv_feature_maps(net: torch.nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """A callable returning the outputs of every ``Conv2d`` of ``net`` (forward hooks), in order."""
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise OTGenError("the network has no Conv2d layer to probe")

    def feature_maps(x: torch.Tensor) -> list[torch.Tensor]:
        maps: list[torch.Tensor] = []
        hooks = [c.register_forward_hook(lambda _m, _i, out: maps.append(out)) for c in convs]
        try:
            net(x)
        finally:
            for h in hooks:
                h.remove()
        return maps

    return feature_maps


def probe_features(
    source: Sequence[torch.Tensor] | Callable[[torch.Tensor], Sequence[torch.Tensor]],
    images: torch.Tensor | None = None,
    *,
    grid: int = PROBE_GRID,
    batch_size: int = 256,
) -> np.ndarray:
    """Probe features from precomputed feature maps, or from ``source(images)`` in batches."""
    if not callable(source):
        return as_features(max_pooled_features(source, grid), "probe features")
    if images is None:
        raise OTGenError("probe_features needs images when given a feature-map function")
    return extract(lambda x: max_pooled_features(source(x), grid), images, batch_size=batch_size)


def linear_probe(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    C: float = 1.0,
    max_iter: int = 5000,
    seed: int = 0,
) -> LinearProbeResult:
    """Train a standardised linear L2-SVM on (train_x, train_y); accuracy on (test_x, test_y)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    xtr, xte = as_features(train_x, "train_x"), as_features(test_x, "test_x")
    if xtr.shape[1] != xte.shape[1]:
        raise OTGenError(
            f"train and test features differ in dimension ({xtr.shape[1]} vs {xte.shape[1]})"
        )
    ytr, yte = _labels(train_y, len(xtr), "train_y"), _labels(test_y, len(xte), "test_y")
    if len(np.unique(ytr)) < 2:
        raise OTGenError("the linear probe needs at least two classes in train_y")
    clf = make_pipeline(
        StandardScaler(), LinearSVC(C=C, loss="squared_hinge", max_iter=max_iter, random_state=seed)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(xtr, ytr)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return LinearProbeResult(
        accuracy=float((clf.predict(xte) == yte).mean()),
        train_accuracy=float((clf.predict(xtr) == ytr).mean()),
        num_features=xtr.shape[1],
        num_train=len(xtr),
        num_test=len(xte),
        converged=converged,
    )


def _labels(y: ArrayLike, n: int, name: str) -> np.ndarray:
    y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y).ravel()
    if y.shape[0] != n:
        raise OTGenError(f"{name} has {y.shape[0]} labels for {n} feature rows")
    return y
