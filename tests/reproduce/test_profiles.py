"""Profiles (quick / cpu / paper), ``otgen reproduce all`` and resumable 2D experiments."""

from __future__ import annotations

import json

import pytest
import torch

from otgen.cli import main
from otgen.reproduce import ALL_ORDER, aeot_grid, dot_2d, eotgm_gauss4, gan_baselines, run_all

TINY_DOT = dot_2d.Settings(gen_iters=2, seeds=2, batch_size=16, lr=1e-3, trials=1, n=40,
                           dot_steps=2, evals=2, curve_trials=1, ckpt_every=1)  # fmt: skip


@pytest.fixture
def tiny(monkeypatch):
    """Seconds-sized budgets for every 2D experiment's quick profile."""
    monkeypatch.setitem(dot_2d.PROFILES, "quick", TINY_DOT)
    monkeypatch.setitem(eotgm_gauss4.PROFILES, "quick", eotgm_gauss4.Settings(4, 2, 2))
    monkeypatch.setitem(gan_baselines.TOY_PROFILES, "quick", (4, 2, 2))
    monkeypatch.setitem(aeot_grid.PROFILES, "quick", {"seeds": 2, "tol": 0.5, "max_iter": 96,
                                                      "variants": ("iid",)})  # fmt: skip
    monkeypatch.setattr(eotgm_gauss4, "EMD_POINTS", 100)


def test_all_runs_every_2d_experiment_then_skips_finished_ones(tmp_path, tiny, capsys):
    assert main(["reproduce", "all", "--profile", "quick", "--out", str(tmp_path)]) == 0
    reports = {"dot-2d": "dot_2d", "eotgm-gauss4": "eotgm-gauss4",
               "gan-baselines": "gan_baselines", "aeot-grid": "aeot-grid"}  # fmt: skip
    for name in ALL_ORDER:
        payload = json.loads((tmp_path / name / f"{reports[name]}.json").read_text())
        assert payload["provenance"]["profile"] == "quick"
        assert payload["claims"], name  # every 2D report carries its claims table
        assert (tmp_path / name / "runs" / "done-quick.json").exists()
    dot = json.loads((tmp_path / "dot-2d" / "dot_2d.json").read_text())
    assert dot["budget_fraction"] == pytest.approx(2 * 16 / (100_000 * 256))
    kinds = {(r["data"], r["cost"], r["samples"]) for r in dot["rows"]}
    assert ("swissroll", "W2² (squared)", "real vs real (floor)") in kinds
    assert ("swissroll", "W1 (euclidean)", "naive") in kinds
    titles = (tmp_path / "aeot-grid" / "aeot-grid.json").read_text()
    assert "budget" in titles  # Fig. 13 baseline panels and rows carry the budget fraction
    capsys.readouterr()
    summary = run_all(str(tmp_path), "quick", 0, "cpu")
    assert all("skipped" in v for v in summary.values())


def test_quick_is_an_alias_and_contradictions_are_refused(monkeypatch, tmp_path, capsys):
    seen = []
    monkeypatch.setattr("otgen.reproduce.run_experiment", lambda *a: seen.append(a) or {})
    assert main(["reproduce", "eotgm-gauss4", "--quick", "--out", str(tmp_path)]) == 0
    assert seen[-1][2] == "quick"
    assert main(["reproduce", "eotgm-gauss4", "--out", str(tmp_path)]) == 0
    assert seen[-1][2] == "cpu"
    code = main(["reproduce", "dot-2d", "--quick", "--profile", "paper"])
    assert code == 2 and "otgen: error:" in capsys.readouterr().err


def test_paper_profiles_are_the_papers_budgets():
    paper = dot_2d.PROFILES["paper"]
    assert (paper.gen_iters, paper.batch_size, paper.lr, paper.trials, paper.n) == (
        100_000, 256, 1e-4, 100, 1000)  # fmt: skip
    assert dot_2d.budget_fraction(paper) == 1.0
    assert dot_2d.budget_fraction(dot_2d.PROFILES["cpu"]) < 0.01
    assert eotgm_gauss4.PROFILES["paper"].iterations == eotgm_gauss4.PAPER_ITERS == 2000
    assert gan_baselines.TOY_PROFILES["paper"][:2] == (400_000, 10)


