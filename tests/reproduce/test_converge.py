"""Properties of the issue-16 convergence machinery (``otgen.reproduce._converge``).

- Chunked training (``train_until_flat``: train to k·eval_every, resume with more steps) ends
  with parameters bit-identical to one uninterrupted engine run of the same total length.
- ``FidProbe`` is a fixed measurement: the same sampler gives the same FID twice, the caller's
  RNG stream is untouched, and it separates real images from noise (real vs disjoint real
  images scores far below noise vs real).

Tiny DCGAN (width 4) on 64 Fashion-MNIST images; a few seconds on one thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import otgen.data
from otgen.engine.trainer import load_run, train
from otgen.reproduce._converge import FidProbe, train_until_flat

PARAMS = {"width": 4}
BATCH, STEPS, CHUNK = 8, 6, 2  # three chunks of two steps


@pytest.fixture(scope="module")
def fmnist():
    try:
        return otgen.data.load("fashion-mnist", split="test", n=600, seed=0)
    except Exception:  # missing files, or no root configured
        pytest.skip("Fashion-MNIST is not installed")


@pytest.fixture(scope="module")
def probe(fmnist):
    return FidProbe(fmnist.x[:300], n=300, seed=3, boot=2)


def _states(run_dir: Path) -> dict[str, torch.Tensor]:
    method, _ = load_run(run_dir, ema=False)
    return {f"{name}.{k}": v for name, net in method.nets.items()
            for k, v in net.state_dict().items()}  # fmt: skip


def test_chunked_training_is_bit_identical_to_one_run(fmnist, probe, tmp_path: Path):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    evals = -(-STEPS // CHUNK)
    _, _, curve = train_until_flat(
        "dcgan", PARAMS, data, probe=probe, batch=BATCH, seed=11, device="cpu",
        run_dir=tmp_path / "chunked", eval_every=CHUNK, max_steps=STEPS,
        min_evals=evals + 1, progress=None,
    )  # fmt: skip
    assert curve.steps == (2, 4, 6)  # the rule could not stop early: every chunk ran
    assert not curve.converged  # fewer evaluations than min_evals: never called flat
    config = {"method": "dcgan", "params": PARAMS, "batch_size": BATCH, "seed": 11,
              "device": "cpu", "out": str(tmp_path / "whole"), "sample_every": 0,
              "checkpoint_every": 0, "steps": STEPS}  # fmt: skip
    train(config, data)
    chunked, whole = _states(tmp_path / "chunked"), _states(tmp_path / "whole")
    assert chunked.keys() == whole.keys()
    for key, value in whole.items():
        assert torch.equal(chunked[key], value), key
    # the resumed chunks did train: the result is not that of the first chunk alone
    train({**config, "out": str(tmp_path / "first"), "steps": CHUNK}, data)
    first = _states(tmp_path / "first")
    assert any(not torch.equal(first[k], whole[k]) for k in whole if k.startswith("G."))


def test_fid_probe_is_fixed_and_leaves_rng_alone(fmnist, probe):
    def noise(k: int) -> torch.Tensor:
        return torch.rand(k, 1, 28, 28) * 2 - 1

    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = probe(noise)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's stream is untouched
    torch.rand(5)  # move the global stream: the probe's draws must not depend on it
    assert probe(noise) == first  # same fixed draws, same bootstrap: the same (FID, s.e.)


def test_fid_probe_separates_real_from_noise(fmnist, probe):
    other_real = fmnist.x[300:600]  # disjoint from the probe's real set
    real_fid, real_se = probe(lambda k: other_real[:k])
    noise_fid, _ = probe(lambda k: torch.rand(k, 1, 28, 28) * 2 - 1)
    assert real_se > 0
    assert real_fid < 0.1 * noise_fid
