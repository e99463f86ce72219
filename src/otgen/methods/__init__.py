"""Training algorithms, one file per paper algorithm box, registered by name.

A module registers its :class:`otgen.engine.method.Method` subclasses with
``@register_method("name")``; modules are discovered automatically, so adding a method never
edits this file.
"""

from __future__ import annotations

import importlib
import pkgutil

from otgen.errors import OTGenError

_METHODS: dict[str, type] = {}


def register_method(name: str):
    def deco(cls: type) -> type:
        _METHODS[name] = cls
        return cls

    return deco


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def available_methods() -> list[str]:
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> type:
    _discover()
    if name not in _METHODS:
        raise OTGenError(f"unknown method {name!r}; choose one of: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]
