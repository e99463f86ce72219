"""Smoke runs of every experiment in ``otgen.reproduce.EXPERIMENTS`` on a tiny budget.

Each experiment runs through its registered runner with ``quick=True`` and its budget constants
(``QUICK`` settings, sample counts, data subset sizes) shrunk by monkeypatching, so a run takes a
few seconds. The test checks what the experiment promises to write: its JSON report (the common
keys of ``write_report`` plus the experiment's own data keys, at least one table row) and every
PNG figure, each of which the Markdown report must link. The numbers themselves are meaningless
at this budget and are not checked.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

import otgen.data
from otgen import reproduce

FMNIST = Path("/usr/share/datasets/fashion-mnist")
CAP = 400  # largest data subset any smoke run loads (images or toy points)
REPORT_KEYS = {"title", "command", "machine", "provenance", "rows"}


def _fmnist_available() -> bool:
    try:
        otgen.data.load("fashion-mnist", split="test", n=1)
    except Exception:  # missing files, or no root configured
        return False
    return True


@dataclass(frozen=True)
class Smoke:
    report: str  # <report>.json / <report>.md in the output folder
    data_keys: frozenset[str]  # the experiment's own keys in the JSON
    figures: tuple[str, ...]  # PNG files (relative to the output folder)
    shrink: Callable[[pytest.MonkeyPatch], None]  # sets the tiny budget
    fashion: bool = False  # needs Fashion-MNIST


def _module(name: str):
    return importlib.import_module(f"otgen.reproduce.{name}")


def _cap_loads(mp: pytest.MonkeyPatch, *modules: str) -> None:
    """Every ``load`` the experiment calls keeps at most ``CAP`` samples."""
    real_load = otgen.data.load

    def small(name, **kw):
        kw["n"] = min(kw.get("n") or CAP, CAP)
        return real_load(name, **kw)

    mp.setattr(otgen.data, "load", small)
    for m in modules:
        if hasattr(_module(m), "load"):
            mp.setattr(_module(m), "load", small)


def _eotgm(mp):
    m = _module("eotgm_gauss4")
    mp.setattr(m, "QUICK", {"iterations": 3, "batch": 32})
    mp.setattr(m, "N_SAMPLES", 200)
    mp.setattr(m, "EMD_POINTS", 100)


def _dot_2d(mp):
    m = _module("dot_2d")
    tiny = replace(m.QUICK, critic_steps=6, batch_size=32, trials=2, n=50, pool=100, dot_steps=2)
    mp.setattr(m, "QUICK", tiny)


def _aeot_grid(mp):
    m = _module("aeot_grid")
    mp.setattr(m, "QUICK", {"seeds": 1, "tol": 0.5, "time_limit": 0.5, "variants": ("iid",)})
    mp.setattr(m, "N_REAL", 50)
    mp.setattr(m, "N_SAMPLES", 200)


def _gan_toys(mp):
    m = _module("gan_baselines")
    mp.setattr(m, "TOY_QUICK", {"steps": 3, "seeds": 1})
    mp.setattr(m, "TOY_BATCH", 16)
    mp.setattr(m, "N_SAMPLES", 200)
    mp.setattr(m, "FIGURE_SAMPLES", 20)
    _cap_loads(mp, "gan_baselines")


def _gan_fmnist(mp):
    m = _module("gan_baselines")
    mp.setattr(m, "IMG_QUICK", {"steps": {"dcgan": 2, "wgan-gp": 2}, "batch": 16})
    mp.setattr(m, "FID_REAL", 500)
    _cap_loads(mp, "gan_baselines")


def _dot_images(mp):
    m = _module("dot_images")
    tiny = m.Settings(steps=2, batch_size=16, n_train=CAP, n_eval=64, dot_steps=1,
                      cond_updates=(0, 1), k_pairs=4, k_repeats=1)  # fmt: skip
    mp.setattr(m, "QUICK", tiny)
    _cap_loads(mp, "dot_images")


def _eot_mixing(mp):
    m = _module("eot_mixing")
    mp.setattr(m, "QUICK", {"budget_s": 0.0, "n_train": CAP, "batch": 16, "mix_n": 50,
                            "repeats": 1})  # fmt: skip
    mp.setattr(m, "CALIBRATION_STEPS", 1)
    mp.setattr(m, "MIN_STEPS", 2)
    # two mixing ratios instead of eleven: 8 FIDs instead of 44
    protocols = importlib.import_module("otgen.metrics.protocols")
    mp.setattr(protocols, "mixing_ratio", functools.partial(protocols.mixing_ratio, ratios=(0, 1)))
    _cap_loads(mp, "eot_mixing")


def _aeot_fmnist(mp):
    m = _module("aeot_fmnist")
    mp.setattr(m, "QUICK", {"n_train": CAP, "n_eval": 64, "batch": 16, "ae_steps": 4,
                            "gan_steps": 2, "width": 4, "latent_dim": 2, "ot_targets": 50,
                            "ot_time_limit": 0.5, "progress": 1})  # fmt: skip
    # PRD's 10 k-means runs of 20 clusters dominate a tiny run; 1 run of 5 clusters suffices
    prd = importlib.import_module("otgen.metrics.prd")
    mp.setattr(prd, "prd", functools.partial(prd.prd, num_runs=1, num_clusters=5))
    _cap_loads(mp, "aeot_fmnist")


def _mbgan(mp):
    m = _module("mbgan")
    mp.setattr(m, "QUICK", {"n_train": CAP, "steps": 2, "batch": 16, "width": 4, "fid_n": 64,
                            "probe_train": 100, "probe_test": 50, "sweep_steps": 2,
                            "sweep_width": 4, "cond_steps": 2, "cond_data": "digits"})  # fmt: skip
    mp.setattr(m, "ALPHAS", (20.0,))
    mp.setattr(m, "KS", (500,))
    mp.setattr(m, "PRIORS", ())
    _cap_loads(mp, "mbgan")


SMOKE: dict[str, Smoke] = {
    "eotgm-gauss4": Smoke(
        "eotgm-gauss4", frozenset({"settings", "seed", "rule_gap", "loss_curves"}),
        ("eotgm_gauss4_dual.png", "eotgm_gauss4_plan.png"), _eotgm,
    ),
    "dot-2d": Smoke(
        "dot_2d", frozenset({"settings", "seed", "results", "paper"}), ("dot_2d.png",), _dot_2d,
    ),
    "aeot-grid": Smoke(
        "aeot-grid", frozenset({"runs", "theta", "config"}),
        ("aeot_grid_power.png", "aeot_grid_interp.png", "aeot_grid25_fig13.png",
         "aeot_ring8_fig13.png"), _aeot_grid,
    ),
    "gan-baselines": Smoke(
        "gan_baselines", frozenset({"settings", "runs"}),
        ("grid25_gan.png", "grid25_pacgan4.png", "ring8_gan.png", "ring8_pacgan2.png"), _gan_toys,
    ),
    "gan-baselines-fmnist": Smoke(
        "gan_baselines_fmnist", frozenset({"settings"}),
        ("fmnist_dcgan.png", "fmnist_wgan-gp.png", "fmnist_losses.png"), _gan_fmnist, True,
    ),
    "dot-images": Smoke(
        "dot_images", frozenset({"settings", "table1", "table2", "table3", "k_per_class"}),
        ("dot_images_conditional.png",), _dot_images, True,
    ),
    "eot-mixing": Smoke(
        "eot_mixing", frozenset(),
        ("mixing_ratio.png", "samples_dcgan.png", "samples_wgan.png", "samples_eotgm.png",
         "samples_eotgan.png"), _eot_mixing, True,
    ),
    "aeot-fmnist": Smoke(
        "aeot_fmnist", frozenset(), ("aeotgan_curves.png", "samples_real_test.png"),
        _aeot_fmnist, True,
    ),
    "mbgan": Smoke(
        "mbgan", frozenset({"settings", "published_probe"}),
        ("interpolation.png", "grad_norm.png", "conditional.png", "fmnist_mbgan.png"), _mbgan,
        True,
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets on a shared CPU: one intra-op thread avoids the spin-wait stalls of two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_experiment_has_a_smoke_run():
    assert set(SMOKE) == set(reproduce.EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_smoke(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    smoke = SMOKE[name]
    if smoke.fashion and not _fmnist_available():
        pytest.skip("Fashion-MNIST is not installed")
    smoke.shrink(monkeypatch)
    out = tmp_path / name
    summary = reproduce.get(name)(str(out), True, 0, "cpu")
    assert isinstance(summary, dict)

    report = json.loads((out / f"{smoke.report}.json").read_text())
    missing = (REPORT_KEYS | smoke.data_keys) - set(report)
    assert not missing, f"{name}: JSON lacks {sorted(missing)}"
    assert report["rows"], f"{name}: the report's table is empty"

    markdown = (out / f"{smoke.report}.md").read_text()
    linked = {Path(p).name for p in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown)}
    for fig in smoke.figures:
        assert (out / fig).is_file(), f"{name}: figure {fig} not written"
        assert fig in linked, f"{name}: figure {fig} not linked from {smoke.report}.md"
    for fig in linked:  # every linked figure exists and is a PNG
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fig
