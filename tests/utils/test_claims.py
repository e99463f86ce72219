"""Verdict rules: a verdict needs a flattened curve and at least two seeds."""

from __future__ import annotations

import math

import pytest

from otgen.errors import OTGenError
from otgen.utils.claims import (
    CATALOG,
    FAILS,
    HOLDS,
    UNTESTED,
    check_convergence,
    convergence_from_seeds,
    decide_verdict,
    make_claim,
)

STEPS = [1000, 2000, 3000, 4000, 5000]


def test_flattened_curve_converges():
    # six seeds fall from 1.0 and level off at 0.30 with seed-to-seed scatter 0.02
    curves = [[1.0, 0.5, 0.3, 0.301, 0.300 + 0.02 * (-1) ** s] for s in range(6)]
    conv = convergence_from_seeds(STEPS, curves)
    assert conv.converged and "flattened" in conv.evidence
    assert conv.means[-1] == pytest.approx(0.3) and conv.steps == tuple(STEPS)


def test_still_falling_curve_is_not_converged():
    falling = [[1.0 - 0.1 * i + 0.001 * s for i in range(5)] for s in range(4)]
    conv = convergence_from_seeds(STEPS, falling)
    assert not conv.converged and "still moving" in conv.evidence


def test_within_standard_errors_boundary():
    # sqrt(0.06² + 0.08²) = 0.1: a change of 0.099 is within, 0.101 is not
    assert check_convergence([1, 2], [1.0, 1.099], [0.06, 0.08]).converged
    assert not check_convergence([1, 2], [1.0, 1.101], [0.06, 0.08]).converged
    assert not check_convergence([1], [1.0], [0.1]).converged
    assert not check_convergence([1, 2], [1.0, 1.0], [float("nan"), 0.1]).converged


def test_one_seed_is_untested_even_when_flat():
    conv = check_convergence([1, 2], [0.5, 0.5], [0.1, 0.1])
    claim = make_claim("dot-fig3-swissroll-G", seed_values=[0.02], holds=True, convergence=conv)
    assert claim.verdict == UNTESTED and "seed" in claim.reason
    # a single seed's curves have no s.e.: never "flattened"
    assert not convergence_from_seeds([1, 2], [[0.5, 0.5]]).converged


def test_verdicts():
    ok = check_convergence([1, 2], [0.5, 0.5], [0.1, 0.1])
    bad = check_convergence([1, 2], [0.9, 0.5], [0.01, 0.01])
    assert decide_verdict(True, 3, ok)[0] == HOLDS
    assert decide_verdict(False, 3, ok)[0] == FAILS
    assert decide_verdict(True, 3, bad) == (UNTESTED, "not converged")
    assert decide_verdict(True, 3, None)[0] == UNTESTED
    assert decide_verdict(None, 3, ok)[0] == UNTESTED


def test_predicate_sees_mean_and_se():
    ok = check_convergence([1, 2], [0.5, 0.5], [0.1, 0.1])
    seen = []
    c = make_claim("dot-keff-swissroll", seed_values=[1.0, 1.2], convergence=ok,
                   holds=lambda m, se: seen.append((m, se)) or m > 2)  # fmt: skip
    assert seen == [(pytest.approx(1.1), pytest.approx(0.1))] and c.verdict == FAILS
    assert c.paper == "DOT" and c.paper_value == "1.05"


def test_claim_is_immutable_and_unknown_keys_need_text():
    c = make_claim("dot-keff-swissroll")
    with pytest.raises(AttributeError):
        c.verdict = HOLDS  # type: ignore[misc]
    with pytest.raises(OTGenError):
        make_claim("no-such-claim")
    assert make_claim("x", paper="P", claim="c", paper_value="1").verdict == UNTESTED


def test_catalog_keys_unique():
    keys = [e.key for e in CATALOG]
    assert len(keys) == len(set(keys))
    assert all(e.reproducible_here or e.why_not for e in CATALOG)


def test_all_converged_needs_every_part_and_names_the_ones_that_are_not():
    from otgen.utils.claims import Convergence, all_converged

    flat, moving = Convergence(True, "flat"), Convergence(False, "moving")
    conv = all_converged({"G seed 0": flat, "G seed 1": moving, "D seed 0": moving})
    assert not conv.converged
    assert "G seed 1" in conv.evidence and "D seed 0" in conv.evidence
    assert "G seed 0" not in conv.evidence
    assert all_converged({"G seed 0": flat, "G seed 1": flat}).converged


