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
import sys
import time
from pathlib import Path

import torch

from otgen.ot import semidiscrete as sd
from otgen.utils.device import resolve_device
from otgen.utils.report import write_report

TOL = 0.03
# (n, d, samples of the independent check, solver time cap in s). The check is
# SemiDiscreteResult.marginal_check: 8 i.i.d. batches whose pairwise cross-products estimate
# Σ(w − b)² without bias, bounding the L1 error by Cauchy–Schwarz. Its resolution grows like
# 1/N, so 2M samples certify 0.03 at n = 60,000 (~15 TFLOP), where the plain i.i.d. L1 would
# need ~4·10⁷ samples to get its own noise floor under 0.03. Caps: issue 14's targets.
LARGE = [(10_000, 32, 8_000_000, 400.0), (60_000, 64, 2_000_000, 3600.0)]
# The solver's own target in the large cases. Its estimate tracks the true L1 closely (at
# n = 10,000, d = 32 it stopped at 0.0287 where the plain i.i.d. check, deconvolved from its
# floor, reads ~0.027), but the certified bound is sqrt(π/2) ≈ 1.25x looser than the L1 of
# errors spread like a Gaussian over the cells; 0.8 x 0.03 leaves room for that.
LARGE_SOLVER_TOL = 0.024


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


def row(case: str, label: str, res: sd.SemiDiscreteResult, n_eval: int) -> dict:
    t0 = time.perf_counter()
    check = res.marginal_check(n_eval, seed=987654)
    return {
        "case": case,
        "solver": label,
        "time_s": round(res.time_s, 2),
        "iterations": res.n_iter,
        "samples_drawn": res.n_samples,
        "estimated_L1": round(res.marginal_error, 4),
        "independent_L1": round(check.l1_iid, 4),
        "eval_samples": check.n_samples,
        "eval_floor": round(check.l1_iid_floor, 4),
        "L1_bound": round(check.l1_bound, 4),
        "reached_0.03": min(check.l1_iid, check.l1_bound) <= TOL,
        "converged": res.converged,
        "eval_time_s": round(time.perf_counter() - t0, 1),
    }


def large_row(n: int, d: int, time_cap: float, n_eval: int, dev: torch.device) -> tuple:
    """Averaged Adam on n targets in d dimensions, time-capped, checked with n_eval samples."""
    res = sd.solve(
        targets(n, d), method="averaged", tol=LARGE_SOLVER_TOL, seed=1, device=dev,
        time_limit=time_cap,
    )  # fmt: skip
    out = row(f"n={n}, d={d}", "averaged Adam (ours)", res, n_eval)
    print(out, flush=True)
    return out, res


def plot_history(results: list[tuple[dict, sd.SemiDiscreteResult]], path: Path) -> Path:
    """The solver's own L1 estimate at each window end against (approximate) wall time, with
    the independent certified bound at the end."""
    from otgen.viz.curves import Line, Panel, plot_curves

    panels = []
    for r, res in results:
        per_it = res.time_s / max(res.n_iter, 1)  # windows end at iterations, not clock times
        steps = [it * per_it for it, _, _ in res.history]
        lines = {"solver's estimate": Line(steps, [e for _, e, _ in res.history]),
                 "certified bound (end)": Line([res.time_s], [r["L1_bound"]])}  # fmt: skip
        panels.append(Panel(r["case"], lines, floor=TOL, floor_label=f"target {TOL}",
                            ylabel="L1 marginal error", xlabel="solver time (s)"))  # fmt: skip
    return plot_curves(panels, path)


def large_cases(args: argparse.Namespace, dev: torch.device) -> int:
    cases = [c for c in LARGE if not args.cases or f"{c[0]}x{c[1]}" in args.cases.split(",")]
    if not cases:
        raise SystemExit(
            f"--cases: none of {args.cases!r} is in {[f'{n}x{d}' for n, d, *_ in LARGE]}"
        )
    cases = [(n, d, n_eval, args.large_time_cap or cap) for n, d, n_eval, cap in cases]
    results = [large_row(n, d, cap, n_eval, dev) for n, d, n_eval, cap in cases]
    rows = [r for r, _ in results]
    caps = ", ".join(f"{r['case']}: {c[3]:.0f} s" for r, c in zip(rows, cases, strict=True))
    notes = (
        f"Averaged Adam (ours) with tol = {LARGE_SOLVER_TOL} on its estimated marginal error "
        f"(target {TOL}; the margin is for the bound's looseness), time caps "
        f"{caps}; {torch.get_num_threads()} thread(s). Independent check "
        "(`SemiDiscreteResult.marginal_check`, i.i.d. samples from another seed, eval_samples in "
        "8 batches): independent_L1 is the plain estimate Σ|ŵ − b|, which reads at least its "
        "noise floor eval_floor ≈ sqrt(2n / (π N)) even when the error is zero; L1_bound = "
        "sqrt(n · (unbiased Σ(w − b)² + 2 s.e.)) is a one-sided ~97.5% upper bound on the true "
        "L1 error (Cauchy–Schwarz), whose resolution falls like 1/N. reached_0.03: either is "
        "≤ 0.03. The solver's own estimate is that of its running average (the curve in the "
        "figure); only the independent check certifies a result."
    )
    command = "python benchmarks/semidiscrete.py --large-only" + (
        f" --cases {args.cases}" if args.cases else "") + (
        f" --large-time-cap {args.large_time_cap:g}" if args.large_time_cap else "")  # fmt: skip
    name = "semidiscrete_large" + (f"_{args.cases.replace(',', '_')}" if args.cases else "")
    fig = plot_history(results, Path(args.out) / f"{name}.png")
    write_report(
        args.out, name, title="Semi-discrete OT: large cases (ours only)",
        rows=rows, notes=notes, command=command, figures=[fig],
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
    p.add_argument("--large-time-cap", type=float, default=None,
                   help="override every large case's cap (s)")  # fmt: skip
    p.add_argument("--cases", help="large cases to run, e.g. 10000x32 (default: all)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--large-only", action="store_true", help="cases B and C only")
    p.add_argument("--throughput-only", action="store_true", help="assignment GFLOP/s only")
    p.add_argument("--before", help="throughput JSON of a baseline run, shown alongside")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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
    big = [(nb, db, ne, args.large_time_cap or cap) for nb, db, ne, cap in big]
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
    rows += [large_row(nb, db, cap, ne, dev)[0] for nb, db, ne, cap in big]
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
        "independent_L1 is an i.i.d. Monte Carlo estimate including its noise floor (eval_floor); "
        "L1_bound the certified upper bound of `SemiDiscreteResult.marginal_check`."
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
