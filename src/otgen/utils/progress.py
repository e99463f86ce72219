"""Progress bars for long work (tqdm), silent when stderr is not a terminal or when asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("OTGEN_PROGRESS", "").lower() in {"0", "false", "no"}:
        return False
    return sys.stderr.isatty() or os.environ.get("OTGEN_PROGRESS", "") == "1"


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    leave: bool = False,
    disable: bool | None = None,
) -> tqdm:
    """A tqdm bar; ``disable=None`` follows :func:`progress_enabled`."""
    if disable is None:
        disable = not progress_enabled()
    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=disable, dynamic_ncols=True)