def test_significance_rule_is_three_way_and_inconclusive_is_untested():
    from otgen.utils.claims import INCONCLUSIVE, Convergence, significant

    assert significant(0.05, 0.01) is True  # 5 s.e. above 0
    assert significant(-0.05, 0.01) is False  # 5 s.e. below
    assert significant(-0.0175, 0.019) is INCONCLUSIVE  # MBGAN's probe, session 6
    assert significant(0.3, 0.01, threshold=0.25) is True
    conv = Convergence(True, "flat")
    claim = make_claim("mbgan-probe", seed_values=[-0.04, 0.005], holds=significant,
                       convergence=conv)  # fmt: skip
    assert claim.verdict == "untested" and "inconclusive" in claim.reason
    claim = make_claim("mbgan-probe", seed_values=[0.030, 0.031], holds=significant,
                       convergence=conv)  # fmt: skip
    assert claim.verdict == "holds"


FLAT_START = [108.9, 107.9, 108.6]  # three earlier evaluations of a flat curve (s.e. ~0.7)


def test_a_curve_pausing_on_its_way_down_is_not_steady():
    from otgen.utils.claims import check_steady

    steps, ses = [1600, 2400, 3200, 4000, 4800, 5600], [0.7, 0.7, 0.7, 0.69, 1.04, 0.59]
    paused = [*FLAT_START, 119.0, 107.6, 108.0]  # EOTGAN seed 0, session 7: a fall, a flat pair
    assert check_convergence(steps, paused, ses).converged
    conv = check_steady(steps, paused, ses)
    assert not conv.converged and "differ by 11 > 1.2" in conv.evidence
    assert check_steady(steps, [*FLAT_START, 108.4, 107.6, 108.0], ses).converged
    assert not check_steady(steps[4:], paused[4:], ses[4:]).converged  # two evaluations
    # a slow drift: each consecutive pair agrees, the first and the last do not
    drift = check_steady(steps, [*FLAT_START, 100.0, 99.0, 98.0], [0.8] * 6)
    assert not drift.converged and "step 4000 (100 ± 0.8) and step 5600" in drift.evidence
    nan = check_steady(steps, [*FLAT_START, float("nan"), 98.0, 98.0], [0.8] * 6)
    assert not nan.converged and "lacks a finite value" in nan.evidence


def test_three_agreeing_evaluations_at_the_end_of_a_fall_are_not_steady():
    from otgen.utils.claims import check_steady, trend_over_window

    # WGAN seed 0 of session 8: falling ~4 FID per evaluation, then 87.9, 88.5, 87.5
    steps = [23000, 24000, 25000, 26000, 27000, 28000]
    fids, ses = [100.0, 95.5, 90.6, 87.9, 88.5, 87.5], [0.94, 0.96, 0.91, 0.89, 0.93, 0.98]
    conv = check_steady(steps, fids, ses)
    assert not conv.converged and "change by -12.3" in conv.evidence
    assert "still trending" in conv.evidence
    # five evaluations cannot show the trend: not steady either
    assert "fewer than 6 evaluations" in check_steady(steps[1:], fids[1:], ses[1:]).evidence
    # the noise is the larger of the residual spread and the s.e.: a GAN oscillating by
    # ±2 FID about a flat line (s.e. 0.5) shows no trend
    osc = [36.0, 38.0, 35.5, 37.9, 36.1, 36.4]
    evidence, why = trend_over_window(steps, osc, [0.5] * 6)
    assert why == "" and "within 2 s.e." in evidence
    # ... while the same oscillation on a fall of 2 FID per evaluation does
    falling = [v - 2.0 * i for i, v in enumerate(osc)]
    assert "still trending" in trend_over_window(steps, falling, [0.5] * 6)[1]


def test_the_trend_bound_is_the_least_squares_slope_over_the_window():
    from otgen.utils.claims import trend_over_window

    # exact line y = 10 - x (x in 0..5): change -5, residuals 0, noise = the s.e. 0.3;
    # s.e. of the change = 0.3 * 5 / sqrt(17.5)
    evidence, why = trend_over_window(range(6), [10.0 - x for x in range(6)], [0.3] * 6)
    bound = 2 * 0.3 * 5 / math.sqrt(17.5)
    assert "change by -5 " in evidence and f"({bound:.2g})" in evidence and why
