"""Paper reproductions, one module per table/figure, discovered automatically.

A module registers an experiment with :func:`experiment`::

    @experiment("eotgm-gauss4", "EOT paper Fig. 1a: EOTGM on four Gaussians")
    def run(out: str, quick: bool, seed: int, device: str) -> dict: ...

The function writes JSON + Markdown (``otgen.utils.report.write_report``) and PNG figures into
``out`` and returns a short summary dict printed by the CLI.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

import torch

from otgen.utils.device import resolve_device

Runner = Callable[..., dict]
_REGISTRY: dict[str, tuple[str, Runner]] = {}


def experiment(name: str, doc: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        _REGISTRY[name] = (doc, fn)
        return fn

    return register


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


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def available() -> dict[str, str]:
    _discover()
    return {name: doc for name, (doc, _) in sorted(_REGISTRY.items())}


def get(name: str) -> Runner:
    _discover()
    return _REGISTRY[name][1]
