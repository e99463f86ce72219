"""Entropic optimal transport by Sinkhorn iterations (EOT paper, eqs. 1-3).

Conventions (POT's): ``eps`` is the weight of the entropy ``H(pi) = -sum pi log pi``,

    value = min_{pi in Pi(a, b)} <pi, C> - eps H(pi)                                  (eq. 1)
    pi_ij = exp((f_i + g_j - C_ij) / eps)                                             (eq. 3)

with ``u = exp(f / eps)``, ``v = exp(g / eps)`` the scalings of eq. (3) and ``f, g`` the dual
potentials ``alpha, beta`` of eq. (2). At the optimum ``value = <a, f> + <b, g>``; that dual
expression is what ``SinkhornResult.value`` reports (it differs from the primal value of the
returned plan by ``<pi^T 1 - b, g>``, i.e. by the marginal error).

Algorithm (Sinkhorn-Knopp in the log domain, optional eps-scaling):

    for eps_k in schedule (geometric from max C down to eps; just [eps] without annealing):
        repeat
            g <- eps_k log b - eps_k LSE_i((f_i - C_ij) / eps_k)      (columns exact)
            f <- eps_k log a - eps_k LSE_j((g_j - C_ij) / eps_k)      (rows exact)
        until ||pi^T 1 - b||_1 <= tol   (the row marginal is exact after the f update)

The marginal error is the L1 error ``||pi 1 - a||_1 + ||pi^T 1 - b||_1`` of the plan defined by
the returned potentials. Two implementations of the same iteration:

* dense (default when ``C`` fits in memory, no unrolled gradient): the *absorbed kernel*
  form (stabilised scaling, Schmitzer 2019). The potentials are absorbed in
  ``K = exp((f + g - C) / eps)``, whose entries are bounded by 1 near the solution, and the
  updates become two float32 matrix-vector products ``u = a / (K v)``, ``v = b / (K^T u)``
  (about 6x cheaper than a log-sum-exp pass). When ``u`` or ``v`` leaves ``[1e-6, 1e6]`` the
  scalings are absorbed back into ``f, g`` and ``K`` is recomputed, so nothing overflows for
  any ``eps`` > 0; a row of ``K`` that underflows entirely triggers an exact log-sum-exp
  update instead.
* log (``memory="online"`` or ``grad="autograd"``): the LSE updates above, evaluated with
  :func:`otgen.ot.costs.lse_reduce` block by block in online mode, so the ``n x m`` matrix is
  never stored.

Gradients (``grad=``):

* ``"envelope"`` (default): by the envelope theorem the gradient of the optimal value w.r.t.
  the data does not involve the derivative of the potentials: ``d value / d C = pi``,
  ``d value / d a = f``, ``d value / d b = g`` (eq. 5 of the EOT paper: ``beta*`` is a
  (sub)gradient w.r.t. Q). A custom ``autograd.Function`` returns exactly these; gradients
  w.r.t. ``x, y`` are ``sum_j pi_ij d C(x_i, y_j) / d x_i``, computed block by block by
  re-evaluating the cost with autograd. Nothing is differentiated through the iterations.
* ``"autograd"``: the iterations are recorded and differentiated (unrolled); exact for the
  truncated solver, memory grows with the number of iterations.

``SinkhornResult.cost = <pi, C>`` is differentiable with the plan held fixed: its gradient
flows through ``C(x, y)`` only (the loss of the EOT paper's Algorithm 1, "back propagate using
loss <pi*, M>"); w.r.t. ``x, y`` it equals the envelope gradient of ``value``, and it has no
gradient w.r.t. ``a, b``. :func:`transport_cost` computes the same loss for a given plan.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from otgen.errors import NonFiniteError, OTGenError
from otgen.ot.costs import (
    CostLike,
    center,
    check_memory,
    cost_matrix,
    default_chunk,
    fused_lse,
    fused_lse_applies,
    iter_chunks,
    lse_reduce,
    reject_complex,
    resolve_cost,
)
from otgen.utils.checks import (
    as_points,
    as_tensor,
    as_weights,
    check_choice,
    check_finite,
    check_int,
    check_positive,
    same_dim,
)

GRADS = ("envelope", "autograd")
MEMORY = ("auto", "dense", "online")
#: ``memory="auto"`` stores the cost matrix (plus one work buffer) up to this size.
DENSE_BYTES = 1 << 30
#: eps-scaling: default ratio between successive eps stages, and iterations per
#: intermediate stage (only the last stage runs to ``tol``).
ANNEAL_FACTOR = 0.5
STAGE_ITERS = 3
#: The scalings u, v are absorbed into (f, g) when they leave [1/ABSORB, ABSORB].
ABSORB = 1e6
#: Largest rounding error tolerated in the exponent ``(f_i + g_j - C_ij) / eps`` of the plan:
#: about ``3 u max|C| / eps`` for unit roundoff ``u``. Above it float32 problems are promoted
#: to float64 (with a warning) and float64 problems are refused: the plan's entries would be
#: wrong by factors ``exp(error)``, whatever the iterations do.
EXPONENT_ROUNDING = 1e-2


@dataclass(frozen=True)
class SinkhornResult:
    """Output of :func:`sinkhorn`. Tensors are scalars / ``(n,)`` for one problem and carry a
    leading batch axis ``B`` for batched inputs. ``marginal_error`` is the largest L1 error
    over the batch; ``converged`` says whether it reached ``tol``."""

    cost: torch.Tensor
    value: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    eps: float
    marginal_error: float
    n_iter: int
    converged: bool
    _plan: Callable[[], torch.Tensor] = field(repr=False, compare=False)

    def plan(self) -> torch.Tensor:
        """The transport plan ``exp((f_i + g_j - C_ij) / eps)`` (eq. 3), built on demand."""
        return self._plan()


# ----------------------------------------------------------------------------- problem setup


@dataclass
class _Problem:
    """Batched problem: ``x (B, n, d)``, ``y (B, m, d)`` or a cost ``C (B, n, m)``; inputs as
    given (for autograd) and detached copies (for the solver)."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    C: torch.Tensor | None
    cost_fn: Callable | None
    online: bool
    chunk: int | None
    batched: bool

    @property
    def n(self) -> int:
        return (self.C if self.C is not None else self.x).shape[-2]

    @property
    def m(self) -> int:
        return self.C.shape[-1] if self.C is not None else self.y.shape[-2]

    def detached(self) -> _Problem:
        def d(t):
            return None if t is None else t.detach()

        return _Problem(
            d(self.x), d(self.y), d(self.C), self.cost_fn, self.online, self.chunk, self.batched
        )

    def lse(self, h: torch.Tensor, eps: float, dim: int, shift=None) -> torch.Tensor:
        """``dim=-1``: ``LSE_j(h_j - C_ij/eps)``; ``dim=-2``: ``LSE_i(h_i - C_ij/eps)``.
        ``shift``: an estimate of the result, which lets large online problems take the
        fused single-pass kernel (:func:`otgen.ot.costs.fused_lse`)."""
        if self.C is not None:
            hb = h.unsqueeze(-2) if dim == -1 else h.unsqueeze(-1)
            return torch.logsumexp(hb - self.C / eps, dim=dim)
        need_grad = h.requires_grad or self.x.requires_grad or self.y.requires_grad
        if shift is not None and fused_lse_applies(self.x, self.y, self.cost_fn, need_grad):
            return fused_lse(self.x, self.y, h, eps, shift, dim=dim)
        return lse_reduce(self.x, self.y, h, eps, self.cost_fn, dim=dim, chunk_size=self.chunk)

    def max_cost(self) -> float:
        """Scale of the cost, for the first eps of the annealing schedule."""
        if self.C is not None:
            return float(self.C.amax())
        if self.cost_fn is _SQ:  # squared diameter of the bounding box of both clouds
            pts = torch.cat([self.x, self.y], dim=-2)
            return float(((pts.amax(-2) - pts.amin(-2)) ** 2).sum(-1).amax())
        return float(self.cost_fn(self.x[..., :512, :], self.y).amax())

    def cost_blocks(self, x, y):
        """Yield ``(rows, C[..., rows, :], x_block)`` with autograd on x / y when they need it."""
        if self.C is not None:
            yield slice(None), self.C, None
            return
        size = self.chunk or default_chunk(self.m, batch=x.shape[0], itemsize=x.element_size())
        for sl in iter_chunks(self.n, size):
            xb = x[:, sl]
            yield sl, self.cost_fn(xb, y), xb

    def plan(self, f: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
        C = self.C if self.C is not None else self.cost_fn(self.x, self.y)
        return torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - C) / eps)


