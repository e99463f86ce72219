"""The training engine: configs, the training loop, checkpoints, EMA, logging, DDP.

Public API (imported lazily, so ``import otgen.engine`` stays cheap)::

    from otgen.engine import TrainConfig, train, resume, load_run

    run_dir = train({"method": "eotgm", "data": {"name": "gauss4"}, "steps": 2000,
                     "out": "runs/x"})            # or a TrainConfig, or a YAML/TOML path
    resume(run_dir)                               # continue after a crash / kill
    method, config = load_run(run_dir, device="cpu")
    x = method.sample(1000)

See ``docs/engine.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DataConfig",
    "EMAConfig",
    "InMemoryData",
    "TrainConfig",
    "build_method",
    "config_from_dict",
    "load_config_file",
    "load_run",
    "read_run",
    "resume",
    "save_samples",
    "train",
]

_LAZY = {
    "DataConfig": "otgen.engine.config",
    "EMAConfig": "otgen.engine.config",
    "TrainConfig": "otgen.engine.config",
    "config_from_dict": "otgen.engine.config",
    "load_config_file": "otgen.engine.config",
    "InMemoryData": "otgen.engine.data",
    "build_method": "otgen.engine.trainer",
    "load_run": "otgen.engine.trainer",
    "read_run": "otgen.engine.rundir",
    "resume": "otgen.engine.trainer",
    "save_samples": "otgen.viz.samples",
    "train": "otgen.engine.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'otgen.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