def test_dot_training_resumes_bit_identically_after_a_cut(tmp_path, monkeypatch):
    """A run killed after its first checkpoint and rerun ends with the weights and curve of
    an uninterrupted run."""
    torch.set_num_threads(1)
    s = dot_2d.Settings(gen_iters=4, seeds=2, batch_size=16, lr=1e-3, trials=1, n=40,
                        dot_steps=2, evals=2, curve_trials=1, ckpt_every=2)  # fmt: skip
    full = dot_2d.train("swissroll", s, 3, torch.device("cpu"), tmp_path / "a")
    from otgen.engine.stacked import StackedWGANGP

    step = StackedWGANGP.train_step

    def cut(self):
        if self.step_count == 12:  # after the checkpoint of step 10, before the end (20)
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(StackedWGANGP, "train_step", cut)
    with pytest.raises(KeyboardInterrupt):
        dot_2d.train("swissroll", s, 3, torch.device("cpu"), tmp_path / "b")
    monkeypatch.setattr(StackedWGANGP, "train_step", step)
    resumed = dot_2d.train("swissroll", s, 3, torch.device("cpu"), tmp_path / "b")
    assert resumed["critic_steps_run"] == 10  # only the missing half was trained
    for a, b in zip(full["trainer"].G.parameters(), resumed["trainer"].G.parameters(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)
    assert full["curve"] == resumed["curve"]


def _ev(g, dot, naive, k):
    """Hand-made per-seed evaluation: W2² trial values of G / DOT / naive and K_eff."""
    emd = {"real": [0.02], "G": [g], "DOT": [dot], "naive": [naive]}
    return {"K": k, "emd": {"sqeuclidean": emd, "euclidean": emd}}


def test_dot_claims_follow_the_targets_and_need_a_flat_curve():
    ev = {"per_seed": [_ev(0.020, 0.019, 0.15, 1.0), _ev(0.024, 0.023, 0.17, 1.1)]}
    early = [[0.022, 0.026], [0.021, 0.025], [0.022, 0.026]]  # three evaluations before
    flat = {"steps": [10, 20, 30, 40, 50, 60],
            "emd": [*early, [0.022, 0.026], [0.021, 0.025], [0.021, 0.025]],
            "K": [[1.0, 1.1]] * 6}  # fmt: skip
    claims = {c.key: c for c in dot_2d._claims("swissroll", ev, flat, 1.0)}
    assert claims["dot-fig3-swissroll-G"].verdict == "holds"  # 0.022 ≤ 1.5 × 0.021
    assert claims["dot-fig3-swissroll-naive"].verdict == "holds"  # 0.16 > 0.022
    assert claims["dot-keff-swissroll"].verdict == "holds"  # 1.05 within 25% of 1.05
    bad = {"per_seed": [_ev(0.05, 0.05, 0.01, 2.0), _ev(0.06, 0.06, 0.02, 2.2)]}
    claims = {c.key: c for c in dot_2d._claims("swissroll", bad, flat, 1.0)}
    assert claims["dot-fig3-swissroll-G"].verdict == "does not hold"  # 0.055 > 0.0315
    assert claims["dot-fig3-swissroll-naive"].verdict == "does not hold"
    assert claims["dot-keff-swissroll"].verdict == "does not hold"
    moving = {**flat, "emd": [*early, [0.2, 0.21], [0.2, 0.21], [0.05, 0.051]]}
    claims = dot_2d._claims("swissroll", ev, moving, 0.01)
    assert {c.verdict for c in claims} == {"untested"}  # K_eff too: G has not settled
    # an untrained G on a plateau: the last pair is flat, the pair before still moved
    plateau = {**flat, "emd": [*early, [0.2, 0.21], [0.10, 0.11], [0.10, 0.11]]}
    claims = dot_2d._claims("swissroll", ev, plateau, 0.01)
    assert {c.verdict for c in claims} == {"untested"}  # K_eff too: G has not settled
    assert "step 40 (0.205 ± 0.005) and step 50 (0.105) differ" in claims[0].convergence.evidence
    # three flat evaluations at the end of a steady fall: still trending
    falling = {
        **flat,
        "emd": [
            [0.030, 0.034],
            [0.028, 0.032],
            [0.026, 0.030],
            [0.0222, 0.0262],
            [0.0217, 0.0257],
            [0.0215, 0.0255],
        ],
    }
    claims = dot_2d._claims("swissroll", ev, falling, 0.01)
    assert {c.verdict for c in claims} == {"untested"}
    assert "still trending" in claims[0].convergence.evidence


def test_parallel_emds_equal_sequential_ones():
    g = torch.Generator().manual_seed(0)
    jobs = [(torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g), c)
            for c in ("euclidean", "sqeuclidean") for _ in range(4)]  # fmt: skip
    assert dot_2d.emd_many(jobs, workers=2) == dot_2d.emd_many(jobs, workers=1)