_SQ, _EU = resolve_cost("sqeuclidean"), resolve_cost("euclidean")


def _prepare(
    x, y, a, b, cost, C, memory, grad, chunk_size
) -> tuple[_Problem, torch.Tensor, torch.Tensor]:
    for t, name in ((x, "x"), (y, "y"), (C, "C"), (a, "a"), (b, "b")):
        reject_complex(t, name)
    if C is not None:
        Ct = as_tensor(C, "C")
        if Ct.ndim not in (2, 3) or 0 in Ct.shape:
            raise OTGenError(f"C must have shape (n, m) or (B, n, m), got {tuple(Ct.shape)}")
        check_finite(Ct, "C")
        batched = Ct.ndim == 3
        Ct = Ct if batched else Ct.unsqueeze(0)
        prob = _Problem(None, None, Ct, None, False, chunk_size, batched)
        like = Ct[..., 0]
    else:
        if x is None or y is None:
            raise OTGenError("give the point clouds x and y, or a cost matrix C=")
        batched = getattr(x, "ndim", 2) == 3
        xt = as_points(x, "x", batched=batched)
        yt = as_points(y, "y", batched=batched, dtype=xt.dtype, device=xt.device)
        same_dim(xt, yt)
        if batched and xt.shape[0] != yt.shape[0]:
            raise OTGenError(f"x and y have different batch sizes ({xt.shape[0]} vs {yt.shape[0]})")
        if not batched:
            xt, yt = xt.unsqueeze(0), yt.unsqueeze(0)
        cost_fn = resolve_cost(cost)
        if cost_fn in (_SQ, _EU):
            xt, yt = center(xt, yt)
        B, n, m = xt.shape[0], xt.shape[1], yt.shape[1]
        big = 2 * B * n * m * xt.element_size() > DENSE_BYTES
        online = memory == "online" or (memory == "auto" and big and grad == "envelope")
        if online and grad == "autograd":
            raise OTGenError("grad='autograd' needs memory='dense' (it records every iteration)")
        dense_c = None
        if not online:
            # C, the kernel buffer and (autograd) the recorded iterations: refuse before
            # allocating rather than die in the allocator.
            check_memory(
                2 * B * n * m * xt.element_size(),
                xt.device,
                "memory='dense'",
                hint="use memory='online' with grad='envelope' (chunked, O((n + m) d) memory)",
            )
            dense_c = cost_fn(xt, yt)
            if cost_fn not in (_SQ, _EU):  # finite points give finite built-in costs
                check_finite(dense_c.detach(), "cost matrix")
        prob = _Problem(xt, yt, dense_c, cost_fn, online, chunk_size, batched)
        like = xt[..., 0]
    a = _weights(a, prob.n, "a", like)
    b = _weights(b, prob.m, "b", like)
    return prob, a, b


