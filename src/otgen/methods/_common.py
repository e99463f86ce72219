"""Small helpers shared by several algorithm files (not an algorithm; skipped by discovery)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def frozen(*modules: nn.Module, eval_mode: bool = False) -> Iterator[None]:
    """Parameters of ``modules`` require no gradient inside the block, so an update of the
    other player back-propagates *through* them without computing (or leaving) their weight
    gradients. ``eval_mode=True`` also switches them to eval mode (post-processing such as
    DOT: BatchNorm statistics must not move); flags and modes are restored on exit, even on
    error. Parameters shared between modules are handled once."""
    params = {id(p): (p, p.requires_grad) for m in modules for p in m.parameters()}
    modes = [(sub, sub.training) for m in modules for sub in m.modules()] if eval_mode else []
    try:
        for p, _ in params.values():
            p.requires_grad_(False)
        if eval_mode:
            for m in modules:
                m.eval()
        yield
    finally:
        for p, flag in params.values():
            p.requires_grad_(flag)
        for sub, flag in modes:
            sub.training = flag


def grad_norm(net: nn.Module) -> float:
    """‖∇‖₂ over all parameters of ``net`` that have a gradient."""
    sq = [p.grad.pow(2).sum() for p in net.parameters() if p.grad is not None]
    return math.sqrt(float(torch.stack(sq).sum())) if sq else 0.0
