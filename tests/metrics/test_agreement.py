"""otgen's FID/KID/IS/PRD/PRDC agree with the reference packages on identical features.

The references are installed by ``make test`` (``pip install ".[compare]"`` plus pytorch-fid and
torch-fidelity with ``--no-deps``): prdc, pytorch-fid and torch-fidelity. The last two import
torchvision at module level for image loading and their networks, but the functions compared
here (``calculate_frechet_distance``, ``kid_features_to_metric``, ``isc_features_to_metric``)
are pure NumPy/torch; torchvision (and the CUDA torch it would pull) is not installed, so a
stand-in module is put in place only while those two packages are imported. Each test skips
when its package is missing. The official PRD code is not on PyPI: PRD is checked against the
paper's definition (Sajjadi et al. 2018, Thm. 1/Eq. 3) on hand-made histograms instead.

Tolerances: FID 1e-6 relative (scipy's Schur ``sqrtm`` vs otgen's ``eigh`` route, float64);
KID/IS 1e-9 relative (same formula, same samples); PRDC exact up to 1e-12.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

import numpy as np
import pytest
import torch

from otgen.errors import OTGenError
from otgen.metrics.fid import feature_stats, fid, fid_from_stats
from otgen.metrics.inception_score import inception_score
from otgen.metrics.kid import kid
from otgen.metrics.prd import prd, prd_from_histograms
from otgen.metrics.prdc import prdc


class _AnyModule(types.ModuleType):
    """Every attribute is another stand-in; usable as a base class and callable."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _AnyModule(f"{self.__name__}.{name}")
        setattr(self, name, sub)
        return sub

    def __call__(self, *args, **kwargs):
        return self

    def __mro_entries__(self, bases):
        return (object,)


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _AnyModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


@contextlib.contextmanager
def _torchvision_stand_in():
    """A stand-in torchvision only while importing, removed from sys.modules afterwards."""
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return
    finder = _StandIn()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]


def _import(module: str, attr: str):
    with _torchvision_stand_in():
        mod = pytest.importorskip(module)
    return getattr(mod, attr)


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + shift


# -- FID ------------------------------------------------------------------------------------------
def test_fid_matches_pytorch_fid():
    ref = _import("pytorch_fid.fid_score", "calculate_frechet_distance")
    x, y = _features(0, 400, 16), _features(1, 300, 16, shift=0.3)
    (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
    assert fid(x, y) == pytest.approx(float(ref(m1, s1, m2, s2)), rel=1e-6)


def test_fid_offset_is_pytorch_fids_eps_identity():
    """1-D closed form: FID(N(0,a), N(0,b)) with ε·I added = (√(a+ε) − √(b+ε))²."""
    a, b, eps = 2.0, 0.0, 0.5  # b = 0: a singular covariance
    got = fid_from_stats([0.0], [[a]], [0.0], [[b]], offset=eps)
    assert got == pytest.approx((np.sqrt(a + eps) - np.sqrt(b + eps)) ** 2, rel=1e-12)
    assert fid_from_stats([0.0], [[a]], [0.0], [[b]]) == pytest.approx(a, rel=1e-12)
    with pytest.raises(OTGenError, match="offset"):
        fid_from_stats([0.0], [[a]], [0.0], [[b]], offset=-1.0)


def test_fid_falls_back_to_offset_when_eigh_fails(monkeypatch):
    fid_mod = importlib.import_module("otgen.metrics.fid")  # the package re-exports fid()

    real = fid_mod.trace_sqrt_product
    calls = []

    def flaky(s1, s2):
        calls.append(s1[0, 0])
        if len(calls) == 1:
            raise np.linalg.LinAlgError("eigh did not converge")
        return real(s1, s2)

    monkeypatch.setattr(fid_mod, "trace_sqrt_product", flaky)
    with pytest.warns(RuntimeWarning, match="pytorch-fid's fallback"):
        got = fid_mod.fid_from_stats([0.0], [[2.0]], [0.0], [[0.0]])
    want = (np.sqrt(2.0 + fid_mod.FALLBACK_OFFSET) - np.sqrt(fid_mod.FALLBACK_OFFSET)) ** 2
    assert got == pytest.approx(want, rel=1e-12)


# -- KID ------------------------------------------------------------------------------------------
def test_kid_matches_torch_fidelity_on_full_sets():
    """One subset of all samples is RNG-free (the estimator is permutation invariant)."""
    ref = _import("torch_fidelity.metric_kid", "kid_features_to_metric")
    x, y = _features(2, 200, 12), _features(3, 200, 12, shift=0.2)
    want = ref(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=1, kid_subset_size=200, verbose=False
    )
    got = kid(x, y, subsets=1, subset_size=200)
    assert got.mean == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-9)


def test_kid_refuses_to_shrink_subsets_like_torch_fidelity():
    x, y = _features(4, 500, 4), _features(5, 800, 4)
    with pytest.raises(OTGenError, match="need at least 1000 per set"):
        kid(x, y)
    assert kid(x, y, subsets=2, allow_smaller_subsets=True).subset_size == 500