def _weights(w, n: int, name: str, ref: torch.Tensor) -> torch.Tensor:
    """Weights as ``(B, n)``: positive (a zero weight makes its potential -inf), sum 1."""
    like = torch.empty(ref.shape[0], n, 1, dtype=ref.dtype, device=ref.device)  # (B, n, .)
    if w is not None:
        w = as_tensor(w, name, dtype=ref.dtype, device=ref.device)
        if w.ndim == 1:
            w = w.unsqueeze(0).expand(ref.shape[0], n) if w.shape[0] == n else w
        if w.ndim != 2 or w.shape[0] != ref.shape[0]:
            raise OTGenError(f"{name} must have shape ({n},) or (B, {n}), got {tuple(w.shape)}")
    w = as_weights(w, n, name, like=like)
    if bool((w.detach() <= 0).any()):
        raise OTGenError(f"{name} has zero entries: drop zero-weight points before solving")
    return w


def _schedule(eps: float, anneal, scale: float) -> list[float]:
    """eps-scaling: ``scale, scale*q, scale*q^2, ..., eps`` (GeomLoss-style); ``[eps]``
    without annealing. Starting from a large eps gives a warm start for the next stage."""
    if anneal is None or anneal is False:
        return [eps]
    q = ANNEAL_FACTOR if anneal is True else anneal
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
        raise OTGenError(f"anneal must be None, True or a ratio in (0, 1), got {anneal!r}")
    out, e = [], max(scale, eps)
    while e > eps:
        out.append(e)
        e *= q
    return [*out, eps]


# ------------------------------------------------------------------------------ the solvers


def _exp_floor_(z: torch.Tensor) -> torch.Tensor:
    """In-place ``exp(max(z, log(tiny)))``: entries that would underflow to denormals (no
    mass, but 5-10x slower to produce and to multiply) become the smallest normal number."""
    return z.clamp_(min=math.log(torch.finfo(z.dtype).tiny) + 0.5).exp_()


