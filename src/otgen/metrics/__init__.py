"""Offline, deterministic evaluation of generative models.

Feature-space scores (features from :mod:`otgen.metrics.features`; every score is labelled by
the extractor that produced it, e.g. ``FID-fmnist-net``):

- :func:`fid`, :func:`fid_from_stats`, :func:`feature_stats`, :func:`save_stats`,
  :func:`load_stats` (pytorch-fid ``.npz``)                           — ``otgen.metrics.fid``
- :func:`inception_score` (10 splits)                    — ``otgen.metrics.inception_score``
- :func:`kid` (100 subsets × 1,000, cubic kernel, unbiased)          — ``otgen.metrics.kid``
- :func:`prd`, :func:`plot_prd` (Sajjadi et al. 2018)                — ``otgen.metrics.prd``
- :func:`prdc` (precision / recall / density / coverage, k = 5)     — ``otgen.metrics.prdc``
- :func:`class_coverage` (predicted-class histogram, KL to the data) — ``otgen.metrics.coverage``
- :func:`mixing_ratio`, :func:`plot_mixing_ratio`, :func:`linear_probe`,
  :func:`probe_features`, :func:`conv_feature_maps`                — ``otgen.metrics.protocols``
- :func:`mode_metrics` (PacGAN modes, 2D toys) — ``otgen.metrics.modes``;
  :func:`emd_distance` (exact EMD) — ``otgen.metrics.emd``

Names are imported lazily on first use, so ``import otgen.metrics`` stays cheap (no scipy,
scikit-learn or matplotlib until a metric needs them). The five functions named like their own
module (``fid``, ``inception_score``, ``kid``, ``prd``, ``prdc``) are bound eagerly (NumPy-only
modules): importing a submodule sets the package attribute of that name to the *module*, which
would otherwise shadow the lazily exported function.
"""

from __future__ import annotations

import importlib
from typing import Any

from otgen.metrics.fid import fid as fid
from otgen.metrics.inception_score import inception_score as inception_score
from otgen.metrics.kid import kid as kid
from otgen.metrics.prd import prd as prd
from otgen.metrics.prdc import prdc as prdc

_EXPORTS = {
    "fid": "fid",
    "fid_from_stats": "fid",
    "feature_stats": "fid",
    "save_stats": "fid",
    "load_stats": "fid",
    "trace_sqrt_product": "fid",
    "inception_score": "inception_score",
    "InceptionScore": "inception_score",
    "kid": "kid",
    "KernelInceptionDistance": "kid",
    "prd": "prd",
    "prd_from_histograms": "prd",
    "plot_prd": "prd",
    "PRDResult": "prd",
    "prdc": "prdc",
    "PRDC": "prdc",
    "class_coverage": "coverage",
    "ClassCoverage": "coverage",
    "plot_class_coverage": "coverage",
    "mixing_ratio": "protocols",
    "plot_mixing_ratio": "protocols",
    "MixingRatioResult": "protocols",
    "linear_probe": "protocols",
    "LinearProbeResult": "protocols",
    "probe_features": "protocols",
    "max_pooled_features": "protocols",
    "conv_feature_maps": "protocols",
    "mode_metrics": "modes",
    "emd_distance": "emd",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"otgen.metrics.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'otgen.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
