"""Train an experiment's independent runs side by side: ``otgen reproduce NAME --jobs N``.

Why: an image experiment is many independent trainings (methods × seeds × sweep points), and
each trains fastest on one thread (small nets: see :func:`otgen.reproduce.one_thread`). A machine
with N cores therefore finishes an experiment up to N times sooner by training N runs at once,
one per process, than by giving one run N threads.

How: an experiment that supports it defines ``train_jobs(out_dir, profile, seed, dev)``, the
list of :class:`TrainJob` its ``run`` would train: module-level functions and keyword arguments
(both picklable, since they travel to a spawned process). :func:`run_jobs` trains them in N
worker processes, longest first as listed. The experiment then runs as usual and finds every
run finished in its folder (:func:`otgen.reproduce._converge.train_until_flat` returns a
finished run without training), so its report is the one a sequential run writes: each run's
numbers depend only on its own key (config, seed, data, probe, code), never on which process
trained it. A run that cannot be resumed (a probe without a fingerprint) is left out of the
jobs and trained by ``run``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otgen.errors import OTGenError


@dataclass(frozen=True)
class TrainJob:
    """One independent training: ``fn(**kwargs)`` trains (or finds finished) one run."""

    label: str
    fn: Callable[..., object]
    kwargs: dict = field(default_factory=dict)


def _start_worker(parent: int) -> None:
    """One intra-op thread per worker (the point of the pool), line-buffered output so the
    workers' progress lines reach a log file as they happen, and a watchdog: a parent killed
    without cleanup (SIGTERM, SIGKILL, the end of a session) must not leave orphans training
    into run folders that a rerun then trains too."""
    import torch

    torch.set_num_threads(1)
    if hasattr(sys.stdout, "reconfigure"):  # a replaced stdout (a capture) may lack it
        sys.stdout.reconfigure(line_buffering=True)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Exit at once when ``parent`` is gone (the worker is re-parented). Checkpoints are
    written atomically, so a run cut here resumes from its last one."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _train(job: TrainJob) -> tuple[str, str | None]:
    """(label, None) or (label, the error in one line): the trained model stays in the worker
    (its run folder holds it), and an error travels back as text, whatever its type."""
    try:
        job.fn(**job.kwargs)
    except Exception as err:  # any error: reported by the parent with the run's name
        return job.label, f"{type(err).__name__}: {err}"
    return job.label, None


def run_jobs(jobs: list[TrainJob], workers: int, progress: Callable[[str], None] = print) -> None:
    """Train ``jobs`` in ``workers`` processes. The first failure stops the pool (its workers
    are terminated: checkpoints are written atomically, so every run keeps what it saved and a
    rerun resumes it) and raises :class:`OTGenError` naming the run."""
    if workers < 1:
        raise OTGenError(f"--jobs must be >= 1 (got {workers})")
    if not jobs:
        return
    # spawn, not fork: a forked child of a process that has started torch's thread pools (or
    # CUDA) can deadlock; a spawned one imports everything afresh
    context = multiprocessing.get_context("spawn")
    n = min(workers, len(jobs))
    progress(f"training {len(jobs)} runs in {n} processes")
    # leaving the block terminates the workers (after an error or an interrupt too)
    with context.Pool(n, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
        # chunksize 1: runs are dispatched in the listed order (longest first)
        results = pool.imap_unordered(_train, jobs, chunksize=1)
        for finished, (label, error) in enumerate(results, 1):
            if error is not None:
                raise OTGenError(f"run {label} failed: {error}")
            progress(f"[{finished}/{len(jobs)}] {label}: trained")
        pool.close()  # all done: let the workers exit on their own (no terminate)
        pool.join()
