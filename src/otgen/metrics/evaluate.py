"""One evaluation path: samples + a reference set -> labelled scores (:class:`EvalReport`).

    from otgen.metrics.evaluate import evaluate
    report = evaluate(samples, real, extractor="auto", metrics=("fid", "is"), seed=0)
    report.scores["FID-fmnist-net"]

``real`` is an :class:`otgen.data.Dataset` (its name picks the extractor, its labels enable
class coverage) or a tensor of real samples. :class:`Evaluator` keeps the reference features, so
scoring many sample sets against one reference extracts them once; ``otgen eval``, ``otgen
refine --eval`` and every reproduction score through it. Scores are labelled by extractor
(``FID-fmnist-net``); see ``docs/metrics.md``.

Extractors: ``auto`` is ``identity`` (the flattened samples) for points and otherwise the
domain network of :data:`EXTRACTOR_FOR` (Inception-v3 for any other image data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.data import Dataset
from otgen.errors import DataNotFoundError, OTGenError

DEFAULT_METRICS = ("fid", "is", "kid", "prd", "prdc", "coverage")
EXTRA_METRICS = ("emd", "modes")
IDENTITY = "identity"
BATCH_SIZE = 256
# The one extractor table: dataset -> network trained on that domain.
EXTRACTOR_FOR = {"fashion-mnist": "fmnist-net", "mnist": "fmnist-net", "digits": "digits-net"}


def extractor_for(data_name: str | None, is_image: bool) -> str:
    """The ``auto`` extractor: identity for points, else the domain network or inception-v3."""
    if not is_image:
        return IDENTITY
    return EXTRACTOR_FOR.get((data_name or "").lower(), "inception-v3")


@dataclass(frozen=True)
class EvalReport:
    """Scores labelled by extractor, per-metric details, skipped metrics (why) and figures."""

    scores: dict[str, Any]
    extractor: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    figures: tuple[Path, ...] = ()

    def by_metric(self) -> dict[str, Any]:
        """Scores keyed without the extractor label: ``fid``, ``is``, ``is_std``, ``emd``..."""
        tag = f"-{self.extractor['name']}"
        out = {}
        for key, value in self.scores.items():
            short = key.replace(tag, "").lower().replace("-std", "_std")
            out[short] = value
        return out


class Features:
    """A registered extractor, or the identity map (flattened inputs), with one interface."""

    def __init__(self, name: str, *, is_image: bool, device: str | torch.device = "cpu"):
        if name in (IDENTITY, "pixels"):
            self.ext, self.name = None, IDENTITY
            self.layer = "pixels" if is_image else "points"
            return
        from otgen.metrics.features import get_extractor

        self.ext = get_extractor(name, device=str(device))
        self.name, self.layer = self.ext.name, self.ext.layer

    @property
    def has_logits(self) -> bool:
        return self.ext is not None and getattr(
            self.ext, "is_classifier", hasattr(self.ext, "logits")
        )

    def features(self, x: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
        if self.ext is None:
            return x.reshape(x.shape[0], -1).double()
        return self.ext(x, batch_size=batch_size)

    def logits(self, x: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
        return self.ext.logits(x, batch_size=batch_size)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "layer": self.layer}
        if self.ext is not None:
            info["weights_sha256"] = getattr(self.ext, "weights_sha256", None)
            if hasattr(self.ext, "label"):
                info["label"] = self.ext.label()
        return info


def _as_dataset(real: Dataset | torch.Tensor) -> Dataset:
    if isinstance(real, Dataset):
        return real
    x = torch.as_tensor(real, dtype=torch.float32)
    from otgen.data.spec import DataSpec

    return Dataset(x, None, DataSpec(tuple(x.shape[1:])), "", None)


class Evaluator:
    """Scores sample sets against one reference set, whose features are extracted once."""

    def __init__(
        self,
        real: Dataset | torch.Tensor,
        extractor: str = "auto",
        *,
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.real = _as_dataset(real)
        is_image = self.real.x.ndim == 4
        name = extractor_for(self.real.name, is_image) if extractor == "auto" else extractor
        self.features = Features(name, is_image=is_image, device=device)
        self.batch_size = batch_size
        self._real_feats: torch.Tensor | None = None

    @property
    def real_features(self) -> torch.Tensor:
        if self._real_feats is None:
            with torch.no_grad():
                self._real_feats = self.features.features(self.real.x, self.batch_size)
        return self._real_feats

    def applicable(
        self, requested: tuple[str, ...], *, explicit: bool
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        """Metrics to run and, for a default list, why the others were skipped."""
        unknown = [m for m in requested if m not in DEFAULT_METRICS + EXTRA_METRICS]
        if unknown:
            raise OTGenError(f"unknown metric {unknown[0]!r}; choose from "
                             f"{', '.join(DEFAULT_METRICS + EXTRA_METRICS)}")  # fmt: skip
        reasons = {}
        for m in requested:
            if m in ("is", "coverage") and not self.features.has_logits:
                reasons[m] = f"extractor {self.features.name!r} has no classifier logits"
            elif m == "coverage" and self.real.y is None:
                reasons[m] = f"dataset {self.real.name!r} has no labels"
            elif m == "modes" and self.real.x.ndim != 2:
                reasons[m] = "mode metrics are defined for the 2D toy mixtures"
        if explicit and reasons:
            m, why = next(iter(reasons.items()))
            raise OTGenError(f"metric {m!r} does not apply: {why}")
        return tuple(m for m in requested if m not in reasons), reasons

    def __call__(
        self,
        samples: torch.Tensor,
        metrics: tuple[str, ...] | None = None,
        *,
        seed: int = 0,
        figures_dir: str | Path | None = None,
    ) -> EvalReport:
        explicit = metrics is not None
        run, skipped = self.applicable(tuple(metrics or DEFAULT_METRICS), explicit=explicit)
        samples = samples.detach().cpu()
        with torch.no_grad():
            fake = self.features.features(samples, self.batch_size)
            logits = (
                self.features.logits(samples, self.batch_size)
                if {"is", "coverage"} & set(run)
                else None
            )
        scores, details, figures = _compute(
            run, self.real_features, fake, logits, self.real, samples, self.features, seed,
            None if figures_dir is None else Path(figures_dir),
        )  # fmt: skip
        return EvalReport(scores, self.features.describe(), details, skipped, tuple(figures))


def evaluate(
    samples: torch.Tensor,
    real: Dataset | torch.Tensor,
    *,
    extractor: str = "auto",
    metrics: tuple[str, ...] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = BATCH_SIZE,
    figures_dir: str | Path | None = None,
) -> EvalReport:
    """Score ``samples`` against ``real`` (see the module docstring).

    ``metrics=None`` runs every default metric that applies (the rest are listed in
    ``skipped``); metrics named explicitly must apply. Same inputs and seed, same numbers.
    """
    ev = Evaluator(real, extractor, device=device, batch_size=batch_size)
    return ev(samples, metrics, seed=seed, figures_dir=figures_dir)


def fid_of(
    samples: torch.Tensor, real: Dataset | torch.Tensor, extractor: str, *, device="cpu"
) -> float:
    """The FID of ``samples`` against ``real`` in ``extractor``'s feature space."""
    report = evaluate(samples, real, extractor=extractor, metrics=("fid",), device=device)
    return float(report.scores[f"FID-{report.extractor['name']}"])


