"""aeot-fmnist's building blocks: the held-out reconstruction probe and the AE-OT run that is
extended after its OT phase (the runner's AE chunks and its refinement resume)."""

from __future__ import annotations

import math

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
