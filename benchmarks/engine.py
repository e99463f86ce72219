"""Engine overhead: a training step through ``otgen.engine.train`` vs a bare PyTorch loop.

Both loops call the same method's ``train_step`` (``otgen.methods.gan``: DCGAN on 28x28
images, MLP GAN on 2D points) from the same initial weights on the same batches; the engine
adds its data sampler, metric meter, progress bar, JSONL log and (configurable) checkpoints
and EMA. The engine's per-step time is read from its own log (time between the first and
last log records), so start-up and the final checkpoint are excluded; the bare loop is timed
the same way. Runs alternate (bare then engine, engine then bare, ...); the median and the
minimum over repeats are reported (the minimum is the least disturbed by other load on the
machine, as timeit advises). Target: within 5%.

    python benchmarks/engine.py [--quick] [--device cpu|cuda] [--repeats R]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from otgen.data.spec import DataSpec
from otgen.engine import InMemoryData, train
from otgen.engine.config import config_from_dict
from otgen.engine.data import BatchSampler
from otgen.engine.distributed import DistInfo
from otgen.engine.logging import read_metrics
from otgen.utils.device import resolve_device
from otgen.utils.report import write_report
from otgen.utils.seeding import seed_everything

CASES = {
    # name: (data shape, method params, batch size, steps, quick steps)
    "dcgan-28x28": ((1, 28, 28), {"arch": "dcgan", "width": 16}, 64, 120, 30),
    "mlp-2d": ((2,), {"arch": "mlp"}, 256, 600, 120),
}
LOG_EVERY = 10


def _data(shape: tuple[int, ...], n: int) -> InMemoryData:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n, *shape), generator=g) * 2 - 1
    return InMemoryData(x, None, DataSpec(shape), "synthetic")


def _config(params: dict, batch: int, steps: int, device: str, out: Path, ema: float) -> dict:
    return {
        "method": "gan",
        "params": params,
        "steps": steps,
        "batch_size": batch,
        "device": device,
        "out": str(out),
        "log_every": LOG_EVERY,
        "checkpoint_every": 0,  # only the final one (outside the timed window)
        "sample_every": 0,
        "n_samples": 16,
        "ema": {"decay": ema},
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_step_time(cfg: dict, data: InMemoryData, device: torch.device) -> float:
    """Seconds per step of a plain loop over the same method, batches and steps."""
    from otgen.engine.config import method_config, resolve_method

    config = config_from_dict(cfg)
    seed_everything(config.seed)
    cls = resolve_method(config.method)
    method = cls(method_config(config, cls), data.spec, device)
    x = data.x.to(device)
    # the engine's batch order, so both loops do exactly the same arithmetic
    order = BatchSampler(len(x), config.batch_size, config.seed, DistInfo())
    times = []
    for step in range(config.steps):
        logs = method.train_step(x[order.indices(step).to(device)], None, step)
        _ = {k: float(v) for k, v in logs.items()}  # a loop that reports its losses
        if (step + 1) % LOG_EVERY == 0:
            _sync(device)
            times.append(time.perf_counter())
    return (times[-1] - times[0]) / (LOG_EVERY * (len(times) - 1))


def engine_step_time(cfg: dict, data: InMemoryData) -> float:
    run = train(cfg, data)
    recs = read_metrics(run)
    return (recs[-1]["time"] - recs[0]["time"]) / (recs[-1]["step"] - recs[0]["step"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay in the engine runs")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="otgen-bench-"))
    try:
        for name, (shape, params, batch, steps, quick_steps) in CASES.items():
            steps = quick_steps if args.quick else steps
            data = _data(shape, 4096)
            bare, eng = [], []
            for r in range(args.repeats):
                cfg = _config(params, batch, steps, str(device), tmp / f"{name}-{r}", args.ema)
                # alternate the order so neither loop always runs on a warmer process
                if r % 2 == 0:
                    bare.append(bare_step_time(cfg, data, device))
                    eng.append(engine_step_time(cfg, data))
                else:
                    eng.append(engine_step_time(cfg, data))
                    bare.append(bare_step_time(cfg, data, device))
                print(
                    f"{name} repeat {r}: bare {bare[-1] * 1e3:.2f} ms, "
                    f"engine {eng[-1] * 1e3:.2f} ms",
                    file=sys.stderr,
                )
            b, e = statistics.median(bare), statistics.median(eng)
            rows.append(
                {
                    "case": name,
                    "batch": batch,
                    "steps": steps,
                    "repeats": args.repeats,
                    "bare_ms_median": b * 1e3,
                    "engine_ms_median": e * 1e3,
                    "overhead_pct_median": (e / b - 1) * 100,
                    "bare_ms_min": min(bare) * 1e3,
                    "engine_ms_min": min(eng) * 1e3,
                    "overhead_pct_min": (min(eng) / min(bare) - 1) * 100,
                    "within_5pct_min": bool(min(eng) / min(bare) - 1 <= 0.05),
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cmd = "python benchmarks/engine.py" + (" --quick" if args.quick else "")
    cmd += f" --device {args.device} --repeats {args.repeats}"
    if args.ema:
        cmd += f" --ema {args.ema}"
    if args.threads:
        cmd += f" --threads {args.threads}"
    write_report(
        args.out,
        "engine",
        title="Training engine overhead vs a bare PyTorch loop",
        rows=rows,
        command=cmd,
        data={
            "device": str(device),
            "ema": args.ema,
            "log_every": LOG_EVERY,
            "threads": torch.get_num_threads(),
        },
        notes=(
            "Per-step wall time, median and minimum over repeats in alternating order; the "
            "engine adds its seeded "
            "sampler, metric meter, progress bar and JSONL log every "
            f"{LOG_EVERY} steps (checkpoints only at the end, outside the timed window). "
            "Methods: otgen.methods.gan (non-saturating loss; DCGAN with 16 base channels). "
            "Numbers taken on a shared, "
            "contended machine are noisy; re-run the command on a quiet one."
        ),
    )
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
