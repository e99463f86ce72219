"""Exact (unregularised) optimal transport by POT's network simplex, with a safe cap.

``min_{pi in Pi(a, b)} <pi, C>``: eq. (1) of the EOT paper with lambda = 0. POT's ``ot.emd``
stops silently at ``numItermax`` (default 100,000) and returns a feasible but sub-optimal
plan (+33% cost at n = 10,000 in 2D, see reference notes). Here the cap grows with the
problem, ``max_iter = max(100,000, 100 n m)`` capped at ``MAX_ITER_CAP`` (the simplex needs
O(n m)-ish pivots in practice; the cap only bounds run time), and a result code saying the
cap was hit raises :class:`OTGenError` rather than returning a wrong answer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.ot.costs import CostLike, cost_matrix
from otgen.utils.checks import as_tensor, as_weights, check_finite, check_int

#: Upper bound on network-simplex iterations (about an hour of CPU at worst on 10^4 points).
MAX_ITER_CAP = 2_000_000_000


@dataclass(frozen=True)
class ExactOTResult:
    """``cost = <plan, C>``; ``plan`` ``(n, m)`` float64; ``f, g`` dual potentials
    (``f_i + g_j <= C_ij``, equality on the support of the plan); ``n_iter_cap`` used."""

    cost: float
    plan: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    max_iter: int


def default_max_iter(n: int, m: int) -> int:
    """``max(100,000, 100 n m)``, capped at ``MAX_ITER_CAP``."""
    return int(min(MAX_ITER_CAP, max(100_000, 100 * n * m)))


def emd(
    x=None,
    y=None,
    a=None,
    b=None,
    *,
    cost: CostLike = "sqeuclidean",
    C=None,
    max_iter: int | None = None,
) -> ExactOTResult:
    """Exact OT between point clouds ``x (n, d)``, ``y (m, d)`` (or a cost matrix ``C``) with
    weights ``a, b`` (default uniform). Raises ``OTGenError`` when the iteration cap is hit."""
    import ot

    _reject_pot_argument_order(x, y, a, b)
    if C is None:
        if x is None or y is None:
            raise OTGenError("give the point clouds x and y, or a cost matrix C=")
        C = cost_matrix(x, y, cost)
    else:
        C = check_finite(as_tensor(C, "C"), "C")
        if C.ndim != 2 or 0 in C.shape:
            raise OTGenError(f"C must have shape (n, m), got {tuple(C.shape)}")
    Cn = C.detach().to("cpu", torch.float64)
    n, m = Cn.shape
    a = as_weights(a, n, "a", like=torch.empty(n, 1, dtype=torch.float64))
    b = as_weights(b, m, "b", like=torch.empty(m, 1, dtype=torch.float64))
    cap = default_max_iter(n, m) if max_iter is None else check_int(max_iter, "max_iter")
    with warnings.catch_warnings():  # a hit cap is turned into an error below
        warnings.simplefilter("ignore", UserWarning)
        plan, log = ot.emd(
            a.detach().cpu().numpy(), b.detach().cpu().numpy(), Cn.numpy(), numItermax=cap, log=True
        )
    # result_code 1 = optimal; 3 = iteration cap reached (plan feasible, not optimal);
    # 0/2 = infeasible/unbounded. Only an optimal plan is returned.
    if log.get("result_code", 1) != 1 or log.get("warning"):
        raise OTGenError(
            f"exact OT did not reach optimality (result code "
            f"{log.get('result_code')}: {log.get('warning')}); max_iter={cap} too small"
        )
    plan_t = torch.from_numpy(np.ascontiguousarray(plan))
    return ExactOTResult(
        cost=float(log["cost"]),
        plan=plan_t,
        f=torch.from_numpy(log["u"]),
        g=torch.from_numpy(log["v"]),
        max_iter=cap,
    )


def _ndim(v) -> int | None:
    return None if v is None else np.ndim(v.detach().cpu() if hasattr(v, "detach") else v)


def _reject_pot_argument_order(x, y, a, b) -> None:
    """POT's ``emd2(a, b, M)`` puts weights first and the cost matrix third; here that would
    read the weights as points and M as weights. A 2-D array where weights are expected is
    never valid, so say what otgen expects instead of a confusing "a must sum to 1"."""
    if _ndim(a) == 2 or _ndim(b) == 2:
        pot_order = _ndim(x) == 1 and _ndim(y) in (1, None)
        hint = (
            "this looks like POT's order emd2(a, b, M); in otgen write emd2(a=a, b=b, C=M)"
            if pot_order
            else "pass a cost matrix as C=M"
        )
        raise OTGenError(
            "otgen's emd/emd2 take (x, y, a, b): point clouds x (n, d), y (m, d), then 1-D "
            f"weights a (n,), b (m,); got a 2-D array as weights ({hint})"
        )


def emd2(
    x=None,
    y=None,
    a=None,
    b=None,
    *,
    cost: CostLike = "sqeuclidean",
    C=None,
    max_iter: int | None = None,
) -> float:
    """Exact OT cost ``min <pi, C>`` (see :func:`emd`)."""
    return emd(x, y, a, b, cost=cost, C=C, max_iter=max_iter).cost
