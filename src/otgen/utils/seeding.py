"""Seeds and RNG state capture, so the same command with the same seed gives the same numbers."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from otgen.errors import CheckpointError


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Every global RNG state as JSON-able lists plus torch tensors (checkpoint records)."""
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`; a malformed record is a :class:`CheckpointError`."""
    try:
        py, npy = state["python"], state["numpy"]
        random.setstate((int(py[0]), tuple(int(v) for v in py[1]), py[2]))
        keys = np.asarray(npy[1], dtype=np.uint32)
        np.random.set_state((str(npy[0]), keys, int(npy[2]), int(npy[3]), float(npy[4])))
        torch.set_rng_state(state["torch"].to(torch.uint8))
        if "cuda" in state and torch.cuda.is_available():
            cuda = state["cuda"][: torch.cuda.device_count()]
            for i, s in enumerate(cuda):
                torch.cuda.set_rng_state(s.to(torch.uint8), i)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint has an invalid RNG state ({exc})") from None
