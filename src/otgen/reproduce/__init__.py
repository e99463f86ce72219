"""Paper reproductions: the papers' tables and figures, listed in :data:`EXPERIMENTS`.

Each entry names ``(module, function, one-line description)``; the function
``run(out: str, quick: bool, seed: int, device: str) -> dict`` (or, marked :func:`profiled`,
``run(out, profile: str, seed, device)`` with profile quick / cpu / paper) writes JSON + Markdown
(``otgen.utils.report.write_report``) and PNG figures into ``out`` and returns a short summary
dict printed by the CLI. Modules are imported only when their experiment runs. Side studies
that are not paper results live in ``benchmarks/studies/``.

Profiles (``otgen reproduce NAME --profile quick|cpu|paper``; ``--quick`` = quick): each 2D
experiment defines its budget per profile and records the fraction of the paper's budget in its
report. ``otgen reproduce all --profile P [--device D]`` runs :data:`ALL_ORDER`; finished
experiments are skipped on a rerun (``<out>/<name>/runs/done-P.json``) and the stacked trainers
resume from their checkpoints (``<out>/<name>/runs/P/``, git-ignored).

Time of ``all --profile paper`` on one H100 — an *estimate*, not a measurement (no GPU was
available): one training step was timed on this CPU, its matmul FLOPs and operator count taken
from the profiler (:func:`gpu_time_estimate`), and scaled to an H100 at 67 TFLOP/s FP32 with
a floor of 6 µs per operator launch (the small nets are launch-bound). Measured on this CPU
(issue 15): DOT's stacked WGAN-GP step ≈ 89 operators, 500,000 critic steps per data set →
≈ 4.5 min per data set (≈ 9 min both) plus 8,000 exact EMDs (0.25–1.75 s each on one core of
this loaded machine, spread over the host's cores by ``dot_2d.emd_many``: ≈ 2–15 min on 16
cores); the stacked PacGAN step
≈ 222 operators → ≈ 1.3 ms, 400,000 steps ≈ 9 min per (data set, packing), ≈ 36 min for the
four; EOTGM (10 runs of 2,000 Sinkhorn-loss steps) and AE-OT (OT solves) a few minutes. Total
≈ 50–65 min, above the 40-minute target: the PacGAN baselines dominate, and capturing their
step in a CUDA graph (not done) is what would bring it under.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from otgen.errors import OTGenError
from otgen.utils.device import resolve_device
from otgen.utils.io import write_json

Runner = Callable[..., dict]

EXPERIMENTS: dict[str, tuple[str, str, str]] = {
    "aeot-fmnist": ("aeot_fmnist", "run",
                    "AE-OT / AE-OT-GAN vs DCGAN / WGAN-GP on Fashion-MNIST: FID, PRD, coverage"),
    "aeot-grid": ("aeot_grid", "run",
                  "AE-OT Table 2 / Fig. 13: AE-OT vs GAN/PacGAN mode metrics, grid25+ring8"),
    "dot-2d": ("dot_2d", "run",
               "DOT Fig. 3: WGAN-GP toys, EMD of G vs target DOT vs naive transport"),
    "dot-images": ("dot_images", "run",
                   "DOT Tables 1-3 analogue: latent DOT on Fashion-MNIST DCGANs"),
    "eot-mixing": ("eot_mixing", "run",
                   "EOT paper Fig. 1c-d: IS/FID vs mixing ratio, DCGAN/WGAN/EOTGM/EOTGAN"),
    "eotgm-gauss4": ("eotgm_gauss4", "run", "EOT paper Fig. 1a: EOTGM on four Gaussians"),
    "gan-baselines": ("gan_baselines", "run_toys",
                      "AE-OT Table 2 baselines: GAN vs PacGAN mode metrics on grid25/ring8"),
    "gan-baselines-fmnist": ("gan_baselines", "run_fmnist",
                             "DCGAN and WGAN-GP on Fashion-MNIST: samples, losses, FID"),
    "mbgan": ("mbgan", "run",
              "MBGAN paper: samples, FID, D linear probe vs DCGAN, α/K sweeps, Figs. 6, 9"),
}  # fmt: skip


def one_thread(fn: Callable[[Path, bool, int, torch.device], dict]) -> Runner:
    """Turn ``fn(out_dir: Path, quick, seed, dev: torch.device)`` into an experiment runner
    ``run(out: str, quick, seed, device: str)`` that trains with one intra-op thread on CPU.

    Why: the reproductions' small nets and small Sinkhorn problems are dominated by thread
    synchronisation on a shared CPU (8-10x slower with 2 threads on a loaded 2-core machine).
    The previous thread count is restored afterwards.
    """

    def wrapper(out: str, quick: bool | str, seed: int, device: str) -> dict:
        dev = resolve_device(device)
        threads = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(1)
        try:
            return fn(Path(out), quick, seed, dev)
        finally:
            torch.set_num_threads(threads)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.profiles = getattr(fn, "profiles", False)  # type: ignore[attr-defined]
    return wrapper


def available() -> dict[str, str]:
    return {name: doc for name, (_, _, doc) in sorted(EXPERIMENTS.items())}


def _module(name: str):
    """The module of experiment ``name`` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name][0]}")


