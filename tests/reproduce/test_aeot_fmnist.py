"""aeot-fmnist's building blocks: the held-out reconstruction probe and the AE-OT run that is
extended after its OT phase (the runner's AE chunks and its refinement resume)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from otgen.data import Dataset
from otgen.data.spec import DataSpec
from otgen.reproduce.aeot_fmnist import ReconProbe


class _Scaled:
    """decode(encode(x)) = a·x: per-image MSE = (a − 1)² · mean(x²), known in closed form."""

    def __init__(self, a: float) -> None:
        self.a = a

    def encode(self, x):
        return x

    def decode(self, z):
        return self.a * z

    def sample(self, n):  # the probe is handed the bound ``sample`` (as train_until_flat does)
        raise AssertionError("the reconstruction probe must not sample")


def test_recon_probe_mean_and_standard_error():
    torch.manual_seed(0)
    x = torch.rand(1200, 1, 4, 4) * 2 - 1
    per = (x**2).flatten(1).mean(1).double() * 0.25  # a = 0.5
    value, se = ReconProbe(x)(_Scaled(0.5).sample)
    assert value == pytest.approx(float(per.mean()), rel=1e-6)
    assert se == pytest.approx(float(per.std() / math.sqrt(len(per))), rel=1e-6)
    assert ReconProbe(x).mse(_Scaled(1.0)) == (0.0, 0.0)


def _images(n: int = 48) -> Dataset:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    return Dataset(x, None, DataSpec((1, 28, 28)), "synthetic")


def test_extended_aeot_run_solves_ot_on_its_final_codes(tmp_path):
    """Resuming a finished AE-OT run with more AE steps must re-solve the OT on the codes of the
    encoder as it is now (it used to keep the map of the old codes from the checkpoint)."""
    from otgen.engine.trainer import load_run, train

    data = _images()
    params = {"width": 4, "latent_dim": 3, "refine_at": 10**9, "ot_targets": 12,
              "ot_time_limit": 2.0, "lr": 0.05}  # fmt: skip
    config = {"method": "aeot", "params": params, "steps": 3, "batch_size": 16, "seed": 0,
              "device": "cpu", "out": str(tmp_path / "run"), "log_every": 1,
              "checkpoint_every": 0, "sample_every": 0}  # fmt: skip
    train(config, data)
    before, _ = load_run(tmp_path / "run", "cpu")
    train({**config, "steps": 6}, data, resume=True, allow_changes=("steps",))
    after, _ = load_run(tmp_path / "run", "cpu")
    codes = after.ot_target_codes(data.x)
    assert not torch.allclose(codes, before.ot_target_codes(data.x))  # the encoder trained on
    assert torch.allclose(after.ot.y.double(), codes.double(), atol=1e-5)


def test_refinement_leaves_the_ae_run_resumable(tmp_path):
    """Refinement and OT run in a copy: raising the AE cap afterwards continues the AE run
    (refining in place left a refined checkpoint under the AE's curve and the resume failed)."""
    from otgen.engine.checkpoint import list_checkpoints
    from otgen.reproduce.aeot_fmnist import _train_aeot

    data, held_out = _images(48), _images(24).x
    s = {"width": 4, "latent_dim": 3, "batch": 16, "ae_every": 2, "ae_cap": 4, "refine": 0.5,
         "ot_targets": 12, "ot_time_limit": 2.0}  # fmt: skip
    first = _train_aeot(s, data, held_out, 0, "cpu", tmp_path, log=None)
    assert first["run_dir"] == tmp_path / "aeot-s0-refined" and first["ae_steps"] == 4
    ae_ckpts = list_checkpoints(tmp_path / "aeot-s0" / "checkpoints")
    assert ae_ckpts[-1][0] == 4  # the AE run holds the AE only
    again = _train_aeot({**s, "ae_cap": 8}, data, held_out, 0, "cpu", tmp_path, log=None)
    n_ae = again["ae_steps"]
    assert n_ae > 4 and again["curve"].steps[:2] == first["curve"].steps[:2]  # continued
    assert list_checkpoints(again["run_dir"] / "checkpoints")[-1][0] == n_ae + round(0.5 * n_ae)


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_baselines_get_equal_generator_updates(monkeypatch, profile):
    """WGAN-GP's interval and cap count critic steps: scaled by its n_critic, both baselines are
    evaluated and capped at the same number of generator updates."""
    from otgen.methods.gan import WGANGPConfig
    from otgen.reproduce import aeot_fmnist as af

    seen = {}
    monkeypatch.setattr(af, "train_until_flat", lambda method, *a, **kw: seen.update(
        {method: (kw["eval_every"], kw["max_steps"])}))  # fmt: skip
    s = af._settings(profile)
    for method in ("dcgan", "wgan-gp"):
        af._train_baseline(method, s, None, None, 0, "cpu", Path("unused"))
    n = WGANGPConfig.n_critic
    assert seen["wgan-gp"] == (n * seen["dcgan"][0], n * seen["dcgan"][1])
    assert seen["dcgan"] == (s["base_every"], s["base_cap"])


def test_aeotgan_is_evaluated_through_its_generator_ema(tmp_path):
    """With ``gan_ema`` set, the probe sees and the runner returns the EMA generator: its
    weights are the checkpoint's EMA shadow, not the raw generator the optimiser moved."""
    from otgen.engine.checkpoint import list_checkpoints, load_checkpoint
    from otgen.reproduce.aeot_fmnist import _train_aeot, _train_aeotgan

    data, held_out = _images(48), _images(24).x
    s = {"width": 4, "latent_dim": 3, "batch": 16, "ae_every": 2, "ae_cap": 4, "refine": 0.5,
         "ot_targets": 12, "ot_time_limit": 2.0, "gan_every": 2, "gan_cap": 6,
         "gan_ema": 0.5, "gan_ema_start": 2}  # fmt: skip
    aeot = _train_aeot(s, data, held_out, 0, "cpu", tmp_path, log=None)
    seen = []

    def probe(sample):
        seen.append({k: v.clone() for k, v in sample.__self__.nets["G"].state_dict().items()})
        return 1.0, 1.0  # a flat curve: the run stops after three evaluations

    gan, _, curve = _train_aeotgan(s, data, aeot["run_dir"], probe, 0, "cpu", tmp_path, None)
    state = load_checkpoint(list_checkpoints(tmp_path / "aeotgan-s0" / "checkpoints")[-1][1]).state
    returned = gan.nets["G"].state_dict()
    assert curve.steps == (2, 4, 6) and len(seen) == 3
    for k, v in state["ema"].items():
        assert torch.equal(returned[k], v) and torch.equal(seen[-1][k], v)
    weights = [k for k, v in state["ema"].items() if v.is_floating_point()]
    assert any(not torch.equal(state["ema"][k], state["nets"]["G"][k]) for k in weights)


@pytest.mark.parametrize("profile", ["cpu", "quick"])
def test_aeotgan_ema_horizon_is_one_evaluation_interval(profile):
    """docs/convergence.md: the EMA averages about one evaluation interval (1 / (1 - decay)
    within 10% of it) and starts after the first; the paper profile has none, as the paper."""
    from otgen.reproduce import aeot_fmnist as af
    from otgen.reproduce import generator_ema

    s = af._settings(profile)
    assert 1 / (1 - s["gan_ema"]) == pytest.approx(s["gan_every"], rel=0.1)
    assert s["gan_ema_start"] == s["gan_every"]
    paper = af._settings("paper")
    assert generator_ema(paper["gan_ema"], paper["gan_ema_start"]) is None