def _absorbed_kernel(C, f, g, eps, out):
    """``K = exp((f_i + g_j - C_ij) / eps)`` into ``out`` (in place: one n x m buffer).

    ``(f_i + g_j)/eps - C_ij/eps`` is a rank-2 update of ``-C/eps``: one ``baddbmm`` pass
    (``[f/eps, 1] @ [1, g/eps]^T`` added to ``-C/eps``) instead of three elementwise passes.
    """
    one_f, one_g = torch.ones_like(f), torch.ones_like(g)
    left = torch.stack([f / eps, one_f], dim=-1)  # (B, n, 2)
    right = torch.stack([one_g, g / eps], dim=-2)  # (B, 2, m)
    torch.baddbmm(C, left, right, beta=-1.0 / eps, out=out)
    return _exp_floor_(out)


def _solve_scaling(C, a, b, schedule, tol, max_iter, check_every, stage_iters):
    """Dense absorbed-kernel Sinkhorn (no autograd). Returns f, g, error, iterations, <pi, C>."""
    B, n, m = C.shape
    f = torch.zeros(B, n, dtype=C.dtype, device=C.device)
    g = torch.zeros(B, m, dtype=C.dtype, device=C.device)
    K = torch.empty_like(C)
    it, err = 0, math.inf
    # A row whose kernel entries all underflowed holds only the floor of ``_exp_floor_``
    # (m x tiny of fake mass, which ``a / Kv`` would blow up into a plan of mass 0): any sum
    # below sqrt(tiny) means the warm start is that far off, and the half step is redone in
    # the log domain.
    tiny = math.sqrt(torch.finfo(C.dtype).tiny)
    for k, eps in enumerate(schedule):
        last = k == len(schedule) - 1
        _absorbed_kernel(C, f, g, eps, K)
        u, v = torch.ones_like(f), torch.ones_like(g)
        stage_it = 0
        while it < max_iter:
            # Rows: u = a / (K v). A row of K that underflowed entirely (K v = 0) means the
            # warm start is far off: redo that half step exactly in the log domain.
            Kv = torch.bmm(K, v.unsqueeze(-1)).squeeze(-1)
            if bool((Kv <= tiny).any()):
                g = g + eps * v.log()
                f = eps * a.log() - eps * torch.logsumexp((g.unsqueeze(-2) - C) / eps, -1)
                _absorbed_kernel(C, f, g, eps, K)
                u, v = torch.ones_like(f), torch.ones_like(g)
                Kv = torch.bmm(K, v.unsqueeze(-1)).squeeze(-1)
            u = a / Kv
            KTu = torch.bmm(K.transpose(-1, -2), u.unsqueeze(-1)).squeeze(-1)
            it += 1
            stage_it += 1
            # Columns of the current plan diag(u) K diag(v): free by-product of the next step.
            if it % check_every == 0 or not last or it == max_iter:
                err = float((v * KTu - b).abs().sum(-1).amax())
                if not math.isfinite(err):
                    raise NonFiniteError("Sinkhorn produced NaN/Inf (cost or weights invalid)")
                if err <= tol or (not last and stage_it >= stage_iters):
                    break
            if bool((KTu <= tiny).any()):  # column underflow: exact log-domain column step
                f = f + eps * u.log()
                g = eps * b.log() - eps * torch.logsumexp((f.unsqueeze(-1) - C) / eps, -2)
                _absorbed_kernel(C, f, g, eps, K)
                u, v = torch.ones_like(f), torch.ones_like(g)
                continue
            v = b / KTu
            if bool(
                (u.amax() > ABSORB)
                | (u.amin() < 1 / ABSORB)
                | (v.amax() > ABSORB)
                | (v.amin() < 1 / ABSORB)
            ):
                f, g = f + eps * u.log(), g + eps * v.log()
                _absorbed_kernel(C, f, g, eps, K)
                u, v = torch.ones_like(f), torch.ones_like(g)
        if last:  # <pi, C> = u^T (K o C) v, reusing K's buffer: no extra exp pass
            cost = (torch.bmm(K.mul_(C), v.unsqueeze(-1)).squeeze(-1) * u).sum(-1)
        f, g = f + eps * u.log(), g + eps * v.log()
    return f, g, err, it, cost


