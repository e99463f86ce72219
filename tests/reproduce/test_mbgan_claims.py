"""Decision rules of the MBGAN reproduction's claims, on hand-made results (no training)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from otgen.reproduce import mbgan
from otgen.reproduce._converge import Curve
from otgen.utils.claims import FAILS, HOLDS, UNTESTED, Convergence

CPU = mbgan.PROFILES["cpu"]
FULL = mbgan.Settings(**{**mbgan.asdict(CPU), "alphas": mbgan.PAPER_ALPHAS,
                         "ks": mbgan.PAPER_KS, "sweep_eval_every": 100})  # fmt: skip
CTX = {"untrained_fid": (400.0, 0.1), "real_diversity": 0.6}


def _row(alpha, k, seed, fid, classes=10, diversity=0.55, converged=True):
    r = {"alpha": alpha, "K": k, "seed": seed, "FID": fid, "classes": classes,
         "diversity": diversity, "converged": converged}  # fmt: skip
    r["fails"] = mbgan._fails(r, CTX)
    return r


def _paper_pattern(seed, converged=True):
    """A sweep that behaves as Figs. 4-5 say: small α or K gives noise, the rest trains."""
    return [_row(a, k, seed, 350.0 if mbgan._bad({"alpha": a, "K": k}) else 40.0,
                 converged=converged) for a, k in mbgan._sweep_grid(FULL)]  # fmt: skip


def test_failure_is_noise_or_collapse():
    assert mbgan._fails(_row(20.0, 500, 0, 200.0), CTX)  # FID ≥ half the untrained G's
    assert not mbgan._fails(_row(20.0, 500, 0, 199.0), CTX)
    assert mbgan._fails(_row(20.0, 500, 0, 40.0, classes=2), CTX)  # two classes: collapsed
    assert mbgan._fails(_row(20.0, 500, 0, 40.0, diversity=0.29), CTX)


def test_sweep_grid_shares_the_default_point_once():
    grid = mbgan._sweep_grid(FULL)
    assert len(grid) == 7 and grid.count((20.0, 500)) == 1


def test_sweep_claim_holds_only_for_the_papers_pattern():
    rows = _paper_pattern(0) + _paper_pattern(1)
    assert mbgan._sweep_claim(rows, FULL).verdict == HOLDS
    rows[-1] = _row(20.0, 5000, 1, 350.0)  # K = 5000 should train; here it is noise
    assert mbgan._sweep_claim(rows, FULL).verdict == FAILS


@pytest.mark.parametrize("case", ["one seed", "unconverged", "values missing"])
def test_sweep_claim_is_untested_without_its_evidence(case):
    rows, s = _paper_pattern(0) + _paper_pattern(1), FULL
    if case == "one seed":
        rows = _paper_pattern(0)
    elif case == "unconverged":
        rows = _paper_pattern(0) + _paper_pattern(1, converged=False)
    else:  # a reduced sweep: α = 200 and K = 5000 not run
        s = replace(FULL, alphas=(0.2, 2.0, 20.0), ks=(5, 50, 500))
        rows = [r for r in rows if r["alpha"] in s.alphas and r["K"] in s.ks]
    assert mbgan._sweep_claim(rows, s).verdict == UNTESTED


def _main(acc_mb, acc_dc, converged=True):
    conv = Convergence(converged, "test")
    curve = Curve((100, 200), (50.0, 50.0), (1.0, 1.0), conv, 1.0)
    main = {"curves": {}, "probe": {}}
    for sd, (a, d) in enumerate(zip(acc_mb, acc_dc, strict=True)):
        main["curves"].update({("MBGAN", sd): curve, ("DCGAN", sd): curve})
        main["probe"].update({("MBGAN", sd): a, ("DCGAN", sd): d, ("untrained MBGAN D", sd): 0.8,
                              ("untrained DCGAN D", sd): 0.8})  # fmt: skip
    return main


def test_probe_claim_needs_a_difference_the_seeds_can_sign():
    # differences −0.020, −0.022: mean −0.021 ± 0.001, far below 0
    worse = mbgan._probe_claim(_main([0.80, 0.81], [0.82, 0.832]), CPU, [0, 1], "MBGAN")
    assert worse.verdict == FAILS and worse.ours_mean == pytest.approx(-0.021)
    # differences +0.01, −0.02: mean −0.005 ± 0.015, within two s.e. of 0: neither verdict
    close = mbgan._probe_claim(_main([0.83, 0.80], [0.82, 0.82]), CPU, [0, 1], "MBGAN")
    assert close.verdict == UNTESTED and "inconclusive" in close.reason
    # differences +0.010, +0.012: MBGAN's features clearly better
    better = mbgan._probe_claim(_main([0.83, 0.832], [0.82, 0.82]), CPU, [0, 1], "MBGAN")
    assert better.verdict == HOLDS
    unconverged = mbgan._probe_claim(_main([0.9, 0.9], [0.8, 0.8], False), CPU, [0, 1], "MBGAN")
    assert unconverged.verdict == UNTESTED


def test_each_probe_claim_rests_on_its_own_mbgan_and_dcgan():
    """The per-pixel MBGAN's claim reads its own accuracies and curves: the literal MBGAN not
    converging leaves it testable (and the literal claim untested)."""
    main = _main([0.70, 0.71], [0.82, 0.832], converged=False)  # literal MBGAN, unconverged
    flat = Curve((100, 200), (50.0, 50.0), (1.0, 1.0), Convergence(True, "test"), 1.0)
    label = "MBGAN (per-pixel margin)"
    for sd, acc in enumerate([0.83, 0.842]):  # +0.010 each: clearly better than DCGAN
        main["curves"][(label, sd)] = main["curves"][("DCGAN", sd)] = flat
        main["probe"][(label, sd)] = acc
    mean = mbgan._probe_claim(main, CPU, [0, 1], label)
    assert mean.key == "mbgan-probe-mean" and mean.verdict == HOLDS
    assert mean.ours_mean == pytest.approx(0.010)
    assert mbgan._probe_claim(main, CPU, [0, 1], "MBGAN").verdict == UNTESTED