def get(name: str) -> Runner:
    return getattr(_module(name), EXPERIMENTS[name][1])


PROFILES = ("quick", "cpu", "paper")
# `otgen reproduce all`: the 2D experiments, most important first (issue 15)
ALL_ORDER = ("dot-2d", "eotgm-gauss4", "gan-baselines", "aeot-grid")
# H100 SXM dense FP32 peak (NVIDIA datasheet, FLOP/s) and a per-kernel launch cost: the two
# numbers the GPU time estimate rests on (they are assumptions, not measurements)
H100_FP32_FLOPS = 67e12
GPU_LAUNCH_S = 6e-6


def profiled(fn: Callable) -> Callable:
    """Mark a runner whose second argument is a profile name (quick / cpu / paper) rather
    than the old ``quick`` flag (see :func:`run_experiment`)."""
    fn.profiles = True  # type: ignore[attr-defined]
    return fn


def generator_ema(decay: float, start: int = 0) -> dict | None:
    """The engine config of a generator EMA for ``train_until_flat(config=...)``; None when
    ``decay`` is 0 (no EMA). The same dict keys a run whichever experiment builds it."""
    return {"ema": {"decay": decay, "start": start}} if decay else None


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise OTGenError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    return profile


def run_experiment(name: str, out: str, profile: str, seed: int, device: str,
                   jobs: int = 1) -> dict:  # fmt: skip
    """Run one experiment with a profile; runners without profiles get ``quick`` (their
    non-quick settings stand for both "cpu" and "paper"). ``jobs`` > 1: first train the
    experiment's independent runs in that many processes (:mod:`otgen.reproduce._jobs`)."""
    fn = get(name)
    if jobs != 1:
        from otgen.reproduce._jobs import run_jobs

        plan = getattr(_module(name), "train_jobs", None)
        if plan is None:
            raise OTGenError(f"{name} trains in one process; --jobs is for the image "
                             f"experiments ({', '.join(parallel_experiments())})")  # fmt: skip
        run_jobs(plan(Path(out), check_profile(profile), seed, resolve_device(device)), jobs)
    arg: str | bool = profile if getattr(fn, "profiles", False) else profile == "quick"
    return fn(out, arg, seed, device)


def parallel_experiments() -> list[str]:
    """Experiments whose runs ``--jobs`` can spread over processes (those with ``train_jobs``)."""
    return [name for name in sorted(EXPERIMENTS) if hasattr(_module(name), "train_jobs")]


def done_marker(out: str | Path, profile: str) -> Path:
    """File that says an experiment finished under ``profile`` (in the git-ignored runs/)."""
    return Path(out) / "runs" / f"done-{profile}.json"


def run_all(out_root: str, profile: str, seed: int, device: str) -> dict:
    """Every 2D experiment in :data:`ALL_ORDER`; an experiment whose done marker exists is
    skipped, and a cut-off one resumes from its checkpoints when rerun."""
    summary: dict[str, str] = {}
    for name in ALL_ORDER:
        out = Path(out_root) / name
        marker = done_marker(out, profile)
        if marker.exists():
            summary[name] = f"finished earlier ({marker}); skipped"
            continue
        t0 = time.perf_counter()
        result = run_experiment(name, str(out), profile, seed, device)
        write_json(marker, {"profile": profile, "seed": seed, "seconds": time.perf_counter() - t0,
                            "summary": {k: str(v) for k, v in (result or {}).items()}})  # fmt: skip
        summary[name] = f"done in {time.perf_counter() - t0:.0f} s -> {out}"
    return summary


def gpu_time_estimate(step: Callable[[], Any], cpu_seconds: float) -> dict[str, float]:
    """Estimated seconds of one call of ``step`` on one H100, from its CPU cost.

    FLOPs of one call are counted by the profiler (``with_flops``: the matmuls of forward,
    backward and the penalty's double backward) and divided by :data:`H100_FP32_FLOPS`; the
    CPU's rate is ``flops / cpu_seconds``. Tiny nets are launch-bound on a GPU, so the
    estimate is ``max(flops / peak, ops × launch)`` with the top-level operator count of the
    same profile. An estimate, not a measurement.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step()
    events = list(prof.events())
    flops = float(sum(e.flops or 0 for e in events))
    kernels = sum(1 for e in events if e.name.startswith("aten::") and e.cpu_parent is None)
    gpu_s = max(flops / H100_FP32_FLOPS, kernels * GPU_LAUNCH_S)
    return {"flops": flops, "cpu_s": cpu_seconds, "cpu_flops_per_s": flops / cpu_seconds,
            "kernels": kernels, "h100_s": gpu_s, "speedup": cpu_seconds / gpu_s}  # fmt: skip
