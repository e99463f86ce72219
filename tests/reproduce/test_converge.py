"""Properties of the issue-16 convergence machinery (``otgen.reproduce._converge``).

- Chunked training (``train_until_flat``: train to k·eval_every, resume with more steps) ends
  with parameters bit-identical to one uninterrupted engine run of the same total length.
- It is resumable: a second call continues from ``run_dir/curve.json`` (raising the cap extends
  a capped run to the same weights as one long run; a finished run is returned without
  training), and a different key (other params) starts afresh.
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
import otgen.engine.trainer
from otgen.engine.trainer import load_run, train
from otgen.errors import OTGenError
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


def _chunked(data, probe, run_dir: Path, max_steps: int, params=PARAMS, log=None):
    return train_until_flat(
        "dcgan", params, data, probe=probe, batch=BATCH, seed=11, device="cpu", run_dir=run_dir,
        eval_every=CHUNK, max_steps=max_steps, min_evals=99, progress=log,
    )  # fmt: skip


def test_raising_the_cap_resumes_to_the_weights_of_one_long_run(fmnist, probe, tmp_path: Path):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _, _, short = _chunked(data, probe, tmp_path / "run", max_steps=4)
    assert short.steps == (2, 4) and "cap of 4" in short.convergence.evidence
    said: list[str] = []
    _, _, extended = _chunked(data, probe, tmp_path / "run", max_steps=STEPS, log=said.append)
    assert any("resuming at step 4" in line for line in said)
    assert extended.steps == (2, 4, 6)
    assert extended.fids[:2] == short.fids  # the saved evaluations are kept, not recomputed
    _chunked(data, probe, tmp_path / "whole", max_steps=STEPS)
    a, b = _states(tmp_path / "run"), _states(tmp_path / "whole")
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_a_finished_run_is_returned_without_training(fmnist, probe, tmp_path, monkeypatch):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _, _, first = _chunked(data, probe, tmp_path / "run", max_steps=4)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(otgen.engine.trainer, "train", refuse)
    _, _, again = _chunked(data, probe, tmp_path / "run", max_steps=4)
    assert again == first


def test_another_key_starts_afresh(fmnist, probe, tmp_path: Path):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _chunked(data, probe, tmp_path / "run", max_steps=4)
    said: list[str] = []
    _, _, other = _chunked(data, probe, tmp_path / "run", 4, params={"width": 5}, log=said.append)
    assert not any("resuming" in line for line in said)
    assert other.steps == (2, 4)
    _chunked(data, probe, tmp_path / "fresh", max_steps=4, params={"width": 5})
    a, b = _states(tmp_path / "run"), _states(tmp_path / "fresh")
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_floor_is_the_probe_of_other_real_images(fmnist, probe):
    other_real = fmnist.x[300:600]
    assert probe.floor(other_real) == probe(lambda k: other_real[:k])
    with pytest.raises(OTGenError, match="needs >= 300 images"):
        probe.floor(other_real[:10])


def test_a_run_without_weights_or_fingerprint_starts_afresh(fmnist, probe, tmp_path: Path):
    import shutil

    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _chunked(data, probe, tmp_path / "run", max_steps=4)
    shutil.rmtree(tmp_path / "run" / "checkpoints")  # as the reproductions do to save space
    said: list[str] = []
    _, _, again = _chunked(data, probe, tmp_path / "run", max_steps=4, log=said.append)
    assert again.steps == (2, 4) and not any("resuming" in line for line in said)

    class Stateful:  # a probe with state of its own: no fingerprint, so never resumed
        def __call__(self, sample):
            return probe(sample)

    said.clear()
    train_until_flat("dcgan", PARAMS, data, probe=Stateful(), batch=BATCH, seed=11,
                     device="cpu", run_dir=tmp_path / "run", eval_every=CHUNK, max_steps=4,
                     min_evals=99, progress=said.append)  # fmt: skip
    assert not any("resuming" in line for line in said)


def test_a_curve_that_rose_after_its_best_says_so():
    from otgen.reproduce._converge import note_rise
    from otgen.utils.claims import check_convergence

    steps, ses = [350, 700, 1050, 1400], [0.7] * 4
    rose = [100.0, 61.0, 114.9, 114.2]  # MBGAN seed 1 of session 6, abridged
    conv = note_rise(check_convergence(steps, rose, ses), steps, rose, ses)
    assert conv.converged and "61 at step 700" in conv.evidence
    fell = [100.0, 70.0, 60.5, 60.0]
    plain = check_convergence(steps, fell, ses)
    assert note_rise(plain, steps, fell, ses) == plain


def test_the_key_hashes_training_code_and_data_not_reproduction_scripts(fmnist, tmp_path):
    from otgen.reproduce._converge import data_fingerprint, training_sources

    files = training_sources()
    assert "engine/trainer.py" in files and "methods/gan.py" in files
    assert "reproduce/_converge.py" in files and "metrics/fid.py" in files
    assert not any(f.startswith(("reproduce/eot", "reproduce/dot", "viz/", "commands/"))
                   for f in files)  # fmt: skip
    # the stopping rule only reads a curve: a stricter one continues a saved run
    assert "utils/claims.py" not in files and "utils/seeding.py" in files
    a = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    assert data_fingerprint(a) == data_fingerprint(
        otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    )
    assert data_fingerprint(a) != data_fingerprint(
        otgen.data.load("fashion-mnist", split="test", n=64, seed=2)
    )


def test_other_data_starts_afresh(fmnist, probe, tmp_path: Path):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _chunked(data, probe, tmp_path / "run", max_steps=4)
    said: list[str] = []
    other = otgen.data.load("fashion-mnist", split="test", n=64, seed=2)
    _chunked(other, probe, tmp_path / "run", max_steps=4, log=said.append)
    assert not any("resuming" in line for line in said)


def test_the_run_folder_path_and_device_index_are_not_part_of_the_key(
    fmnist, probe, tmp_path: Path, monkeypatch
):
    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    _chunked(data, probe, tmp_path / "run", max_steps=4)
    monkeypatch.chdir(tmp_path)  # the same folder, named relatively: the run continues
    said: list[str] = []
    _, _, more = _chunked(data, probe, Path("run"), max_steps=STEPS, log=said.append)
    assert any("resuming at step 4" in line for line in said) and more.steps == (2, 4, 6)


def test_progress_lines_name_the_probes_metric(fmnist, probe, tmp_path: Path):
    class Named:  # e.g. aeot-fmnist's reconstruction probe: its value is an MSE, not an FID
        metric = "MSE"

        def __call__(self, sample):
            return probe(sample)

    data = otgen.data.load("fashion-mnist", split="test", n=64, seed=1)
    said: list[str] = []
    _chunked(data, Named(), tmp_path / "named", max_steps=CHUNK, log=said.append)
    _chunked(data, probe, tmp_path / "fid", max_steps=CHUNK, log=said.append)
    assert "step 2  MSE " in said[0] and "FID" not in said[0]
    assert "step 2  FID " in said[1]
