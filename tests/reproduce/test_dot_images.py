"""dot-images: the verdicts of DOT Tables 1-3 from hand-made scores and convergence records."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from otgen.reproduce import dot_images as di
from otgen.utils.claims import FAILS, HOLDS, UNTESTED, Convergence

S = di.PROFILES["quick"]


def _model(converged: bool) -> dict:
    return {"curve": SimpleNamespace(converged=converged)}


def _run(bare_fid: float, dot_fid: float, bare_is: float = 5.0, dot_is: float = 5.5) -> dict:
    return {"bare": {"fid": bare_fid, "is": bare_is}, "dot": {"fid": dot_fid, "is": dot_is},
            "k": 1.0, "updates": S.dot_steps}  # fmt: skip


def _models(cond_ok: bool = True, wgan_ok: bool = True) -> dict:
    models = {k: [_model(True), _model(True)] for k in di.GANS}
    models["WGAN-GP"][1] = _model(wgan_ok)
    models[di.COND] = [_model(cond_ok), _model(True)]
    return models


def _tables(t1_wgan=(30.0, 28.0), t2_other=(30.0, 29.0), t3_last=(40.0, 39.0)):
    t1 = {k: [_run(30.0, 27.0), _run(31.0, 28.0)] for k in di.GANS}
    t1["WGAN-GP"] = [_run(*t1_wgan), _run(*t1_wgan)]
    t2 = {k: [_run(*t2_other), _run(*t2_other)] for k in di.GANS}
    t2[di.FIXED_G] = t1[di.FIXED_G]
    last = max(S.cond_updates)
    t3 = [{tr: {last: _run(*t3_last)} for tr in ("k1", "kclass")} for _ in range(2)]
    return t1, t2, t3


def _verdicts(models, tables) -> dict[str, str]:
    return {c.key: c.verdict for c in di.make_claims(*tables, models, S)}


def test_every_gan_improving_holds_and_one_worse_gan_fails_table1():
    v = _verdicts(_models(), _tables())
    assert v == {"dot-tab1-latent": HOLDS, "dot-tab2-other-d": HOLDS,
                 "dot-tab3-conditional": HOLDS}  # fmt: skip
    # DOT makes WGAN-GP's FID worse: "every GAN" no longer holds; Tables 2-3 are unaffected
    v = _verdicts(_models(), _tables(t1_wgan=(30.0, 31.0)))
    assert v["dot-tab1-latent"] == FAILS and v["dot-tab2-other-d"] == HOLDS
    # another D worsens the fixed G; conditional DOT worsens the cGAN
    v = _verdicts(_models(), _tables(t2_other=(30.0, 30.5), t3_last=(40.0, 40.2)))
    assert v["dot-tab2-other-d"] == FAILS and v["dot-tab3-conditional"] == FAILS


def test_one_unconverged_training_leaves_its_claims_untested():
    v = _verdicts(_models(wgan_ok=False), _tables())
    assert v["dot-tab1-latent"] == UNTESTED and v["dot-tab2-other-d"] == UNTESTED
    assert v["dot-tab3-conditional"] == HOLDS  # the cGAN's claim rests on the cGAN only
    v = _verdicts(_models(cond_ok=False), _tables())
    assert v["dot-tab3-conditional"] == UNTESTED and v["dot-tab1-latent"] == HOLDS


def test_all_converged_names_the_trainings_that_hit_the_cap():
    conv = di.all_converged({"A": [_model(True), _model(False)], "B": [_model(False)]})
    assert isinstance(conv, Convergence) and not conv.converged
    assert "A seed 1" in conv.evidence and "B seed 0" in conv.evidence
    assert "A seed 0" not in conv.evidence
    assert di.all_converged({"A": [_model(True)], "B": [_model(True)]}).converged


def test_budget_fraction_counts_critic_steps_of_wgan_gp():
    s = di.PROFILES["paper"]
    # the paper profile is the paper's schedule: 100k generator updates at batch 64
    assert di.budget_fraction(s, "SNGAN(ns)") == 1.0
    assert di.budget_fraction(s, "WGAN-GP") == 1.0
    cpu = di.PROFILES["cpu"]
    critic_steps = cpu.wgan_scale * cpu.max_steps
    assert di.budget_fraction(cpu, "WGAN-GP") == critic_steps * cpu.batch / (500_000 * 64)
    # 5 critic steps per update: WGAN-GP's generator gets as many updates as the others'
    # at an evaluation interval of the same number of generator updates
    wgan, sngan = di.budget_fraction(cpu, "WGAN-GP"), di.budget_fraction(cpu, "SNGAN(ns)")
    assert wgan == pytest.approx(sngan)
    assert cpu.steps("WGAN-GP")[0] == cpu.wgan_scale * cpu.eval_every
    # the conditional GAN's cap and evaluation interval are the others'
    assert cpu.steps(di.COND) == (cpu.eval_every, cpu.max_steps)
    cond, uncond = di.budget_fraction(cpu, di.COND), di.budget_fraction(cpu, "SNGAN(ns)")
    assert cond == pytest.approx(uncond)
