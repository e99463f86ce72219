"""Input validation shared by every solver, metric and dataset.

Each helper raises :class:`otgen.errors.OTGenError` with a one-line message naming the
argument and the problem, so no NaN or shape error surfaces deep inside a computation.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError

ArrayLike = torch.Tensor | np.ndarray | Sequence


def as_tensor(
    x: ArrayLike, name: str, *, dtype: torch.dtype | None = None, device=None
) -> torch.Tensor:
    """Convert to a tensor without copying when possible; floats keep their precision."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise OTGenError(f"{name}: cannot convert to a tensor ({exc})") from None
    if t.is_complex():  # casting to a real dtype would silently drop the imaginary part
        raise OTGenError(f"{name}: complex values are not supported (got {t.dtype})")
    if dtype is not None or not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    if device is not None:
        t = t.to(device)
    return t


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(t).all()):
        raise OTGenError(f"{name} contains NaN or Inf values")
    return t


def as_points(x: ArrayLike, name: str = "x", *, batched: bool = False, **kw) -> torch.Tensor:
    """Validate a point cloud: (n, d), or (B, n, d) when ``batched``; non-empty and finite."""
    t = as_tensor(x, name, **kw)
    if t.ndim == 1 and not batched:
        t = t[:, None]
    want = 3 if batched else 2
    if t.ndim != want:
        shape = "(B, n, d)" if batched else "(n, d)"
        raise OTGenError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if t.shape[-2] == 0 or t.shape[-1] == 0:
        raise OTGenError(f"{name} is empty (shape {tuple(t.shape)})")
    return check_finite(t, name)


def same_dim(x: torch.Tensor, y: torch.Tensor, xname: str = "x", yname: str = "y") -> None:
    if x.shape[-1] != y.shape[-1]:
        raise OTGenError(
            f"{xname} and {yname} have different dimensions ({x.shape[-1]} vs {y.shape[-1]})"
        )


def as_weights(
    w: ArrayLike | None, n: int, name: str, *, like: torch.Tensor, normalize_tol: float = 1e-6
) -> torch.Tensor:
    """Validate histogram weights of length n (default uniform): non-negative, sum to 1.

    Weights must sum to 1 within ``normalize_tol`` (relative); they are then renormalised
    exactly in the working precision so marginal errors are not polluted by rounding.
    """
    if w is None:
        return torch.full(like.shape[:-1], 1.0 / n, dtype=like.dtype, device=like.device)
    t = as_tensor(w, name, dtype=like.dtype, device=like.device)
    if t.shape[-1] != n:
        raise OTGenError(f"{name} has {t.shape[-1]} entries but there are {n} points")
    check_finite(t, name)
    if bool((t < 0).any()):
        raise OTGenError(f"{name} has negative entries")
    total = t.sum(-1, keepdim=True)
    if bool((total <= 0).any()):
        raise OTGenError(f"{name} sums to zero")
    if bool(((total - 1).abs() > normalize_tol * max(1.0, n**0.5)).any()):
        raise OTGenError(f"{name} must sum to 1 (sums to {total.flatten()[0].item():.6g})")
    return t / total


def check_positive(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OTGenError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_int(value: int, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OTGenError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# Config integers are counts (steps, sizes, intervals) or a seed. A count beyond 2**31 - 1 is a
# typo, never a plan: 10**23 steps would train silently forever. Seeds go up to what every RNG
# takes (torch and numpy need int64; more overflows deep inside them).
MAX_COUNT = 2**31 - 1
MAX_SEED = 2**63 - 1


def check_config_int(value: int, key: str) -> int:
    """Refuse integers too large for their config field (``key`` is the dotted name)."""
    limit = MAX_SEED if key.rsplit(".", 1)[-1] == "seed" else MAX_COUNT
    if not -limit <= value <= limit:
        raise OTGenError(f"{key}: {value} is too large (at most {limit})")
    return value


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 text of a config or metadata file; other encodings are refused in one line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OTGenError(
            f"{what} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None


def check_output_path(path: str | Path, name: str, *, directory: bool = False) -> Path:
    """Refuse, before any work is done, an output that cannot be written: a file where a
    directory is needed (or the reverse), a path under a file, or a read-only directory."""
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        kind = "is a directory" if path.is_dir() else "exists and is not a directory"
        raise OTGenError(f"{name}: {path} {kind}")
    anchor = path if directory else path.parent
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        raise OTGenError(f"{name}: {path} lies under {anchor}, which is a file")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise OTGenError(f"{name}: {anchor} is not writable")
    return path


def check_batchnorm_batch(nets: dict[str, torch.nn.Module], batch: int) -> None:
    """BatchNorm in training mode needs two or more samples per batch (the batch variance of
    one sample is 0); refuse a per-process batch of 1 up front instead of failing mid-step."""
    if batch >= 2:
        return
    for name, net in nets.items():
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules()):
            raise OTGenError(
                f"batch_size: a batch of {batch} sample per process is too small for the "
                f"BatchNorm layers of {name!r}; use a batch of at least 2"
            )


# No net of the papers has more than ~10**7 weights; 2**28 (1 GiB of float32, 4 GiB with Adam's
# state) is far above them and still refused before torch spends minutes allocating it.
MAX_LAYER_WEIGHTS = 2**28


def check_layer_widths(dims: Sequence[int], what: str, *, factor: int = 1) -> None:
    """Refuse fully connected widths ``dims`` (input, hidden..., output) whose weights would not
    fit in memory; ``factor`` multiplies every layer's output (maxout pieces)."""
    total = sum(a * b * factor for a, b in itertools.pairwise(dims))
    if total > MAX_LAYER_WEIGHTS:
        raise OTGenError(
            f"{what}: layer widths {list(dims)} need {total:,} weights "
            f"(more than {MAX_LAYER_WEIGHTS:,}); use smaller hidden sizes"
        )


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise OTGenError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")
    return value
