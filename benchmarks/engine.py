"""Training throughput: the step against its arithmetic floor, and engine overhead.

Throughput (issue 14): for the 2D PacGAN networks (method ``pacgan``: G 2→400×4→2 BN+ReLU,
D 3× maxout(200, 5) on packs of 4, batch 100) and the 28×28 DCGAN (method ``dcgan``, batch 64)
the bare ``train_step`` time is set against a floor measured in the same run: every matrix
product the step performs (forward and backward, as dispatched: ``mm``/``addmm`` and the
convolutions as their im2col GEMMs) is recorded once and replayed as ``torch.mm`` of the same
shape, so the floor is what the machine's GEMM needs for exactly that arithmetic; the FLOPs
(``torch.utils.flop_counter``: forward 2·MACs, backward ≈ 2× forward) and the implied GEMM
rate are reported with it. Each thread count is timed in the same process, interleaved.

Overhead:
Both loops call the same method's ``train_step`` (``otgen.methods.gan``: DCGAN on 28x28
images, MLP GAN on 2D points) from the same initial weights on the same batches; the engine
adds its data sampler, metric meter, progress bar, JSONL log and (configurable) checkpoints
and EMA. The engine's per-step time is read from its own log (time between the first and
last log records), so start-up and the final checkpoint are excluded; the bare loop is timed
the same way. Runs alternate (bare then engine, engine then bare, ...); the median and the
minimum over repeats are reported (the minimum is the least disturbed by other load on the
machine, as timeit advises). Target: within 5%.

    python benchmarks/engine.py [--quick] [--device cpu|cuda] [--repeats R] [--throughput-only]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

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
# name: (method, data shape, method params, batch) for the throughput table
THROUGHPUT = {
    "pacgan-2d": ("pacgan", (2,), {}, 100),
    "dcgan-28x28": ("dcgan", (1, 28, 28), {}, 64),
}


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


class _Gemms(TorchDispatchMode):
    """Records the (M, K, N) of every GEMM an op sequence runs (convolutions as im2col)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        aten = torch.ops.aten
        if func in (aten.mm.default, aten.addmm.default):
            a, b = args[-2], args[-1]
            self.shapes.append((a.shape[0], a.shape[1], b.shape[1]))
        elif func is aten.convolution.default:
            self.shapes.append(_conv_gemm(args[0], args[1], out, args[6]))
        elif func is aten.convolution_backward.default:
            m, k, n = _conv_gemm(args[1], args[2], args[0], args[7])
            mask = args[10]
            if mask[0]:  # grad input: (M, N) @ (N, K)
                self.shapes.append((m, n, k))
            if mask[1]:  # grad weight: (K, M) @ (M, N)
                self.shapes.append((k, m, n))
        return out


def _conv_gemm(x, w, out, transposed: bool) -> tuple[int, int, int]:
    """im2col GEMM of a (groups = 1) convolution: same FLOPs as the convolution."""
    if transposed:  # w: (C_in, C_out, kh, kw); each input pixel scatters a C_out·k·k patch
        return x.shape[0] * x[0, 0].numel(), x.shape[1], w[0].numel()
    return out.shape[0] * out[0, 0].numel(), w[0].numel(), w.shape[0]


def _method(name: str, shape: tuple[int, ...], params: dict, device: torch.device):
    from otgen.engine.config import method_config, resolve_method

    config = config_from_dict({"method": name, "params": params, "device": str(device)})
    seed_everything(0)
    cls = resolve_method(name)
    return cls(method_config(config, cls), DataSpec(shape), device)


def _gemm_floor(shapes: list[tuple[int, int, int]], device: torch.device, reps: int) -> float:
    """Seconds for ``torch.mm`` of every recorded shape (min over ``reps`` per shape)."""
    total = 0.0
    for (m, k, n), count in Counter(shapes).items():
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        torch.mm(a, b)
        best = math.inf
        for _ in range(reps):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(4):
                torch.mm(a, b)
            _sync(device)
            best = min(best, (time.perf_counter() - t0) / 4)
        total += best * count
    return total


def _is_gemm(op: str) -> bool:
    return op.startswith("aten::") and ("mm" in op or "conv" in op)


