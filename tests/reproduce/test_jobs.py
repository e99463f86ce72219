"""``otgen reproduce NAME --jobs N`` (``otgen.reproduce._jobs``): independent runs trained in
worker processes give the report a sequential run gives, and failures name the run."""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otgen import reproduce
from otgen.errors import OTGenError
from otgen.reproduce._jobs import TrainJob, run_jobs

from .test_smoke import _fmnist_available


def _touch(path: str) -> None:
    Path(path).write_text("trained")


def _fail(message: str) -> None:
    raise ValueError(message)


def test_every_job_runs_once(tmp_path: Path):
    jobs = [TrainJob(f"run {i}", _touch, {"path": str(tmp_path / f"{i}.txt")}) for i in range(3)]
    lines: list[str] = []
    run_jobs(jobs, 2, progress=lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt"]
    assert lines[0] == "training 3 runs in 2 processes"
    assert len(lines) == 4 and lines[-1].startswith("[3/3] ")


def test_a_failed_job_is_named(tmp_path: Path):
    jobs = [TrainJob("good", _touch, {"path": str(tmp_path / "good.txt")}),
            TrainJob("MBGAN seed 1", _fail, {"message": "exploded"})]  # fmt: skip
    with pytest.raises(OTGenError, match=r"run MBGAN seed 1 failed: ValueError: exploded"):
        run_jobs(jobs, 2, progress=lambda _: None)


def test_jobs_must_be_positive():
    with pytest.raises(OTGenError, match="--jobs must be >= 1"):
        run_jobs([], 0)


def test_experiments_without_independent_runs_refuse_jobs(tmp_path: Path):
    assert set(reproduce.parallel_experiments()) == {"aeot-fmnist", "dot-images", "eot-mixing",
                                                      "mbgan"}  # fmt: skip
    with pytest.raises(OTGenError, match="dot-2d trains in one process"):
        reproduce.run_experiment("dot-2d", str(tmp_path), "quick", 0, "cpu", jobs=2)


def test_cli_rejects_jobs_below_one(capsys):
    from otgen.cli import main

    assert main(["reproduce", "eot-mixing", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err


@pytest.mark.skipif(not _fmnist_available(), reason="Fashion-MNIST is not installed")
def test_parallel_training_gives_the_sequential_report(tmp_path, monkeypatch):
    """eot-mixing on a tiny budget: the workers train every run (the parent trains none) and
    the curves match a sequential run's to the bit."""
    m = importlib.import_module("otgen.reproduce.eot_mixing")
    tiny = m.Settings(n_train=300, batch=16, width=4, max_steps=4, eval_every=2, probe_n=50,
                      mix_n=50, repeats=1, seeds=2, ema=0.9, boot=2)  # fmt: skip
    monkeypatch.setattr(m, "PROFILES", {**m.PROFILES, "quick": tiny})
    protocols = importlib.import_module("otgen.metrics.protocols")
    monkeypatch.setattr(protocols, "mixing_ratio",
                        functools.partial(protocols.mixing_ratio, ratios=(0, 1)))  # fmt: skip
    reproduce.run_experiment("eot-mixing", str(tmp_path / "seq"), "quick", 0, "cpu")

    trainer = importlib.import_module("otgen.engine.trainer")
    calls: list[int] = []
    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    reproduce.run_experiment("eot-mixing", str(tmp_path / "par"), "quick", 0, "cpu", jobs=2)
    assert calls == []  # the parent only reloaded what the workers trained

    def curves(folder: str) -> dict:
        runs = json.loads((tmp_path / folder / "eot_mixing.json").read_text())["runs"]
        return {(r["model"], r["seed"]): (r["curve"]["steps"], r["curve"]["fid"]) for r in runs}

    seq, par = curves("seq"), curves("par")
    assert len(seq) == 8 and seq == par


def _sleep_then_touch(path: str, seconds: float) -> None:
    time.sleep(seconds)
    Path(path).write_text("trained")


PARENT = """
import sys
from otgen.reproduce._jobs import TrainJob, run_jobs
from tests.reproduce.test_jobs import _sleep_then_touch

jobs = [TrainJob(str(i), _sleep_then_touch, {"path": f"{sys.argv[1]}/{i}.txt", "seconds": 60})
        for i in range(2)]
run_jobs(jobs, 2)
"""


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path):
    # a parent killed without cleanup (SIGKILL, the end of a session) leaves no orphan training
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], text=True,
                              cwd=Path(__file__).parents[2], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert parent.stdout.readline().startswith("training 2 runs")
    time.sleep(3)  # the workers are up (they import torch) and sleeping in their jobs
    workers = _children(parent.pid)
    assert len(workers) >= 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    assert not list(tmp_path.glob("*.txt"))


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")  # a zombie (exited, not yet reaped by init) is gone
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")