def _solve_log(prob: _Problem, a, b, schedule, tol, max_iter, check_every, stage_iters):
    """Log-domain Sinkhorn through ``prob.lse`` (dense or chunked); differentiable."""
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    loga, logb = a.log(), b.log()
    it, err = 0, math.inf
    for k, eps in enumerate(schedule):
        last = k == len(schedule) - 1
        stage_it = 0
        while it < max_iter:
            # LSE_i((f_i - C_ij)/eps), shared by both uses. Shifts for the fused kernel: at the
            # fixed point g = eps (log b - L) and f = eps (log a - LSE_j), so the current
            # potentials predict both reductions.
            L = prob.lse(f / eps, eps, dim=-2, shift=(logb - g / eps).detach())
            if it > 0 and (it % check_every == 0 or not last):
                # Columns of the current plan: exp(g_j/eps + L_j); rows are exact.
                err = float(
                    (torch.exp(g.detach() / eps + L.detach()) - b.detach()).abs().sum(-1).amax()
                )
                if not math.isfinite(err):
                    raise NonFiniteError("Sinkhorn produced NaN/Inf (cost or weights invalid)")
                if err <= tol or (not last and stage_it >= stage_iters):
                    break
            g = eps * (logb - L)
            f = eps * (loga - prob.lse(g / eps, eps, dim=-1, shift=(loga - f / eps).detach()))
            it += 1
            stage_it += 1
    return f, g, err, it


def _solve_symmetric(prob: _Problem, a, schedule, tol, max_iter, stage_iters):
    """Self-transport OT(a, a): averaged updates ``f <- (f + T f) / 2`` (GeomLoss's symmetric
    Sinkhorn; the plain update oscillates). ``T f = eps log a - eps LSE_j((f_j - C_ij)/eps)``.
    Row sums of the plan are ``a exp((f - T f)/eps)``; both marginals are equal."""
    f = torch.zeros_like(a)
    loga = a.log()
    it, err = 0, math.inf
    for k, eps in enumerate(schedule):
        last = k == len(schedule) - 1
        stage_it = 0
        while it < max_iter:
            Tf = eps * (loga - prob.lse(f / eps, eps, dim=-1))
            r = a.detach() * torch.exp((f.detach() - Tf.detach()) / eps)
            err = 2 * float((r - a.detach()).abs().sum(-1).amax())
            if not math.isfinite(err):
                raise NonFiniteError("Sinkhorn produced NaN/Inf (cost or weights invalid)")
            if err <= tol if last else (err <= tol or stage_it >= stage_iters):
                break
            f = 0.5 * (f + Tf)
            it += 1
            stage_it += 1
    return f, err, it


# --------------------------------------------------------------------- envelope gradients


class _Envelope(torch.autograd.Function):
    """``kind="value"``: ``<a, f> + <b, g>``; ``kind="cost"``: ``<pi, C>``, with the gradients
    of the envelope theorem (potentials and plan held fixed; see the module docstring)."""

    @staticmethod
    def forward(ctx, kind, prob, f, g, eps, known, x, y, C, a, b):
        ctx.kind, ctx.prob, ctx.eps = kind, prob, eps
        ctx.save_for_backward(f, g)
        if kind == "value":
            return (a * f).sum(-1) + (b * g).sum(-1)
        if known is not None:  # computed by the solver
            return known.clone()
        total = torch.zeros(f.shape[0], dtype=f.dtype, device=f.device)
        det = prob.detached()
        for sl, Cb, _ in det.cost_blocks(det.x, det.y):
            P = torch.exp((f[:, sl].unsqueeze(-1) + g.unsqueeze(-2) - Cb) / eps)
            total += (P * Cb).sum((-1, -2))
        return total

    @staticmethod
    def backward(ctx, grad_out):
        f, g = ctx.saved_tensors
        prob, eps = ctx.prob, ctx.eps
        need_x, need_y, need_c, need_a, need_b = ctx.needs_input_grad[6:11]
        gx = gy = gc = ga = gb = None
        w = grad_out.view(-1, 1, 1)
        if need_c:
            gc = w * prob.detached().plan(f, g, eps)
        if need_x or need_y:
            x, y = prob.x.detach(), prob.y.detach().requires_grad_(need_y)
            gx = torch.zeros_like(x) if need_x else None
            gy = torch.zeros_like(y) if need_y else None
            with torch.enable_grad():
                xr = x.requires_grad_(need_x)
                for sl, Cb, xb in prob.cost_blocks(xr, y):
                    P = _exp_floor_((f[:, sl].unsqueeze(-1) + g.unsqueeze(-2) - Cb.detach()) / eps)
                    inputs = [t for t, need in ((xb, need_x), (y, need_y)) if need]
                    grads = torch.autograd.grad((w * P * Cb).sum(), inputs)
                    if need_x:
                        gx[:, sl] = grads[0]
                    if need_y:
                        gy += grads[-1]
        if ctx.kind == "value":
            ga = grad_out.unsqueeze(-1) * f if need_a else None
            gb = grad_out.unsqueeze(-1) * g if need_b else None
        return None, None, None, None, None, None, gx, gy, gc, ga, gb