def _compute(metrics, feats_real, feats_fake, logits_fake, real, samples, extractor, seed, out):
    tag = extractor.name
    scores: dict[str, Any] = {}
    details: dict[str, Any] = {}
    figures: list[Path] = []
    if "fid" in metrics:
        from otgen.metrics.fid import fid

        scores[f"FID-{tag}"] = fid(feats_real, feats_fake)
    if "is" in metrics:
        from otgen.metrics.inception_score import inception_score

        res = inception_score(logits_fake)
        scores[f"IS-{tag}"], scores[f"IS-{tag}-std"] = res.mean, res.std
    if "kid" in metrics:
        from otgen.metrics.kid import kid

        # the subset size actually used is recorded below, so smaller sets are allowed here
        res = kid(feats_real, feats_fake, seed=seed, allow_smaller_subsets=True)
        scores[f"KID-{tag}"], scores[f"KID-{tag}-std"] = res.mean, res.std
        details["kid"] = {"subsets": res.subsets, "subset_size": res.subset_size}
    if "prd" in metrics:
        from otgen.metrics.prd import plot_prd, prd

        res = prd(feat_real=feats_real, feat_fake=feats_fake, seed=seed, enforce_balance=False)
        scores[f"PRD-F8-{tag}"], scores[f"PRD-F1/8-{tag}"] = res.f_beta, res.f_beta_inv
        if out is not None:
            figures.append(plot_prd({"samples": res}, out / "prd.png", title=f"PRD ({tag})"))
    if "prdc" in metrics:
        from otgen.metrics.prdc import prdc

        res = prdc(feats_real, feats_fake)
        for name in ("precision", "recall", "density", "coverage"):
            scores[f"{name}-{tag}"] = getattr(res, name)
        details["prdc"] = {"k": res.k}
    if "coverage" in metrics:
        from otgen.metrics.coverage import class_coverage, plot_class_coverage

        res = class_coverage(logits_fake, real.y)
        scores[f"classes-covered-{tag}"] = res.classes_covered
        scores[f"class-KL-{tag}"] = res.reverse_kl
        details["coverage"] = asdict(res)
        if out is not None:
            title = f"classes ({tag})"
            figures.append(plot_class_coverage(res, out / "coverage.png", title=title))
    if "emd" in metrics:
        from otgen.metrics.emd import emd_distance

        scores[f"EMD-{tag}"] = emd_distance(feats_real, feats_fake)
    if "modes" in metrics:
        from otgen.metrics.modes import mode_metrics

        res = mode_metrics(samples, real.name)
        scores.update(
            {"modes": res.modes, "high-quality": res.high_quality, "modes-KL": res.reverse_kl}
        )
        details["modes"] = asdict(res)
    return scores, details, figures


