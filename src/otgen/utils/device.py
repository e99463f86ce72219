"""Device selection: CPU everywhere, CUDA when present and asked for (``--device``)."""

from __future__ import annotations

import torch

from otgen.errors import OTGenError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; an unavailable CUDA request is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise OTGenError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OTGenError(f"device {device!r} requested but CUDA is not available")
    return dev
