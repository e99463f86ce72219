"""Exponential moving average (EMA) of a network's weights, checkpointed with the run.

After each training step ``t`` the shadow weights follow

    θ̄ ← d·θ̄ + (1 − d)·θ        (d = ``decay`` once ``t ≥ start``; before that d = 0: copy)

so after ``k`` averaged steps θ̄ = d^k θ̄₀ + (1 − d) Σ_{i<k} d^i θ_{k−i}. Floating-point buffers
(BatchNorm running statistics) are averaged the same way; integer buffers are copied.
Sampling "with EMA" temporarily swaps the shadow weights into the network (:meth:`swapped`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from otgen.errors import CheckpointError


class EMA:
    """Shadow copy of ``module``'s parameters and buffers."""

    def __init__(self, module: nn.Module, decay: float, start: int = 0) -> None:
        self.decay = float(decay)
        self.start = int(start)
        self.shadow: dict[str, torch.Tensor] = {
            k: v.detach().clone() for k, v in module.state_dict().items()
        }

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        """Average in ``module``'s current weights after training step ``step``."""
        d = self.decay if step >= self.start else 0.0
        current = module.state_dict()
        floats_s, floats_c = [], []
        for k, s in self.shadow.items():
            c = current[k].detach()
            if s.is_floating_point():
                floats_s.append(s)
                floats_c.append(c)
            else:
                s.copy_(c)
        if floats_s:
            # θ̄ + (1 − d)(θ − θ̄) = d θ̄ + (1 − d) θ, one fused kernel for all tensors
            torch._foreach_lerp_(floats_s, floats_c, 1.0 - d)

    @contextmanager
    def swapped(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the shadow weights into ``module`` (restored on exit)."""
        backup = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.shadow)
        try:
            yield module
        finally:
            module.load_state_dict(backup)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.shadow):
            raise CheckpointError("checkpoint EMA weights do not match the generator")
        with torch.no_grad():
            for k, v in state.items():
                self.shadow[k].copy_(v)