# -- inputs -------------------------------------------------------------------------------------
def load_samples(path: str | Path) -> torch.Tensor:
    """Samples from ``.npy`` or ``.npz`` (key ``samples``, ``x`` or the only array) as float32.

    Points ``(N, d)``, grayscale ``(N, H, W)`` or images ``(N, C, H, W)`` in ``[-1, 1]``;
    ``uint8`` arrays are taken as pixels in 0..255 and rescaled.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"samples file not found: {path}")
    from otgen.data.images import load_numpy

    loaded = load_numpy(path, "samples file")
    if isinstance(loaded, np.ndarray):
        arr = loaded
    else:  # an .npz archive
        key = next((k for k in ("samples", "x") if k in loaded), None)
        if key is None and len(loaded) != 1:
            raise OTGenError(f"{path}: name the samples array 'samples' (arrays: {list(loaded)})")
        arr = loaded[key or next(iter(loaded))]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(arr.dtype, np.floating) or arr.ndim not in (2, 3, 4) or len(arr) == 0:
        raise OTGenError(
            f"{path}: expected float samples (N, d), (N, H, W) or (N, C, H, W), "
            f"got {arr.dtype} {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise OTGenError(f"{path}: samples contain NaN or Inf values")
    x = torch.as_tensor(arr, dtype=torch.float32)
    return x[:, None] if x.ndim == 3 else x


def permutation(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def reference_set(name: str, samples: torch.Tensor, seed: int, image_size: int | None) -> Dataset:
    """The test split of ``name``, matched to the samples' shape and subsampled to their number."""
    from otgen.data import load
    from otgen.data.toy import TOY_DATASETS

    m = samples.shape[0]
    if name in TOY_DATASETS:  # toys draw an independent test set of any size
        data = load(name, split="test", n=m, seed=seed)
    else:
        data = load(name, split="test")
        size = image_size or (samples.shape[-1] if samples.ndim == 4 else None)
        if (
            size is not None
            and samples.shape[-2] == size
            and tuple(data.x.shape[-2:]) != (size, size)
        ):
            data = load(name, split="test", image_size=size)  # e.g. 28x28 data, 32x32 DCGAN
    if tuple(data.x.shape[1:]) != tuple(samples.shape[1:]):
        raise OTGenError(
            f"samples have shape {tuple(samples.shape[1:])} but {name} test data "
            f"{tuple(data.x.shape[1:])}"
        )
    if len(data.x) > m:
        keep = torch.as_tensor(permutation(len(data.x), seed)[:m])
        y = data.y[keep] if data.y is not None else None
        data = Dataset(data.x[keep], y, data.spec, data.name, getattr(data, "classes", None))
    return data
