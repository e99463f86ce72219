"""The decision rules of ``otgen reproduce eot-mixing`` on hand-made inputs: the degradation
numbers of a mixing-ratio result, the ordering claim of EOT Fig. 1c-d (EOTGAN degrades least,
EOTGM most), its refusal to decide while any training has not flattened, and the per-model
caps."""

from __future__ import annotations

import numpy as np

from otgen.methods.gan import WGANConfig
from otgen.metrics.protocols import MixingRatioResult
from otgen.reproduce._converge import Curve
from otgen.reproduce.eot_mixing import PROFILES, claims_for, degradation, joint_convergence
from otgen.utils.claims import FAILS, HOLDS, UNTESTED, Convergence


def test_degradation_is_endpoint_difference_of_repeat_means():
    fid = np.array([[1.0, 5.0, 9.0], [3.0, 7.0, 13.0]])  # repeats x ratios (0, .5, 1)
    is_ = np.array([[8.0, 6.0, 2.0], [9.0, 7.0, 4.0]])
    res = MixingRatioResult((0.0, 0.5, 1.0), {"fid": fid, "is": is_}, n=10, repeats=2)
    d = degradation(res)
    assert d["FID rise"] == 11.0 - 2.0  # mean FID(1) - mean FID(0)
    assert d["IS drop"] == 8.5 - 3.0  # mean IS(0) - mean IS(1)


def _curve(flat: bool) -> Curve:
    return Curve((1, 2), (5.0, 5.0), (0.1, 0.1), Convergence(flat, "hand-made"), 1.0)


def _rows(order: dict[str, float]) -> dict[str, list[dict]]:
    # two seeds per model, spread ±0.1 around the model's degradation
    return {m: [{"IS drop": v + d, "FID rise": v + d} for d in (-0.1, 0.1)]
            for m, v in order.items()}  # fmt: skip


def _curves(stuck: str = "") -> dict[str, list[Curve]]:
    return {m: [_curve(m != stuck), _curve(True)] for m in ("DCGAN", "WGAN", "EOTGM", "EOTGAN")}


def test_paper_order_holds_and_other_orders_do_not():
    paper = _rows({"EOTGAN": 1.0, "DCGAN": 2.0, "WGAN": 3.0, "EOTGM": 4.0})
    claims = claims_for(paper, joint_convergence(_curves()), budget=0.1)
    assert [c.key for c in claims] == ["eot-fig1cd-is", "eot-fig1cd-fid"]
    assert all(c.verdict == HOLDS for c in claims)
    # EOTGAN not the slowest (DCGAN is): the claim fails
    swapped = _rows({"EOTGAN": 2.0, "DCGAN": 1.0, "WGAN": 3.0, "EOTGM": 4.0})
    assert all(c.verdict == FAILS for c in claims_for(swapped, joint_convergence(_curves()), 0.1))
    # EOTGM not the fastest (WGAN is): fails too
    wgan_worst = _rows({"EOTGAN": 1.0, "DCGAN": 2.0, "WGAN": 5.0, "EOTGM": 4.0})
    claims = claims_for(wgan_worst, joint_convergence(_curves()), 0.1)
    assert all(c.verdict == FAILS for c in claims)
    # EOTGAN ahead of DCGAN by less than the seeds' spread: neither verdict
    close = _rows({"EOTGAN": 1.0, "DCGAN": 1.1, "WGAN": 3.0, "EOTGM": 4.0})
    claims = claims_for(close, joint_convergence(_curves()), 0.1)
    assert all(c.verdict == UNTESTED and "inconclusive" in c.reason for c in claims)


def test_one_unflattened_training_leaves_the_claims_untested():
    conv = joint_convergence(_curves(stuck="WGAN"))
    assert not conv.converged and "WGAN seed 0" in conv.evidence
    paper = _rows({"EOTGAN": 1.0, "DCGAN": 2.0, "WGAN": 3.0, "EOTGM": 4.0})
    assert all(c.verdict == UNTESTED for c in claims_for(paper, conv, budget=0.1))


def test_cpu_caps_give_wgan_as_many_generator_updates():
    s = PROFILES["cpu"]
    assert s.cap("dcgan") == s.cap("eotgm") == s.max_steps  # the common cap: equal epochs
    # WGAN's engine steps are critic steps: its cap / n_critic generator updates
    assert s.cap("wgan") // WGANConfig.n_critic == s.max_steps
