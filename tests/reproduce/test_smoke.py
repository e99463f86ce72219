"""Smoke runs of every image experiment in ``otgen.reproduce.EXPERIMENTS`` on a tiny budget
(the 2D ones, :data:`otgen.reproduce.ALL_ORDER`, are smoke-run in ``test_profiles.py``).

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
from dataclasses import dataclass
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


def _gan_fmnist(mp):
    m = _module("gan_baselines")
    mp.setattr(m, "IMG_QUICK", {"steps": {"dcgan": 2, "wgan-gp": 2}, "batch": 16})
    mp.setattr(m, "FID_REAL", 500)
    _cap_loads(mp, "gan_baselines")


def _dot_images(mp):
    m = _module("dot_images")
    tiny = m.Settings(seeds=1, width=4, batch=16, n_train=CAP, probe_n=32, eval_every=1,
                      max_steps=1, n_eval=32, dot_steps=1, cond_updates=(0, 1), k_pairs=4,
                      k_repeats=1)  # fmt: skip
    mp.setitem(m.PROFILES, "quick", tiny)
    _cap_loads(mp, "dot_images")


def _eot_mixing(mp):
    m = _module("eot_mixing")
    tiny = m.Settings(n_train=CAP, batch=16, width=4, max_steps=2, eval_every=2, probe_n=50,
                      mix_n=50, repeats=1, seeds=2, ema=0.9, boot=2)  # fmt: skip
    mp.setattr(m, "PROFILES", {**m.PROFILES, "quick": tiny})
    # two mixing ratios instead of eleven: 8 FIDs instead of 44
    protocols = importlib.import_module("otgen.metrics.protocols")
    mp.setattr(protocols, "mixing_ratio", functools.partial(protocols.mixing_ratio, ratios=(0, 1)))
    _cap_loads(mp, "eot_mixing")


def _aeot_fmnist(mp):
    m = _module("aeot_fmnist")
    mp.setattr(m, "PROBE_BOOT", 2)  # each bootstrap FID is an eigendecomposition
    mp.setattr(m, "QUICK", {"seeds": 1, "n_train": CAP, "n_eval": 64, "batch": 16, "width": 4,
                            "latent_dim": 2, "ae_every": 2, "ae_cap": 4, "refine": 0.5,
                            "ot_targets": 50, "ot_time_limit": 0.5, "gan_every": 1, "gan_cap": 2,
                            "gan_ema": 0.5, "gan_ema_start": 1, "base_every": 2, "base_cap": 4,
                            "wgan_scale": 1, "progress": 2})  # fmt: skip
    # PRD's 10 k-means runs of 20 clusters dominate a tiny run; 1 run of 5 clusters suffices
    prd = importlib.import_module("otgen.metrics.prd")
    mp.setattr(prd, "prd", functools.partial(prd.prd, num_runs=1, num_clusters=5))
    _cap_loads(mp, "aeot_fmnist")


def _mbgan(mp):
    m = _module("mbgan")
    tiny = m.Settings(seeds=2, n_train=CAP, batch=16, width=4, eval_every=2, max_steps=6,
                      fid_n=64, ema=0.9, probe_train=100, probe_test=50, alphas=(20.0,),
                      ks=(5,), sweep_seeds=1, sweep_eval_every=2, sweep_steps=2)  # fmt: skip
    mp.setitem(m.PROFILES, "quick", tiny)
    _cap_loads(mp, "mbgan")


SMOKE: dict[str, Smoke] = {
    "gan-baselines-fmnist": Smoke(
        "gan_baselines_fmnist", frozenset({"settings"}),
        ("fmnist_dcgan.png", "fmnist_wgan-gp.png", "fmnist_losses.png"), _gan_fmnist, True,
    ),
    "dot-images": Smoke(
        "dot_images", frozenset({"settings", "table1", "table2", "table3", "k_per_class", "curves",
                                 "real_vs_real_fid"}),
        ("dot_images_conditional.png", "dot_images_fid_curves.png"), _dot_images, True,
    ),
    "eot-mixing": Smoke(
        "eot_mixing", frozenset(),
        ("fid_curves.png", "mixing_ratio_seed0.png", "mixing_ratio_seed1.png",
         "samples_dcgan.png", "samples_wgan.png", "samples_eotgm.png",
         "samples_eotgan.png"), _eot_mixing, True,
    ),
    "aeot-fmnist": Smoke(
        "aeot_fmnist", frozenset({"settings", "floor", "per_seed", "claims"}),
        ("aeotgan_curves.png", "samples_real_test.png", "fid_curves.png", "prd_f8_f18.png",
         "aeotgan_progress_generated.png"),
        _aeot_fmnist, True,
    ),
    "mbgan": Smoke(
        "mbgan", frozenset({"settings", "published_probe", "curves", "sweeps", "claims"}),
        ("interpolation.png", "grad_norm.png", "fid_curves.png", "fmnist_mbgan.png",
         "fmnist_dcgan.png", "sweep_alpha20_K5.png"), _mbgan, True,
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
    # the 2D experiments run through ``otgen reproduce all`` on a tiny budget in test_profiles.py
    assert set(SMOKE) | set(reproduce.ALL_ORDER) == set(reproduce.EXPERIMENTS)
    assert not set(SMOKE) & set(reproduce.ALL_ORDER)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_smoke(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    smoke = SMOKE[name]
    if smoke.fashion and not _fmnist_available():
        pytest.skip("Fashion-MNIST is not installed")
    smoke.shrink(monkeypatch)
    out = tmp_path / name
    summary = reproduce.run_experiment(name, str(out), "quick", 0, "cpu")
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
    # a finished experiment keeps every curve's checkpoint: a raised cap continues the run
    for curve in out.glob("runs/*/*/curve.json"):
        assert list((curve.parent / "checkpoints").glob("*.safetensors")), curve.parent.name
