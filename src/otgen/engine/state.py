"""Applying a checkpoint's state tree to a built method (nets, optimisers, extra state, EMA).

The tree is the one :meth:`otgen.engine.trainer.Trainer.state` writes and
:func:`otgen.engine.checkpoint.load_checkpoint` reads back; anything that does not fit the method
is one :class:`~otgen.errors.CheckpointError`.
"""

from __future__ import annotations

from typing import Any

import torch

from otgen.engine import distributed as D
from otgen.engine.ema import EMA
from otgen.errors import CheckpointError
from otgen.methods.base import Method


def apply_state(method: Method, state: dict[str, Any], ema: EMA | None = None) -> None:
    """Load nets, optimisers, extra state (and EMA) from a checkpoint state tree."""
    try:
        nets, opts = state["nets"], state["optimizers"]
        if set(nets) != set(method.nets) or set(opts) != set(method.optimizers):
            raise CheckpointError(
                f"checkpoint holds nets {sorted(nets)} / optimizers {sorted(opts)}, the method "
                f"has {sorted(method.nets)} / {sorted(method.optimizers)}"
            )
        for k, sd in nets.items():
            D.unwrap(method.nets[k]).load_state_dict(sd)
        for k, sd in opts.items():
            method.optimizers[k].load_state_dict(sd)
        extra = extra_on(state, method.device)
        if extra:
            method.load_extra_state(extra)
        if ema is not None:
            if state.get("ema") is None:
                raise CheckpointError("checkpoint has no EMA weights but ema.decay > 0")
            ema.load_state_dict(state["ema"])
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint does not match the method: {first}") from None


def extra_on(state: dict[str, Any], device: torch.device) -> dict[str, Any]:
    extra = state.get("extra") or {}
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in extra.items()}