def _envelope(kind, prob: _Problem, f, g, eps, a, b, *, same: bool = False, known=None):
    """Dense: the gradient reaches x, y through the recorded graph of C (d/dC = pi);
    online: through the block-wise re-evaluation of the cost in ``backward``. ``same``:
    self-transport, x (and a) is passed in both slots so autograd adds both gradients."""
    x, y = (None, None) if prob.C is not None else (prob.x, prob.x if same else prob.y)
    b = a if same else b
    return _Envelope.apply(kind, prob, f, f if same else g, eps, known, x, y, prob.C, a, b)


# ------------------------------------------------------------------------------ public API


def _balance(f, g, a, b):
    """Fix the gauge ``(f + c, g - c)`` (same plan, same value) by ``<a, f> = <b, g>``, so
    that dense, online and batched solves return identical potentials."""
    c = 0.5 * ((a * f).sum(-1, keepdim=True) - (b * g).sum(-1, keepdim=True))
    return f - c, g + c


def _check_args(eps, tol, max_iter, grad, memory, check_every, device_type):
    eps = check_positive(eps, "eps")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    check_choice(grad, "grad", GRADS)
    check_choice(memory, "memory", MEMORY)
    if check_every is None:  # a check costs a host sync on GPU, nothing on CPU
        check_every = 1 if device_type == "cpu" else 10
    return eps, tol, max_iter, check_int(check_every, "check_every")


def sinkhorn(
    x=None,
    y=None,
    a=None,
    b=None,
    *,
    eps: float,
    cost: CostLike = "sqeuclidean",
    C=None,
    tol: float = 1e-3,
    max_iter: int = 10_000,
    anneal: bool | float | None = None,
    grad: str = "envelope",
    check_every: int | None = None,
    memory: str = "auto",
    chunk_size: int | None = None,
    stage_iters: int = STAGE_ITERS,
) -> SinkhornResult:
    """Entropic OT between ``sum_i a_i delta_{x_i}`` and ``sum_j b_j delta_{y_j}`` (eq. 1).

    Args:
        x, y: points ``(n, d)``, ``(m, d)`` or batches ``(B, n, d)``, ``(B, m, d)``; or give
            the cost matrix ``C`` ``(n, m)`` / ``(B, n, m)`` instead.
        a, b: positive weights summing to 1 (default uniform), ``(n,)`` or ``(B, n)``.
        eps: entropy weight (POT convention, lambda of eq. 1), in cost units.
        cost: ``"sqeuclidean"`` (eq. 1), ``"euclidean"`` or ``callable(x, y) -> C``.
        tol: stop when the marginal L1 error ``||pi 1 - a||_1 + ||pi^T 1 - b||_1 <= tol``.
        max_iter: total Sinkhorn iterations (all eps stages together).
        anneal: eps-scaling: ``True`` (ratio 0.5) or a ratio in (0, 1), starting at max C;
            intermediate stages run ``stage_iters`` iterations each.
        grad: ``"envelope"`` (default) or ``"autograd"`` (unrolled iterations).
        check_every: error check period (default 1 on CPU, where it is free, 10 on GPU).
        memory: ``"dense"`` stores C; ``"online"`` recomputes it block by block
            (``chunk_size`` rows); ``"auto"``: dense if two n x m matrices take < 1 GiB.
    """
    prob, a, b = _prepare(x, y, a, b, cost, C, memory, grad, chunk_size)
    ref = prob.C if prob.C is not None else prob.x
    eps, tol, max_iter, check_every = _check_args(
        eps, tol, max_iter, grad, memory, check_every, ref.device.type
    )
    scale = prob.detached().max_cost()
    if _needs_float64(ref.dtype, scale, eps):
        prob, a, b = _promote(x, y, a, b, cost, C, memory, grad, chunk_size, ref.dtype, eps, scale)
    det = prob.detached()
    schedule = _schedule(eps, anneal, scale)
    if grad == "autograd":
        f, g, _, it = _solve_log(prob, a, b, schedule, tol, max_iter, check_every, stage_iters)
        f, g = _balance(f, g, a, b)
        P = prob.plan(f, g, eps)
        value = (a * f).sum(-1) + (b * g).sum(-1)
        cost_val = (P * prob.C).sum((-1, -2))
        err = _l1(
            P.detach().sum(-1, dtype=torch.float64), a, P.detach().sum(-2, dtype=torch.float64), b
        )
        plan_src = (prob, f, g)  # P above, recomputed on demand: differentiable
    else:
        with torch.no_grad():
            if det.C is not None:
                f, g, _, it, _ = _solve_scaling(
                    det.C, a.detach(), b.detach(), schedule, tol, max_iter, check_every, stage_iters
                )
            else:
                f, g, _, it = _solve_log(
                    det, a.detach(), b.detach(), schedule, tol, max_iter, check_every, stage_iters
                )
            f, g = _balance(f, g, a.detach(), b.detach())
            err, known = _verify(det, f, g, eps, a.detach(), b.detach())
        value = _envelope("value", prob, f, g, eps, a, b)
        cost_val = _envelope("cost", prob, f, g, eps, a, b, known=known)
        plan_src = (det, f, g)
    if not math.isfinite(err):
        raise NonFiniteError("Sinkhorn produced NaN/Inf (cost or weights invalid)")
    if not prob.batched:
        cost_val, value, f, g = (t.squeeze(0) for t in (cost_val, value, f, g))
    return SinkhornResult(
        cost=cost_val,
        value=value,
        f=f,
        g=g,
        eps=eps,
        marginal_error=err,
        n_iter=it,
        converged=err <= tol,
        _plan=functools.partial(_plan_on_demand, *plan_src, eps, prob.batched),
    )