# -- IS -------------------------------------------------------------------------------------------
def _class_sorted_logits(n: int = 1000, k: int = 10) -> np.ndarray:
    rng = np.random.default_rng(6)
    labels = np.sort(rng.integers(0, k, n))  # sorted by class: contiguous splits see few classes
    return 4.0 * np.eye(k)[labels] + rng.normal(size=(n, k))


def test_is_matches_torch_fidelity_with_its_shuffle():
    ref = _import("torch_fidelity.metric_isc", "isc_features_to_metric")
    z = _class_sorted_logits()
    want = ref(torch.from_numpy(z), splits=10, shuffle=True, rng_seed=2020)
    got = inception_score(z, shuffle_seed=2020)
    assert got.mean == pytest.approx(want["inception_score_mean"], rel=1e-9)
    assert got.std == pytest.approx(want["inception_score_std"], rel=1e-9)
    unshuffled = ref(torch.from_numpy(z), splits=10, shuffle=False)
    assert inception_score(z).mean == pytest.approx(unshuffled["inception_score_mean"], rel=1e-9)


def test_is_contiguous_splits_underestimate_sorted_samples():
    z = _class_sorted_logits()
    assert inception_score(z).mean < 0.6 * inception_score(z, shuffle_seed=2020).mean


# -- PRDC -----------------------------------------------------------------------------------------
def test_prdc_matches_prdc_package():
    compute_prdc = _import("prdc", "compute_prdc")
    real, fake = _features(7, 300, 8), _features(8, 250, 8, shift=0.4)
    want = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    got = prdc(real, fake, k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert getattr(got, key) == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


# -- PRD ------------------------------------------------------------------------------------------
def test_prd_curve_matches_paper_definition_on_hand_made_histograms():
    """P = (½, ½, 0), Q = (0, ½, ½): α(λ) = min(λ/2, ½), β(λ) = α(λ)/λ (Eq. 3 by hand)."""
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    precision, recall = prd_from_histograms(q, p, num_angles=101)
    lam = np.tan(np.linspace(1e-10, np.pi / 2 - 1e-10, 101))
    np.testing.assert_allclose(precision, np.minimum(lam / 2, 0.5), atol=1e-12)
    np.testing.assert_allclose(recall, np.minimum(lam / 2, 0.5) / lam, atol=1e-12)
    assert precision.max() == pytest.approx(0.5) and recall.max() == pytest.approx(0.5)


def _modes(seed: int, n: int, modes: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(4)
    return centres[rng.choice(modes, n)] + 0.3 * rng.normal(size=(n, 4))


def test_prd_takes_real_and_fake_by_name_like_fid():
    """fake covers one of four real modes: recall (F8) low, precision (F1/8) high."""
    real, fake = _modes(9, 400, (0, 1, 2, 3)), _modes(10, 400, (0,))
    res = prd(feat_real=real, feat_fake=fake, num_runs=2)
    assert res.f_beta < 0.4 < 0.9 < res.f_beta_inv
    with pytest.warns(FutureWarning, match="GENERATED features first"):
        legacy = prd(fake, real, num_runs=2)
    assert (legacy.f_beta, legacy.f_beta_inv) == (res.f_beta, res.f_beta_inv)


def test_prd_refuses_unequal_sizes_unless_asked():
    real, fake = _modes(11, 400, (0, 1)), _modes(12, 300, (0, 1))
    with pytest.raises(OTGenError, match="enforce_balance=False"):
        prd(feat_real=real, feat_fake=fake, num_runs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prd(feat_real=real, feat_fake=fake, num_runs=1, enforce_balance=False)


# -- Inception-v3 weights -------------------------------------------------------------------------
def test_inception_pool3_matches_pytorch_fid():
    """Needs the weights (``otgen features fetch inception-v3`` or $OTGEN_INCEPTION_WEIGHTS) and
    a real torchvision (pytorch-fid builds its network from it): ``pip install pytorch-fid``."""
    import os

    from otgen.data.fetch import cached_inception_weights
    from otgen.metrics.inception import WEIGHTS_ENV, load_fid_inception

    path = os.environ.get(WEIGHTS_ENV) or cached_inception_weights()
    if not path:
        pytest.skip("Inception weights absent: run `otgen features fetch inception-v3`")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("pytorch-fid's InceptionV3 needs torchvision")
    pf = pytest.importorskip("pytorch_fid.inception")
    # pytorch-fid would download the weights; hand it the same local file instead.
    pf.load_state_dict_from_url = lambda *a, **k: torch.load(path, weights_only=True)
    theirs = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ours, _, _ = load_fid_inception(path)
    x = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(0))  # [0, 1]
    with torch.no_grad():
        want = theirs(x)[0].flatten(1).double()
        got = ours.eval().pool3(2 * x - 1).double()  # otgen takes [-1, 1]
    rel = ((got - want).norm(dim=1) / want.norm(dim=1)).max().item()
    assert rel < 1e-4
    mu_w, sig_w = feature_stats(want.numpy())
    mu_g, sig_g = feature_stats(got.numpy())
    assert fid_from_stats(mu_g, sig_g, mu_w, sig_w) < 1e-4 * np.trace(sig_w)
