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

Runner = Callable[..., dict]
_REGISTRY: dict[str, tuple[str, Runner]] = {}


def experiment(name: str, doc: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        _REGISTRY[name] = (doc, fn)
        return fn

    return register


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
