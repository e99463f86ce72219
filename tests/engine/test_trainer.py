import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_tiny_methods import tiny_config, tiny_data
from safetensors.torch import load_file

from otgen.engine import load_run, resume, train
from otgen.engine.checkpoint import list_checkpoints
from otgen.engine.logging import read_metrics
from otgen.errors import CheckpointError, NonFiniteError, OTGenError

HERE = Path(__file__).parent


def _final_tensors(run: Path) -> dict[str, torch.Tensor]:
    _, path = list_checkpoints(run / "checkpoints")[-1]
    return load_file(path.with_suffix(".safetensors"))


def _assert_same_run(a: Path, b: Path) -> None:
    ta, tb = _final_tensors(a), _final_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k  # bit for bit: weights, Adam moments, EMA, RNG
    drop = ("time",)
    ma = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(a)]
    mb = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(b)]
    assert ma == mb


CFG = {
    "steps": 90,
    "checkpoint_every": 7,
    "log_every": 4,
    "ema": {"decay": 0.9},
    "params": {"warmup": 10},
}


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    ref = train(tiny_config(tmp_path / "ref", **CFG), tiny_data())
    run = tmp_path / "killed"
    env = {**os.environ, "OTGEN_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "engine_run.py"), str(run), json.dumps(CFG)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    # kill at a random moment after a checkpoint inside the second phase ("gan", step >= 10)
    while time.time() < deadline and proc.poll() is None:
        found = list_checkpoints(run / "checkpoints")
        if found and found[-1][0] >= 14:
            break
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.03))
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = list_checkpoints(run / "checkpoints")[-1][0]
    assert 14 <= killed_at < 90
    resume(run, tiny_data())
    _assert_same_run(ref, run)


def test_resume_at_phase_boundary_and_inside_phase(tmp_path):
    cfg = tiny_config(
        tmp_path / "ref", steps=30, checkpoint_every=5, keep_checkpoints=10, params={"warmup": 10}
    )
    ref = train(cfg, tiny_data())
    for cut in (10, 15):  # 10: exactly at the warmup -> gan boundary; 15: inside "gan"
        run = tmp_path / f"cut{cut}"
        shutil.copytree(ref, run)
        for step, path in list_checkpoints(run / "checkpoints"):
            if step > cut:
                path.unlink()
        resume(run, tiny_data())
        _assert_same_run(ref, run)


def test_existing_run_is_refused_and_untouched(tmp_path):
    run = train(tiny_config(tmp_path / "r", steps=5), tiny_data())
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(OTGenError, match="already holds a run"):
        train(tiny_config(run, steps=5), tiny_data())
    with pytest.raises(OTGenError, match=r"config changed.*steps \(5 -> 6\)"):
        train(tiny_config(run, steps=6), tiny_data(), resume=True)
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    train(tiny_config(run, steps=6), tiny_data(), resume=True, allow_changes=("steps",))
    assert list_checkpoints(run / "checkpoints")[-1][0] == 6


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path / "r", steps=30, checkpoint_every=5, params={"nan_at": 12})
    with pytest.raises(NonFiniteError) as exc:
        train(cfg, tiny_data())
    msg = str(exc.value)
    assert "g_loss became nan at step 12" in msg and "step-000000010" in msg
    assert [s for s, _ in list_checkpoints(tmp_path / "r" / "checkpoints")] == [5, 10]


def test_corrupt_checkpoint_on_resume_is_one_error_and_nothing_written(tmp_path):
    run = train(tiny_config(tmp_path / "r", steps=10, checkpoint_every=5), tiny_data())
    _, path = list_checkpoints(run / "checkpoints")[-1]
    tensors = path.with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[:100])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        resume(run, tiny_data())
    with pytest.raises(CheckpointError):
        load_run(run)
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_epochs_schedule_samples_and_load_run(tmp_path):
    data = tiny_data(n=100)
    cfg = tiny_config(
        tmp_path / "r", steps=None, epochs=2, batch_size=30, sample_every=2, ema={"decay": 0.5}
    )
    run = train(cfg, data)
    # 100 // 30 = 3 steps per epoch (the partial batch is dropped) -> 6 steps
    assert list_checkpoints(run / "checkpoints")[-1][0] == 6
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000000002.png",
        "step-000000004.png",
        "step-000000006.png",
    ]
    method, config = load_run(run)
    assert config.epochs == 2 and not method.nets["G"].training
    ckpt = _final_tensors(run)
    assert torch.equal(method.nets["G"][0].weight, ckpt["ema/0.weight"])  # EMA weights
    raw, _ = load_run(run, ema=False)
    assert torch.equal(raw.nets["G"][0].weight, ckpt["nets/G/0.weight"])
    assert method.sample(5).shape == (5, 2)


def test_batch_larger_than_data_is_an_error(tmp_path):
    with pytest.raises(OTGenError, match="larger than the data set"):
        train(tiny_config(tmp_path / "r", batch_size=300), tiny_data(n=100))


def test_config_json_records_the_settings_the_method_resolved(tmp_path):
    """EOTGM's None defaults (latent_dim, eps, optimizer, lr) are written as the values used."""
    from otgen.engine import train

    cfg = {"method": "eotgm", "data": {"name": "gauss4", "n": 64}, "steps": 1, "batch_size": 32,
           "device": "cpu", "out": str(tmp_path / "run"), "n_samples": 16}  # fmt: skip
    run = train(cfg)
    params = json.loads((run / "config.json").read_text())["config"]["params"]
    assert params["latent_dim"] == 2 and params["optimizer"] == "adam"
    assert params["lr"] == 5e-4 and params["eps"] == 0.5
    resolved = {"latent_dim", "eps", "optimizer", "lr"}
    assert all(params[k] is not None for k in resolved)
    # the run resumes with the config it was started from (None = "let the method choose")
    assert train(cfg, resume=True) == run