def _l1(rows, a, cols, b) -> float:
    """Largest (over the batch) L1 marginal error, in float64."""
    a, b = a.detach().double(), b.detach().double()
    return float(((rows - a).abs().sum(-1) + (cols - b).abs().sum(-1)).amax())


def _verify(det: _Problem, f, g, eps: float, a, b) -> tuple[float, torch.Tensor]:
    """Marginal error and ``<pi, C>`` of the plan the result hands out, from the returned
    potentials at the target eps, evaluated exactly as :meth:`SinkhornResult.plan` builds
    it (same formula, same dtype; sums in float64). The solver's own error test runs on its
    internal state (scalings, an intermediate eps, a cut-short schedule) and can disagree
    with the returned plan; this pass makes ``marginal_error`` and ``converged`` describe
    what the user gets. One exp pass over the blocks (about half an iteration)."""
    if det.C is None and fused_lse_applies(det.x, det.y, det.cost_fn, False):
        return _verify_fused(det, f, g, eps, a, b)
    B = f.shape[0]
    rows = torch.zeros(B, f.shape[1], dtype=torch.float64, device=f.device)
    cols = torch.zeros(B, g.shape[1], dtype=torch.float64, device=f.device)
    total = torch.zeros(B, dtype=torch.float64, device=f.device)
    for sl, Cb, _ in det.cost_blocks(det.x, det.y):
        P = torch.exp((f[:, sl].unsqueeze(-1) + g.unsqueeze(-2) - Cb) / eps)
        rows[:, sl] = P.sum(-1, dtype=torch.float64)
        cols += P.sum(-2, dtype=torch.float64)
        total += (P.mul_(Cb)).sum((-1, -2), dtype=torch.float64)
    return _l1(rows, a, cols, b), total.to(f.dtype)


def _verify_fused(det: _Problem, f, g, eps: float, a, b) -> tuple[float, torch.Tensor]:
    """:func:`_verify` through the fused kernel: row sums ``exp(f_i/eps + LSE_j(g_j/eps -
    C_ij/eps))``, column sums alike, and ``<pi, C>`` with the row LSE as the exact shift."""
    lse_r = det.lse(g / eps, eps, dim=-1, shift=a.log() - f / eps)
    lse_c = det.lse(f / eps, eps, dim=-2, shift=b.log() - g / eps)
    rows, cols = (f / eps + lse_r).double().exp(), (g / eps + lse_c).double().exp()
    csum = fused_lse(det.x, det.y, g / eps, eps, lse_r, cost_sums=True)
    total = ((f / eps + lse_r).double().exp() * csum.double()).sum(-1)
    return _l1(rows, a, cols, b), total.to(f.dtype)


