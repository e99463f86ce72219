"""Training one model through the engine for a reproduction (shared by several experiments)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def train_fresh(
    method: str,
    params: dict,
    data,
    *,
    steps: int,
    batch: int,
    seed: int,
    device,
    run_dir: Path,
    log_points: int = 100,
    checkpoint_every: int = 0,
    keep_checkpoints: int | None = None,
) -> tuple[list[dict], float]:
    """Train ``method`` into a fresh ``run_dir`` (an earlier run there is replaced); return the
    metric records and the wall seconds of training. About ``log_points`` log records."""
    from otgen.engine.logging import read_metrics
    from otgen.engine.trainer import train

    if run_dir.exists():  # a re-run replaces its own earlier run folder
        shutil.rmtree(run_dir)
    config = {
        "method": method,
        "params": params,
        "steps": steps,
        "batch_size": batch,
        "seed": seed,
        "device": str(device),
        "out": str(run_dir),
        "log_every": max(1, steps // log_points),
        "checkpoint_every": checkpoint_every,
        "sample_every": 0,
    }
    if keep_checkpoints is not None:
        config["keep_checkpoints"] = keep_checkpoints
    start = time.perf_counter()
    train(config, data)
    return read_metrics(run_dir), time.perf_counter() - start
