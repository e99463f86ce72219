"""Run directories lose no data (issue #17, class 2): foreign directories, two writers, outputs
of other commands inside a run, disk full / read-only / Ctrl-C during training.

Every refusal goes through the real CLI entry point and checks exit code 2, one
``otgen: error:`` line and an unchanged tree (the whole test folder, run included).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_tiny_methods import METHOD, tiny_data

from otgen.cli import main
from otgen.engine import checkpoint as C
from otgen.engine import logging as L
from otgen.engine import rundir
from otgen.errors import OTGenError
from tests.engine.test_trainer import _assert_same_run
from tests.test_hostile import refused, tree_hash

HERE = Path(__file__).parent
STEPS = ["--steps", "40", "--checkpoint-every", "10", "--keep-checkpoints", "5"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: more threads only add contention on a shared machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "data.npy", tiny_data().x.numpy())
    return tmp_path


def train_args(out: str | Path, *extra: str) -> list[str]:
    return ["train", METHOD, "--data", "data.npy", "--batch-size", "32", "--seed", "3",
            "--log-every", "5", "--device", "cpu", *STEPS, "--out", str(out), *extra]  # fmt: skip


# -- a directory that is not this run ---------------------------------------------------------


def test_non_empty_directory_without_a_run_needs_overwrite(work, capsys):
    d = work / "mine"
    d.mkdir()
    (d / "metrics.jsonl").write_text('{"step": 99, "loss": 1.0}\n{"step": 100, "loss": 2.0}\n')
    (d / "notes.txt").write_text("keep me")
    (d / "samples").mkdir()
    (d / "samples" / "step-000000040.png").write_bytes(b"not ours")
    for extra in ([], ["--resume"]):
        refused(capsys, train_args(d, *extra), work, match="not empty and holds no otgen run")
    before = tree_hash(d)
    assert main(train_args(d, "--overwrite")) == 0
    after = tree_hash(d)
    # nothing deleted or cut: the earlier entries a run writes were renamed aside
    assert after["notes.txt"] == before["notes.txt"]
    assert after["metrics.jsonl.1"] == before["metrics.jsonl"]
    assert after["samples.1/step-000000040.png"] == before["samples/step-000000040.png"]
    assert [r["step"] for r in L.read_metrics(d)] == list(range(5, 45, 5))
    assert "kept the earlier" in capsys.readouterr().err
    # a run is never overwritten, --overwrite or not
    refused(capsys, train_args(d, "--overwrite"), work, match="already holds a run")
    refused(capsys, train_args(d, "--overwrite", "--seed", "4"), work, match="already holds")


def test_a_different_run_is_refused(work, capsys):
    assert main(train_args("r")) == 0
    refused(capsys, train_args("r", "--seed", "4"), work, match="already holds a run")
    refused(capsys, train_args("r", "--seed", "4", "--resume"), work, match="config changed")


def test_resume_extends_steps_only_when_allowed(work, capsys):
    """One check decides (the checkpoint's): ``--allow-change steps`` extends a finished run,
    which then ends bit for bit like a run trained to the new end at once."""
    assert main(train_args("r", "--steps", "20")) == 0
    refused(
        capsys,
        train_args("r", "--resume"),
        work,
        match="config changed since it was written: steps (20 -> 40)",
    )
    refused(capsys, train_args("r", "--allow-change", "steps"), work, match="only applies to")
    assert main(train_args("r", "--resume", "--allow-change", "steps")) == 0
    assert main(train_args("ref")) == 0
    _assert_same_run(work / "ref", work / "r")


# -- outputs of other commands inside a run ---------------------------------------------------


@pytest.fixture
def run(work) -> Path:
    assert main(train_args("r", "--sample-every", "20")) == 0
    return work / "r"


def test_outputs_never_replace_a_runs_own_files(run, work, capsys):
    ckpt = "r/checkpoints/step-000000020"
    cases = [
        ["refine", "--run", "r", "--out", "r/config"],  # would write r/config.json
        ["refine", "--run", "r", "--out", f"{ckpt}.safetensors"],  # ... its checkpoint JSON
        ["refine", "--run", "r", "--out", "r/samples/x.npy"],
        ["sample", "--run", "r", "--out", "r/samples/step-000000020.png"],
        ["sample", "--run", "r", "--out", "r/checkpoints/x.npy"],
        ["eval", "--run", "r", "--out", "r/checkpoints"],
        ["eval", "--run", "r", "--out", "r/samples"],
    ]
    for argv in cases:
        refused(capsys, argv, work, match="the run's own")
    os.symlink(run / "config.json", work / "link.npy")
    refused(capsys, ["sample", "--run", "r", "--out", "link.npy"], work, match="own config.json")
    # another run's files are protected even when no --run names it
    np.save(work / "s.npy", np.zeros((8, 2), np.float32))
    argv = ["eval", "--samples", "s.npy", "--data", "gauss4", "--out", "r/checkpoints/e"]
    refused(capsys, argv, work, match="own checkpoints")
    argv = ["train", METHOD, "--data", "data.npy", "--steps", "2", "--out", "r/samples/sub"]
    refused(capsys, argv, work, match="own samples")
    # outputs beside the run's files stay allowed
    assert main(["sample", "--run", "r", "--n", "8", "--out", "r/more.npy"]) == 0
    rundir.check_outputs(["r/refined-latent.npy", "r/metrics.json", "r/samples.png"], "r")


# -- one writer at a time, Ctrl-C, disk full ---------------------------------------------------

SLOW_DRIVER = """import sys, time
sys.path.insert(0, sys.argv[1])
from engine_tiny_methods import TinyGAN
step = TinyGAN.train_step
TinyGAN.train_step = lambda self, x, y, s: (time.sleep(0.08), step(self, x, y, s))[1]
from otgen.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_second_writer_refused_and_ctrl_c_resumes_exactly(work, capsys):
    assert main(train_args("ref")) == 0
    env = {**os.environ, "OTGEN_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    cmd = [sys.executable, "-c", SLOW_DRIVER, str(HERE), *train_args("r")]
    proc = subprocess.Popen(cmd, env=env, cwd=work, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while (
        time.time() < deadline and proc.poll() is None and not C.list_checkpoints("r/checkpoints")
    ):
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    # a second writer, with or without --resume, is refused and names the first one's PID
    for extra in ([], ["--resume"]):
        capsys.readouterr()
        assert main(train_args("r", *extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"being written by otgen process {proc.pid}" in err[0], err
    assert main(["resume", "--run", "r"]) == 2
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otgen: interrupted; training stopped at step")
    newest = rundir.newest_checkpoint("r")
    assert f"newest complete checkpoint: {newest.name}" in lines[0] and "otgen resume" in lines[0]
    assert C.load_checkpoint(newest).step < 40
    assert main(["resume", "--run", "r"]) == 0  # the lock died with the process
    _assert_same_run(work / "ref", work / "r")


def _failing(kind: str):
    """A write that fails the way a full disk or a read-only directory does."""
    code = {"full": errno.ENOSPC, "read-only": errno.EROFS}[kind]

    def fail(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    return fail


@pytest.mark.parametrize(
    ("target", "kind"),
    [("tensors", "full"), ("record", "read-only"), ("metrics", "full")],
)
def test_write_failure_mid_training_is_one_line_and_resumable(
    work, capsys, monkeypatch, target, kind
):
    assert main(train_args("ref")) == 0
    fail = _failing(kind)
    real = {"tensors": C.atomic_write, "record": C.write_text, "metrics": open}[target]

    def second_time_fails(path, *args, **kwargs):  # the step-20 checkpoint / a later log line
        late = "000000020" in str(path) or (target == "metrics" and L.read_metrics("r")[-1:]
                                             and L.read_metrics("r")[-1]["step"] >= 15)  # fmt: skip
        return fail(path) if late else real(path, *args, **kwargs)

    module, name = (L, "open") if target == "metrics" else (C, real.__name__)
    monkeypatch.setattr(module, name, second_time_fails, raising=False)
    capsys.readouterr()
    assert main(train_args("r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error: "), err
    assert os.strerror(errno.ENOSPC if kind == "full" else errno.EROFS) in err[0]
    assert "step-000000010.json" in err[0]
    assert [s for s, _ in C.list_checkpoints("r/checkpoints")] == [10]
    assert not list(Path("r/checkpoints").glob("*20*"))  # no half-written checkpoint left
    assert C.load_checkpoint(rundir.newest_checkpoint("r")).step == 10
    monkeypatch.setattr(module, name, real, raising=False)  # space freed
    assert main(["resume", "--run", "r"]) == 0
    _assert_same_run(work / "ref", work / "r")


# -- the lock itself --------------------------------------------------------------------------


def test_lock_is_exclusive_per_open_and_refusal_writes_nothing(work, capsys):
    with rundir.RunLock.acquire(work / "r"):
        refused(capsys, train_args("r"), work, match=f"otgen process {os.getpid()}")
        with pytest.raises(OTGenError, match="being written"):
            rundir.RunLock.acquire(work / "r")
    rundir.RunLock.acquire(work / "r").release()  # released: free again
    rundir.RunLock.acquire(work / "q" / "r").release(undo=True)
    assert not (work / "q").exists()  # undo removes what the lock created


def test_failed_start_leaves_no_directory(work):
    from otgen.engine import train

    with pytest.raises(OTGenError):
        train({"method": METHOD, "data": {"name": "none"}, "steps": 2, "out": "new/run"})
    assert not (work / "new").exists()
