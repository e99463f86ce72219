"""``otgen reproduce --jobs``: wall time of R independent trainings on 2 cores, three ways.

    python benchmarks/jobs.py                 # 2 DCGAN runs of 400 steps (width 16, batch 64)
    python benchmarks/jobs.py --steps 20      # smoke run

Variants, each training the same R runs through the engine (Fashion-MNIST, the cpu profile's
image nets):

- ``sequential, 1 thread``: one after another in this process (what ``--jobs 1`` does);
- ``sequential, 2 threads``: one after another, each with 2 intra-op threads (the other way
  to use a second core);
- ``--jobs 2``: :func:`otgen.reproduce._jobs.run_jobs`, two worker processes of one thread
  (process start and imports included).

Run it on a quiet machine (pause long runs): the numbers are wall times.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from otgen.reproduce._jobs import TrainJob, run_jobs
from otgen.utils.report import write_report

OUT = Path(__file__).resolve().parent / "results" / "jobs"


def train_run(seed: int, steps: int, out: str) -> None:
    """One DCGAN run of ``steps`` engine steps into ``out`` (a job: module level, picklable)."""
    from otgen.data import load
    from otgen.engine.trainer import train

    data = load("fashion-mnist", n=5000, seed=seed)
    config = {"method": "dcgan", "params": {"width": 16}, "batch_size": 64, "seed": seed,
              "device": "cpu", "out": out, "steps": steps, "sample_every": 0,
              "log_every": max(1, steps // 4), "checkpoint_every": 0}  # fmt: skip
    train(config, data)


def _sequential(jobs: list[TrainJob], threads: int) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        for job in jobs:
            job.fn(**job.kwargs)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def _parallel(jobs: list[TrainJob], workers: int) -> float:
    start = time.perf_counter()
    run_jobs(jobs, workers, progress=lambda _: None)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="otgen-jobs-"))

    def jobs(tag: str) -> list[TrainJob]:
        return [TrainJob(f"run {i}", train_run, {"seed": i, "steps": args.steps,
                                                  "out": str(root / tag / f"r{i}")})
                for i in range(args.runs)]  # fmt: skip

    try:
        train_run(0, min(args.steps, 20), str(root / "warm"))  # data files and caches warm
        times = {
            "sequential, 1 thread": _sequential(jobs("seq1"), 1),
            "sequential, 2 threads": _sequential(jobs("seq2"), 2),
            "--jobs 2": _parallel(jobs("par"), 2),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = times["sequential, 1 thread"]
    rows = [{"variant": k, "wall_s": round(v, 1), "speed-up vs 1 thread": round(base / v, 2),
             "steps/s (all runs)": round(args.runs * args.steps / v, 1)}
            for k, v in times.items()]  # fmt: skip
    write_report(
        args.out, "jobs", title="--jobs: R independent trainings on this machine's cores",
        rows=rows, data={"runs": args.runs, "steps": args.steps, "cpus": torch.get_num_threads()},
        notes=f"{args.runs} DCGAN runs (width 16, batch 64, Fashion-MNIST 5,000 images) of "
        f"{args.steps} engine steps each, trained three ways (module docstring). `--jobs 2` "
        "includes spawning the workers and their imports.",
        command="python " + " ".join(sys.argv),
    )  # fmt: skip
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
