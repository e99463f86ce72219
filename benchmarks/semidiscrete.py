"""Semi-discrete OT speed: averaged Adam vs the papers' reference configuration.

    python benchmarks/semidiscrete.py            # full (long on a CPU: the reference run)
    python benchmarks/semidiscrete.py --quick    # n = 500, d = 8, small evaluation

Case A (the target): n = 2,000 targets y ~ N(0, I_16), uniform source on [-1/2, 1/2]^16.
Success = L1 marginal error Σ|w_i − 1/n| ≤ 0.03, measured by an *independent* i.i.d. Monte
Carlo estimate with 20 million samples (its own noise floor ≈ sqrt(2n/(πN)) ≈ 0.008 is
included in the reported value, so it is conservative). The reference is the papers' setting
(reference notes): Adam lr 5e-2 from h = 0, 20,000 samples per step doubling after 30
non-improving steps, stop at ‖∇E‖₂ < 2e-3 (or 20,000 iterations / the time cap). Speed-up =
reference wall time / averaged wall time (solver time only, evaluation excluded).

Cases B, C: n = 10,000 / d = 32 and n = 60,000 / d = 64, averaged solver only, time-capped,
evaluated with fewer samples when needed (the floor is reported next to the value).
Throughput: the cell assignment (matmul + argmax) in FLOP/s (2·N·n·d per pass) as a fraction
of this machine's measured dense matmul FLOP/s.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from otgen.ot import semidiscrete as sd
from otgen.utils.device import resolve_device
from otgen.utils.report import write_report

TOL = 0.03
# (n, d, samples of the independent check). 20M samples at 10,000 x 32 are ~13 TFLOP of
# argmax (a quarter of an hour on one core); at 60,000 x 64 they would be ~150 TFLOP, so that
# check uses 500k samples and its noise floor (0.28) is far above the target: it can only catch
# a gross failure, and the solver's own estimate is the informative number there.
LARGE = [(10_000, 32, 20_000_000), (60_000, 64, 500_000)]


def matmul_flops(device: torch.device, size: int = 2048, seconds: float = 2.0) -> float:
    a = torch.randn(size, size, device=device)
    a @ a
    _sync(device)
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ a
        k += 1
    _sync(device)
    return 2 * size**3 * k / (time.perf_counter() - t0)


def assignment_flops(n: int, d: int, n_samples: int, device: torch.device) -> float:
    y = torch.randn(n, d, device=device)
    h = torch.zeros(n, dtype=torch.float64, device=device)
    sampler = sd.SourceSampler(d, seed=0)
    sd.cell_statistics(y, h, sampler, min(n_samples, 65536))  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    sd.cell_statistics(y, h, sampler, n_samples)
    _sync(device)
    return 2 * n_samples * n * d / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def targets(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def evaluate(res: sd.SemiDiscreteResult, n_eval: int) -> tuple[float, float]:
    """Independent i.i.d. L1 estimate and its noise floor sqrt(2n/(πN))."""
    err = res.l1_error(n_eval, seed=987654, qmc=False)
    return err, math.sqrt(2 * res.n / (math.pi * n_eval))


def row(case: str, label: str, res: sd.SemiDiscreteResult, n_eval: int) -> dict:
    t0 = time.perf_counter()
    err, floor = evaluate(res, n_eval)
    return {
        "case": case,
        "solver": label,
        "time_s": round(res.time_s, 2),
        "iterations": res.n_iter,
        "samples_drawn": res.n_samples,
        "estimated_L1": round(res.marginal_error, 4),
        "independent_L1": round(err, 4),
        "eval_samples": n_eval,
        "eval_floor": round(floor, 4),
        "reached_0.03": err <= TOL,
        "converged": res.converged,
        "eval_time_s": round(time.perf_counter() - t0, 1),
    }


def large_row(n: int, d: int, time_cap: float, n_eval: int, dev: torch.device) -> dict:
    """Averaged Adam on n targets in d dimensions, time-capped, checked with n_eval samples."""
    res = sd.solve(
        targets(n, d), method="averaged", tol=TOL, seed=1, device=dev, time_limit=time_cap
    )
    out = row(f"n={n}, d={d}", "averaged Adam (ours)", res, n_eval)
    print(out, flush=True)
    return out


def large_cases(args: argparse.Namespace, dev: torch.device) -> int:
    rows = [large_row(n, d, args.large_time_cap, n_eval, dev) for n, d, n_eval in LARGE]
    notes = (
        f"Averaged Adam (ours) with tol = {TOL} on the estimated marginal error and a "
        f"{args.large_time_cap:.0f} s time cap per case. independent_L1 is an i.i.d. Monte "
        "Carlo estimate with eval_samples samples; its noise floor eval_floor ≈ "
        "sqrt(2n / (π N)) is included in it, so when the floor is close to the value the "
        "check cannot tell whether the target was reached. The 60,000 x 64 check uses 500k "
        "samples (20M would cost ~150 TFLOP of argmax, hours on this CPU): its floor is far "
        "above the target, so there estimated_L1 (the solver's own quasi-Monte Carlo "
        "estimate) is the informative number."
    )
    command = (
        f"python benchmarks/semidiscrete.py --large-only --large-time-cap {args.large_time_cap:g}"
    )
    write_report(
        args.out, "semidiscrete_large", title="Semi-discrete OT: large cases (ours only)",
        rows=rows, notes=notes, command=command,
    )  # fmt: skip
    return 0


# (n, d, samples timed): the assignment throughput table; the last is one averaged-Adam step at
# n = 60,000, d = 64 (its default batch: 65,536 samples)
THROUGHPUT = [
    (2000, 16, 262_144),
    (10_000, 32, 131_072),
    (10_000, 64, 65_536),
    (60_000, 64, 65_536),
]


def throughput(args: argparse.Namespace, dev: torch.device) -> int:
    """Cell assignment GFLOP/s vs the dense GEMM rate, measured in the same run."""
    import json
    import os

    load = os.getloadavg()
    before = {}
    if args.before:
        for r in json.loads(Path(args.before).read_text())["rows"]:
            before[r["case"]] = r
    rows = []
    for n, d, m in THROUGHPUT:
        peak = matmul_flops(dev, seconds=1.0)
        t0 = time.perf_counter()
        rate = assignment_flops(n, d, m, dev)
        case = f"n={n}, d={d}"
        r = {"case": case, "samples": m, "assign_gflops": rate / 1e9, "gemm_gflops": peak / 1e9,
             "fraction": rate / peak, "pass_s": 2 * m * n * d / rate}  # fmt: skip
        if case in before:
            r["fraction_before"] = before[case]["fraction"]
            r["pass_s_before"] = before[case]["pass_s"]
        rows.append(r)
        print(r, f"({time.perf_counter() - t0:.1f} s)", flush=True)
    write_report(
        args.out, "semidiscrete_throughput",
        title="Semi-discrete OT: cell assignment throughput vs the dense GEMM rate",
        rows=rows, data={"load_average_1_5_15": load, "load_average_end": os.getloadavg(),
                         "before": args.before},
        command="python benchmarks/semidiscrete.py --throughput-only"
        + (f" --before {args.before}" if args.before else ""),
        notes=(
            "assign_gflops = 2·N·n·d / time of one cell_statistics pass over N fresh Sobol "
            "samples (sampling, float32 scores, argmax and bincount included); gemm_gflops = "
            "2048² fp32 torch.mm measured just before each case; fraction = their ratio (the "
            "robust figure on this shared machine: load average "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end). pass_s at n=60000, d=64 is one averaged-Adam "
            "step (65,536 samples). *_before: the same script run against the code before this "
            "change (--before: that run's JSON; a separate process, minutes earlier)."
        ),
    )  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--ref-time-cap", type=float, default=3600.0)
    p.add_argument("--large-time-cap", type=float, default=600.0)
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--large-only", action="store_true", help="cases B and C only")
    p.add_argument("--throughput-only", action="store_true", help="assignment GFLOP/s only")
    p.add_argument("--before", help="throughput JSON of a baseline run, shown alongside")
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    if args.throughput_only:
        return throughput(args, dev)
    if args.large_only:
        return large_cases(args, dev)
    if args.quick:
        n, d, n_eval, big = 500, 8, 2_000_000, []
    else:
        n, d, n_eval = 2000, 16, 20_000_000
        big = [] if args.skip_large else LARGE
    rows = []
    y = targets(n, d)
    case = f"n={n}, d={d}"
    ours = sd.solve(y, method="averaged", tol=TOL, seed=1, device=dev)
    rows.append(row(case, "averaged Adam (ours)", ours, n_eval))
    print(rows[-1], flush=True)
    ref = sd.solve(
        y, method="adam", lr=5e-2, n_samples=20_000, patience=30, grad_tol=2e-3, tol=None,
        h0="zeros", max_iter=20_000, max_samples=20_000 * 2**10, seed=1, device=dev,
        time_limit=args.ref_time_cap,
    )  # fmt: skip
    rows.append(row(case, "papers' reference Adam", ref, n_eval))
    print(rows[-1], flush=True)
    # The papers' stop (‖∇E‖₂ < 2e-3) can fire before the marginal target is reached; the
    # same optimiser run until it reaches the target gives the time-to-target comparison.
    ref_to_tol = sd.solve(
        y, method="adam", lr=5e-2, n_samples=20_000, patience=30, grad_tol=None, tol=TOL,
        h0="zeros", max_iter=20_000, max_samples=20_000 * 2**10, seed=1, device=dev,
        time_limit=args.ref_time_cap,
    )  # fmt: skip
    rows.append(row(case, f"papers' Adam, run to L1 ≤ {TOL}", ref_to_tol, n_eval))
    print(rows[-1], flush=True)
    speedup = ref_to_tol.time_s / ours.time_s
    rows += [large_row(nb, db, args.large_time_cap, ne, dev) for nb, db, ne in big]
    peak = matmul_flops(dev)
    assign = assignment_flops(n, d, 1_000_000 if not args.quick else 200_000, dev)
    ref_ok = rows[1]["reached_0.03"]
    notes = (
        f"Speed-up to L1 ≤ {TOL} (the papers' Adam run until it reaches the target, over ours; "
        f"same case, solver time only): **{speedup:.1f}x**"
        + (" (a lower bound: it hit its time cap)" if not ref_to_tol.converged else "")
        + f"; ours reached L1 ≤ {TOL}: {rows[0]['reached_0.03']}, the papers' Adam run to the "
        f"target: {rows[2]['reached_0.03']} (independent check). With its own stop "
        f"(‖∇E‖₂ < 2e-3) the papers' configuration ran {ref.time_s:.1f}s and "
        + (
            "reached the target."
            if ref_ok
            else f"stopped at independent L1 {rows[1]['independent_L1']}, short of the target."
        )
        + f"\n\nCell assignment throughput (n={n}, d={d}): {assign / 1e9:.1f} GFLOP/s = "
        f"{100 * assign / peak:.1f}% of measured dense matmul "
        f"({peak / 1e9:.1f} GFLOP/s, 2048² fp32). "
        "The argmax over the (samples × targets) block is memory-bound and costs as much as the "
        "product at d = 16, so the fraction grows with d.\n\n"
        "independent_L1 is an i.i.d. Monte Carlo estimate including its noise floor (eval_floor)."
    )
    command = "python benchmarks/semidiscrete.py" + (" --quick" if args.quick else "")
    write_report(
        args.out, "semidiscrete", title="Semi-discrete OT: averaged Adam vs the papers' Adam",
        rows=rows, data={"speedup": speedup, "matmul_flops": peak, "assign_flops": assign,
                         "assign_fraction": assign / peak},
        notes=notes, command=command,
    )  # fmt: skip
    print(f"speed-up {speedup:.1f}x; wrote {args.out}/semidiscrete.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
