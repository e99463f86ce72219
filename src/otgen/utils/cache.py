"""Per-user cache folder for downloaded datasets and weights (XDG base-directory convention).

``$OTGEN_CACHE`` if set, else ``$XDG_CACHE_HOME/otgen``, else ``~/.cache/otgen``. Nothing is
created until something is written there.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "OTGEN_CACHE"


def cache_dir() -> Path:
    """The otgen cache folder (see the module docstring); not created here."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "otgen"


def datasets_dir() -> Path:
    """Where ``otgen data fetch`` puts datasets by default: ``$OTGEN_DATA`` or cache/datasets."""
    if os.environ.get("OTGEN_DATA"):
        return Path(os.environ["OTGEN_DATA"]).expanduser()
    return cache_dir() / "datasets"


def weights_dir() -> Path:
    """Where ``otgen features fetch`` puts extractor weights: cache/weights."""
    return cache_dir() / "weights"