def time_breakdown(method, batches: list[torch.Tensor]) -> dict:
    """Where a step's time goes, from ``torch.profiler`` over ``batches``: the self time of the
    GEMM/convolution kernels, of the other ATen kernels (element-wise, reductions, the
    optimizer's fused kernel), and the rest of the wall time, which no kernel accounts for:
    Python, the autograd engine's bookkeeping and operator dispatch. Shares of the profiled wall
    time (the profiler adds a little per-op cost, so the framework share is an upper bound)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for s, xb in enumerate(batches):
            method.train_step(xb, None, s)
        wall = time.perf_counter() - t0
    ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    gemm = sum(e.self_cpu_time_total for e in ops if _is_gemm(e.key)) / 1e6
    other = sorted(((e.self_cpu_time_total / 1e6, e.key) for e in ops if not _is_gemm(e.key)),
                   reverse=True)  # fmt: skip
    other_t = sum(t for t, _ in other)
    top = ", ".join(f"{k[6:]} {t / len(batches) * 1e3:.2f}" for t, k in other[:4])
    return {"gemm_share": gemm / wall, "other_kernel_share": other_t / wall,
            "framework_share": 1 - (gemm + other_t) / wall,
            "ops_per_step": round(sum(e.count for e in ops) / len(batches)),
            "top_other_kernels_ms": top}  # fmt: skip


def throughput_rows(
    device: torch.device, threads: list[int], steps: int, repeats: int
) -> list[dict]:
    """Bare step time vs the GEMM floor of the same step, per thread count (interleaved)."""
    rows = []
    for name, (method_name, shape, params, batch) in THROUGHPUT.items():
        method = _method(method_name, shape, params, device)
        x = _data(shape, 4096).x.to(device)
        gen = torch.Generator().manual_seed(1)
        batches = [x[torch.randint(0, len(x), (batch,), generator=gen)] for _ in range(steps)]
        for s in range(3):  # warm-up (allocator, first-call dispatch)
            method.train_step(batches[s], None, s)
        with FlopCounterMode(display=False) as fc, _Gemms() as gm:
            method.train_step(batches[0], None, 3)
        flops = fc.get_total_flops()
        gemm_flops = sum(2 * m * k * n for m, k, n in gm.shapes)
        step_t = {t: math.inf for t in threads}
        floor_t = {t: math.inf for t in threads}
        for _ in range(repeats):
            for t in threads:
                torch.set_num_threads(t)
                floor_t[t] = min(floor_t[t], _gemm_floor(gm.shapes, device, 3))
                _sync(device)
                t0 = time.perf_counter()
                for s, xb in enumerate(batches):
                    method.train_step(xb, None, s)
                _sync(device)
                step_t[t] = min(step_t[t], (time.perf_counter() - t0) / steps)
        torch.set_num_threads(threads[0])
        breakdown = time_breakdown(method, batches)
        for t in threads:
            rows.append(
                {
                    "case": name,
                    "method": method_name,
                    "batch": batch,
                    "threads": t,
                    "step_ms": step_t[t] * 1e3,
                    "floor_ms": floor_t[t] * 1e3,
                    "step_over_floor": step_t[t] / floor_t[t],
                    "gflop_per_step": flops / 1e9,
                    "gemm_gflop_per_step": gemm_flops / 1e9,
                    "gemm_gflops": gemm_flops / floor_t[t] / 1e9,
                    "gemms_per_step": len(gm.shapes),
                    **(breakdown if t == threads[0] else {}),
                }
            )
            print(rows[-1], file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay in the engine runs")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--throughput-only", action="store_true", help="skip the overhead table")
    p.add_argument(
        "--thread-counts", default="1,2", help="thread counts timed in the throughput table"
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    load = os.getloadavg()
    threads = [int(t) for t in args.thread_counts.split(",")]
    tp_steps = 10 if args.quick else 30
    tp_rows = throughput_rows(device, threads, tp_steps, 2 if args.quick else args.repeats)
    torch.set_num_threads(args.threads or threads[-1])
    rows = [] if args.throughput_only else overhead_rows(args, device)
    cmd = "python benchmarks/engine.py" + (" --quick" if args.quick else "")
    cmd += f" --device {args.device} --repeats {args.repeats}"
    cmd += f" --thread-counts {args.thread_counts}"
    if args.ema:
        cmd += f" --ema {args.ema}"
    if args.threads:
        cmd += f" --threads {args.threads}"
    if args.throughput_only:
        cmd += " --throughput-only"
    best = {}
    for r in tp_rows:
        if r["case"] not in best or r["step_over_floor"] < best[r["case"]]["step_over_floor"]:
            best[r["case"]] = r
    target = {"pacgan-2d": 1.5, "dcgan-28x28": 2.0}
    verdicts = "; ".join(
        f"{c}: {r['step_over_floor']:.2f}× the floor at {r['threads']} thread(s) "
        f"(target ≤ {target[c]}×: {'met' if r['step_over_floor'] <= target[c] else 'not met'})"
        for c, r in best.items()
    )
    verdicts += ". Where the time goes (torch.profiler, 1st thread count): " + "; ".join(
        f"{r['case']}: GEMM kernels {r['gemm_share']:.0%}, other kernels "
        f"{r['other_kernel_share']:.0%} (ms per step: {r['top_other_kernels_ms']}), framework "
        f"(Python, autograd, dispatch; {r['ops_per_step']} ATen calls per step) "
        f"{r['framework_share']:.0%}"
        for r in tp_rows
        if "gemm_share" in r
    )
    write_report(
        args.out,
        "engine",
        title="Training throughput (step vs GEMM floor) and engine overhead",
        rows=tp_rows,
        command=cmd,
        data={
            "device": str(device),
            "load_average_1_5_15": load,
            "load_average_end": os.getloadavg(),
            "throughput_steps": tp_steps,
            "overhead": rows,
            "ema": args.ema,
            "log_every": LOG_EVERY,
        },
        notes=(
            f"Load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min), "
            f"at end {os.getloadavg()[0]:.2f}: the machine (2 cores) is shared, so absolute "
            "times are noisy; step_over_floor (both measured in the same process, interleaved, "
            "minimum over repeats) is the robust figure. floor_ms = time of torch.mm for every "
            "GEMM shape the step dispatches (forward + backward; convolutions as im2col GEMMs); "
            "gflop_per_step from torch.utils.flop_counter. "
            + verdicts
            + ".\n\n"
            + _overhead_markdown(rows)
        ),
    )
    for row in tp_rows + rows:
        print(row)
    return 0


def _overhead_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(Engine-overhead table not re-measured in this run: --throughput-only.)"
    cols = list(rows[0])
    lines = [
        "Engine overhead vs a bare loop (same batches; per-step wall time, median and minimum "
        f"over repeats in alternating order; JSONL log every {LOG_EVERY} steps):",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])
                                       for c in cols) + " |")  # fmt: skip
    return "\n".join(lines)


def overhead_rows(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """The engine's per-step time vs a bare loop over the same method and batches."""
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
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