def _needs_float64(dtype: torch.dtype, scale: float, eps: float) -> bool:
    """The exponent of the plan carries an absolute rounding error of about ``3 u scale /
    eps`` (``f, g, C`` all of size ``scale``); see :data:`EXPONENT_ROUNDING`."""
    return 3 * torch.finfo(dtype).eps * scale / eps > EXPONENT_ROUNDING


def _promote(x, y, a, b, cost, C, memory, grad, chunk_size, dtype, eps, scale):
    """Redo the set-up in float64 (warning), or refuse where float64 is not enough either."""
    if _needs_float64(torch.float64, scale, eps) or dtype == torch.float64:
        raise OTGenError(
            f"eps={eps:.3g} is too small for costs up to {scale:.3g} even in float64 "
            f"(need eps >= {3 * torch.finfo(torch.float64).eps * scale / EXPONENT_ROUNDING:.3g}); "
            "increase eps or rescale the cost"
        )
    warnings.warn(
        f"sinkhorn: eps={eps:.3g} is below what {dtype} resolves for costs up to {scale:.3g}; "
        "solving in float64",
        stacklevel=3,
    )

    def up(t):
        return None if t is None else as_tensor(t, "input").double()

    return _prepare(up(x), up(y), up(a), up(b), cost, up(C), memory, grad, chunk_size)


def _plan_on_demand(src: _Problem, f, g, eps: float, batched: bool) -> torch.Tensor:
    n, m = f.shape[-1], g.shape[-1]
    check_memory(
        2 * f.shape[0] * n * m * f.element_size(),
        f.device,
        f"the {n} x {m} plan",
        hint="use the potentials f, g (result.f, result.g) and evaluate the plan by blocks",
    )
    P = src.plan(f, g, eps)
    return P if batched else P.squeeze(0)


def _self_value(
    x, a, *, eps, cost, tol, max_iter, anneal, grad, memory, chunk_size, stage_iters
) -> torch.Tensor:
    """``OT_eps(a, a)`` on the cloud ``x`` (batched problem), by symmetric updates."""
    prob, a, _ = _prepare(x, x, a, a, cost, None, memory, grad, chunk_size)
    schedule = _schedule(eps, anneal, prob.detached().max_cost())
    if grad == "autograd":
        f, _, _ = _solve_symmetric(prob, a, schedule, tol, max_iter, stage_iters)
        return 2 * (a * f).sum(-1)
    with torch.no_grad():
        f, _, _ = _solve_symmetric(
            prob.detached(), a.detach(), schedule, tol, max_iter, stage_iters
        )
    return _envelope("value", prob, f, f, eps, a, a, same=True)


def sinkhorn_divergence(
    x,
    y,
    a=None,
    b=None,
    *,
    eps: float,
    cost: CostLike = "sqeuclidean",
    tol: float = 1e-3,
    max_iter: int = 10_000,
    anneal: bool | float | None = None,
    grad: str = "envelope",
    memory: str = "auto",
    chunk_size: int | None = None,
    stage_iters: int = STAGE_ITERS,
) -> torch.Tensor:
    """Debiased Sinkhorn divergence ``S = OT(a, b) - OT(a, a)/2 - OT(b, b)/2`` (Feydy et al.
    2019), with the entropic values of eq. (1). ``S(x, x) = 0`` and ``S >= 0``; the self terms
    use symmetric (averaged) updates. Returns a differentiable scalar (``(B,)`` if batched)."""
    kw = dict(
        eps=eps,
        cost=cost,
        tol=tol,
        max_iter=max_iter,
        anneal=anneal,
        grad=grad,
        memory=memory,
        chunk_size=chunk_size,
        stage_iters=stage_iters,
    )
    xy = sinkhorn(x, y, a, b, **kw).value
    xx = _self_value(x, a, **kw)
    yy = _self_value(y, b, **kw)
    batched = getattr(x, "ndim", 2) == 3
    if not batched:
        xx, yy = xx.squeeze(0), yy.squeeze(0)
    return xy - 0.5 * (xx + yy)


def transport_cost(x, y, plan, cost: CostLike = "sqeuclidean") -> torch.Tensor:
    """``<plan, C(x, y)>`` with the plan detached: the EOT paper's loss (Algorithm 1, line 7)
    whose gradient flows through the cost only."""
    return (plan.detach() * cost_matrix(x, y, cost)).sum((-1, -2))
