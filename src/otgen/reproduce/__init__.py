"""Paper reproductions: the papers' tables and figures, listed in :data:`EXPERIMENTS`.

Each entry names ``(module, function, one-line description)``; the function
``run(out: str, quick: bool, seed: int, device: str) -> dict`` writes JSON + Markdown
(``otgen.utils.report.write_report``) and PNG figures into ``out`` and returns a short summary
dict printed by the CLI. Modules are imported only when their experiment runs. Side studies
that are not paper results live in ``benchmarks/studies/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import torch

from otgen.utils.device import resolve_device

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

    def wrapper(out: str, quick: bool, seed: int, device: str) -> dict:
        dev = resolve_device(device)
        threads = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(1)
        try:
            return fn(Path(out), quick, seed, dev)
        finally:
            torch.set_num_threads(threads)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def available() -> dict[str, str]:
    return {name: doc for name, (_, _, doc) in sorted(EXPERIMENTS.items())}


def get(name: str) -> Runner:
    module, function, _ = EXPERIMENTS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)
