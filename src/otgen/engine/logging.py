"""Run logs: ``metrics.jsonl`` (one JSON object per logged step), optional TensorBoard.

Each record is ``{"step": s, "phase": name, "time": seconds, <metric>: value, ...}`` where a
metric is the mean of the method's ``train_step`` logs over the steps since the previous
record. On resume the file is cut back to the checkpoint's step, so a resumed run's log reads
like an uninterrupted one. TensorBoard is used only when asked for and installed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from otgen.errors import NonFiniteError
from otgen.utils.io import write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricMeter:
    """Running sums of a method's logs between two records; checks they stay finite.

    Python floats are checked at once; tensor values (a method that avoids ``.item()`` on a
    GPU) are summed on the device and checked when the meter is read, which keeps the training
    loop free of per-step host synchronisation.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, logs: dict[str, Any], step: int) -> None:
        for k, v in logs.items():
            if isinstance(v, torch.Tensor):
                v = v.detach().float()
            elif not math.isfinite(v):
                raise NonFiniteError(f"{k} became {v} at step {step}; stopping the run")
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def means(self, step: int) -> dict[str, float]:
        """Mean of each metric since the last call, then reset; raises on NaN/Inf."""
        out = {}
        for k, v in self.sums.items():
            value = float(v) / max(self.count, 1)
            if not math.isfinite(value):
                raise NonFiniteError(f"{k} became {value} by step {step}; stopping the run")
            out[k] = value
        self.sums, self.count = {}, 0
        return out

    def check(self, step: int) -> None:
        """Raise if any pending tensor sum is NaN/Inf (before a checkpoint is written)."""
        for k, v in self.sums.items():
            if isinstance(v, torch.Tensor) and not bool(torch.isfinite(v)):
                raise NonFiniteError(f"{k} became {float(v)} by step {step}; stopping the run")


class RunLogger:
    """Appends metric records to ``<run>/metrics.jsonl`` (and TensorBoard if requested)."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR))
            except ImportError:  # optional: never required
                self.tb = None

    def truncate(self, step: int) -> None:
        """Keep only complete records with ``step <= step`` (after a resume)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] <= step:
                kept.append(line)
        write_text(self.path, "".join(f"{line}\n" for line in kept))

    def log(self, step: int, phase: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "phase": phase, "time": round(time.perf_counter() - self.t0, 3)}
        rec.update(values)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
