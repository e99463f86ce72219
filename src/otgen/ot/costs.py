"""Ground costs and the chunked reductions shared by the OT solvers.

``cost_matrix`` builds the cost ``C_ij = c(x_i, y_j)`` of eq. (1) of the EOT paper
(``[M]_ij = ||x_i - y_j||^2``). The chunked reductions (:func:`reduce_chunks`,
:func:`lse_reduce`) evaluate row or column reductions of functions of ``C`` block by block, so
an ``n x m`` matrix is never stored: the online Sinkhorn mode and the semi-discrete solver use
them for point clouds too large for memory.

Every function accepts single clouds ``(n, d)`` or batches ``(B, n, d)``; a callable cost must
accept the same shapes, ``cost(x (..., n, d), y (..., m, d)) -> (..., n, m)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.utils.checks import as_points, same_dim

CostFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CostLike = str | CostFn
COSTS = ("sqeuclidean", "euclidean")

#: Default memory for one block of a chunked reduction (bytes). Above glibc's 32 MiB maximum
#: mmap threshold, so every block is mmapped and returned to the OS when freed: smaller
#: blocks are served from the heap, where small allocations split the freed blocks and the
#: heap grew by ~1.3 GiB over one 20k x 20k iteration.
CHUNK_BYTES = 48 * 2**20


def sqeuclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` as ``||x_i||^2 + ||y_j||^2 - 2 <x_i, y_j>``, clamped at 0.

    The expansion turns the cost into one matrix product (BLAS speed, no ``n x m x d``
    temporary) but suffers cancellation: for nearby points the rounded result can be slightly
    negative (about ``-1e-7 ||x||^2`` in float32). A negative cost has no meaning, would give a
    NaN under the square root of :func:`euclidean`, and would reward transport between
    coincident points, so it is clamped at 0.
    """
    x2 = (x * x).sum(-1, keepdim=True)  # (..., n, 1)
    y2 = (y * y).sum(-1).unsqueeze(-2)  # (..., 1, m)
    mm = torch.baddbmm if x.ndim == 3 else torch.addmm
    c = mm(y2, x, y.transpose(-1, -2), alpha=-2)  # one GEMM, broadcast |y|^2 as its bias
    c = c + x2 if c.requires_grad else c.add_(x2)
    return c.clamp_min(0) if c.requires_grad else c.clamp_min_(0)


def euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||``. The gradient of the square root is infinite at 0; where the clamped
    squared distance is 0 the gradient is set to 0 (a subgradient) instead of NaN."""
    d2 = sqeuclidean(x, y)
    zero = d2 <= 0
    return torch.sqrt(torch.where(zero, torch.ones_like(d2), d2)).masked_fill(zero, 0.0)


_NAMED: dict[str, CostFn] = {"sqeuclidean": sqeuclidean, "euclidean": euclidean}


def center(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate both clouds by their joint mean (detached): distances are unchanged, but the
    expansion in :func:`sqeuclidean` loses ``u ||x||^2`` to cancellation, so clouds far from
    the origin (offset 1e5 in float32: errors of ~1e3 in C) become exact to ``u ||x - y||^2``."""
    c = torch.cat([x.detach(), y.detach()], dim=-2).mean(-2, keepdim=True)
    return x - c, y - c


def reject_complex(t, name: str) -> None:
    """Complex inputs have no ordering or cost here: converting them would drop the
    imaginary part silently, so they are refused."""
    if t is None:
        return
    cplx = t.is_complex() if isinstance(t, torch.Tensor) else np.iscomplexobj(t)
    if cplx:
        raise OTGenError(f"{name} is complex; optimal transport needs real-valued inputs")


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(need: int, device: torch.device, what: str, *, hint: str) -> None:
    """Refuse an allocation of ``need`` bytes that cannot fit (estimated before allocating);
    ``hint`` says how to do without it."""
    avail = _available_bytes(device)
    if avail is not None and need > 0.9 * avail:
        raise OTGenError(
            f"{what} needs about {need / 2**30:.1f} GiB but {avail / 2**30:.1f} GiB are "
            f"available; {hint}"
        )


def resolve_cost(cost: CostLike) -> CostFn:
    """Name (``"sqeuclidean"``, ``"euclidean"``) or callable -> callable."""
    if callable(cost):
        return cost
    if isinstance(cost, str) and cost in _NAMED:
        return _NAMED[cost]
    raise OTGenError(f"unknown cost {cost!r}; choose one of: {', '.join(COSTS)} or a callable")


def cost_matrix(x, y, cost: CostLike = "sqeuclidean") -> torch.Tensor:
    """Cost matrix ``C_ij = c(x_i, y_j)``: ``(n, m)`` for ``(n, d)`` inputs, ``(B, n, m)`` for
    batches ``(B, n, d)``. Inputs are validated (finite, non-empty, same dimension)."""
    batched = getattr(x, "ndim", 2) == 3
    x = as_points(x, "x", batched=batched)
    y = as_points(y, "y", batched=batched)
    same_dim(x, y)
    if batched and x.shape[0] != y.shape[0]:
        raise OTGenError(f"x and y have different batch sizes ({x.shape[0]} vs {y.shape[0]})")
    c = resolve_cost(cost)(x, y)
    if c.shape[-2:] != (x.shape[-2], y.shape[-2]):
        raise OTGenError(f"cost returned shape {tuple(c.shape)}, expected (..., n, m)")
    return c


def default_chunk(
    n_other: int, *, batch: int = 1, itemsize: int = 4, budget: int = CHUNK_BYTES
) -> int:
    """Rows per block so that a ``(batch, rows, n_other)`` block fits in ``budget`` bytes."""
    return max(1, budget // max(1, batch * n_other * itemsize))


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of length ``size`` (the last one shorter)."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def reduce_chunks(
    x: torch.Tensor,
    y: torch.Tensor,
    fn: Callable[[torch.Tensor, slice], torch.Tensor],
    cost: CostLike = "sqeuclidean",
    *,
    dim: int = -1,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Apply a reduction to the cost matrix block by block, never storing all of it.

    ``dim=-1``: blocks of rows, ``fn(C[..., rows, :], rows) -> (..., len(rows))`` reduces over
    ``j``; results are concatenated to ``(..., n)``. ``dim=-2``: blocks of columns,
    ``fn(C[..., :, cols], cols) -> (..., len(cols))`` reduces over ``i``; result ``(..., m)``.
    """
    cost_fn = resolve_cost(cost)
    if dim not in (-1, -2):
        raise OTGenError(f"dim must be -1 (reduce over y) or -2 (reduce over x), got {dim}")
    batch = x.shape[0] if x.ndim == 3 else 1
    n_split, n_other = (x.shape[-2], y.shape[-2]) if dim == -1 else (y.shape[-2], x.shape[-2])
    size = chunk_size or default_chunk(n_other, batch=batch, itemsize=x.element_size())
    out = []
    for sl in iter_chunks(n_split, size):
        block = cost_fn(x[..., sl, :], y) if dim == -1 else cost_fn(x, y[..., sl, :])
        out.append(fn(block, sl))
    return torch.cat(out, dim=-1)


def lse_reduce(
    x: torch.Tensor,
    y: torch.Tensor,
    h: torch.Tensor,
    eps: float,
    cost: CostLike = "sqeuclidean",
    *,
    dim: int = -1,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Chunked log-sum-exp of ``h - C / eps``, the soft-min at the heart of Sinkhorn.

    ``dim=-1``: ``out_i = log sum_j exp(h_j - C_ij / eps)`` with ``h`` indexed by ``y``;
    ``dim=-2``: ``out_j = log sum_i exp(h_i - C_ij / eps)`` with ``h`` indexed by ``x``.
    ``torch.logsumexp`` subtracts the block maximum before exponentiating, so no overflow for
    any ``eps > 0``; blocks are independent along the kept axis, so chunking is exact.
    """
    inv = 1.0 / eps
    hb = h.unsqueeze(-2) if dim == -1 else h.unsqueeze(-1)

    floor = math.log(torch.finfo(x.dtype).tiny) + 0.5

    def fn(c: torch.Tensor, _: slice) -> torch.Tensor:
        if c.requires_grad or hb.requires_grad:
            return torch.logsumexp(hb - c * inv, dim=dim)
        # No gradient: log-sum-exp in place on the block, so each block is the only large
        # allocation (no temporaries: steady memory, no heap fragmentation).
        z = c.mul_(-inv).add_(hb) if c._base is None else hb - c * inv
        mx = z.amax(dim=dim, keepdim=True).nan_to_num_(0.0, 0.0, 0.0)  # all -inf row: 0
        # Terms below the smallest normal float carry no mass; flooring them avoids slow
        # denormal arithmetic in exp.
        z.sub_(mx).clamp_(min=floor).exp_()
        return z.sum(dim).log_().add_(mx.squeeze(dim))

    return reduce_chunks(x, y, fn, cost, dim=dim, chunk_size=chunk_size)


# ------------------------------------------------------- fused online kernel (squared cost)

#: Reductions with at least this many kernel entries (and a low dimension) use the compiled
#: fused kernel below; smaller ones are not worth its one-off compilation (~20 s on 2 cores).
COMPILE_MIN_ENTRIES = 1 << 26
#: The fused kernel recomputes ``|x_i - y_j|^2`` coordinate by coordinate: cheap for d <= 8.
COMPILE_MAX_DIM = 8
#: Fixed rows per compiled block (the last block is padded): one compilation per problem.
COMPILE_ROWS = 2048
#: Exponents are clamped here: exp(-87) ~ 1.6e-38 is float32's smallest normal, so no
#: denormal (slow) arithmetic; the floor adds at most m e^-87 of mass, negligible next to the
#: accepted sums (>= e^-60, see ``_SHIFT_OK``).
_EXP_FLOOR = -87.0
#: A row whose shifted sum leaves [e^-60, e^60] had a poor shift: redone exactly.
_SHIFT_OK = 60.0


def _shifted_lse_rows(x, y, h, inv, shift):
    """``log sum_j exp(h_j - |x_i - y_j|^2 inv)`` for a block of rows, stabilised by a given
    per-row ``shift`` (a close estimate of the result) instead of the row maximum.

    Written for ``torch.compile``: the broadcast difference, the square, the sum over the few
    coordinates, the clamp, the exp and the row sum fuse into one loop over (i, j), so no
    block is ever materialised and each kernel entry costs one exp plus a handful of flops.
    Using a known shift (one pass) instead of the block maximum (two passes) is what makes
    a single pass possible; rows where the shift was poor are detected and redone exactly.
    The difference form ``(x - y)^2`` is also exact where the GEMM expansion cancels.
    """
    c = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    z = (h[None, :] - c * inv - shift[:, None]).clamp_min(_EXP_FLOOR)
    return torch.exp(z).sum(1).log() + shift


def _shifted_cost_rows(x, y, h, inv, shift):
    """``sum_j exp(h_j - C_ij inv - shift_i) C_ij``: with ``shift`` the row's exact
    log-sum-exp, ``exp(f_i / eps + shift_i)`` times this is the row's share of ``<pi, C>``."""
    c = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    z = (h[None, :] - c * inv - shift[:, None]).clamp_min(_EXP_FLOOR)
    return (torch.exp(z) * c).sum(1)


_COMPILED: dict[str, Callable | None] = {}


def _compiled_kernel(fn: Callable = _shifted_lse_rows) -> Callable | None:
    """The compiled kernel, or None where ``torch.compile`` is unavailable (no compiler)."""
    if fn.__name__ not in _COMPILED:
        try:
            k = torch.compile(fn, dynamic=False)
            one = torch.zeros(COMPILE_ROWS, 1)
            k(one, one[:8], one[:8, 0], torch.tensor(1.0), one[:, 0])  # compile now
            _COMPILED[fn.__name__] = k
        except Exception:  # no C++ toolchain, unsupported platform: eager blocks instead
            _COMPILED[fn.__name__] = None
    return _COMPILED[fn.__name__]


def fused_lse_applies(x: torch.Tensor, y: torch.Tensor, cost: CostLike, need_grad: bool) -> bool:
    """Whether :func:`lse_reduce` can take the compiled path for these inputs."""
    return (
        not need_grad
        and resolve_cost(cost) is sqeuclidean
        and x.device.type == "cpu"
        and x.shape[-1] <= COMPILE_MAX_DIM
        and x.shape[-2] * y.shape[-2] >= COMPILE_MIN_ENTRIES
        and _compiled_kernel() is not None
    )


def fused_lse(
    x: torch.Tensor,
    y: torch.Tensor,
    h: torch.Tensor,
    eps: float,
    shift: torch.Tensor,
    *,
    dim: int = -1,
    kernel: Callable | None = None,
    cost_sums: bool = False,
) -> torch.Tensor:
    """:func:`lse_reduce` for the squared Euclidean cost through the fused kernel, batched
    ``(B, n, d)`` inputs, with ``shift`` ``(B, n_kept)`` an estimate of the result (Sinkhorn
    passes ``log a - f / eps`` from the previous iterate). ``kernel`` defaults to the
    compiled one; tests pass the eager function. ``cost_sums``: return the rows' sums of
    ``exp(h_j - C_ij / eps - shift_i) C_ij`` instead (``shift`` must then be exact)."""
    kernel = kernel or _compiled_kernel(_shifted_cost_rows if cost_sums else _shifted_lse_rows)
    if dim == -2:  # C_ij(x, y) = C_ji(y, x): reduce over x as rows of the swapped problem
        x, y = y, x
    inv = torch.tensor(1.0 / eps, dtype=x.dtype)
    out = torch.empty_like(shift)
    rows = COMPILE_ROWS
    for b in range(x.shape[0]):
        xb = x[b]
        for lo in range(0, xb.shape[0], rows):
            hi = min(lo + rows, xb.shape[0])
            xs, ss = xb[lo:hi], shift[b, lo:hi]
            if hi - lo < rows:  # pad: the compiled kernel has one fixed shape
                xs = torch.cat([xs, xs.new_zeros(rows - (hi - lo), xs.shape[1])])
                ss = torch.cat([ss, ss.new_zeros(rows - (hi - lo))])
            out[b, lo:hi] = kernel(xs, y[b], h[b], inv, ss)[: hi - lo]
    if cost_sums:
        return out
    # Rows whose shift was far off (sum under- or overflowed): exact two-pass reduction.
    bad = ~torch.isfinite(out) | ((out - shift).abs() > _SHIFT_OK)
    for b in bad.any(-1).nonzero().flatten().tolist():
        idx = bad[b].nonzero().flatten()
        out[b, idx] = lse_reduce(x[b, idx], y[b], h[b], eps, sqeuclidean)
    return out
