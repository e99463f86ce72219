"""Semi-discrete optimal transport by Alexandrov's variational principle (AE-OT, §4).

A continuous source μ (uniform on the cube ``[-1/2, 1/2]^d``, the papers' choice, or the
standard Gaussian) is transported to a discrete target ``ν = Σ_i b_i δ_{y_i}`` (eq. 17) by the
gradient of the piecewise linear Brenier potential (eq. 19)

    u_h(x) = max_i ⟨x, y_i⟩ + h_i ,

whose cells ``W_i(h) = {x : argmax_j ⟨x, y_j⟩ + h_j = i}`` form a power diagram (eqs. 20, 32).
The heights ``h`` minimise the convex energy E(h) (eq. 23), whose gradient is the cell-measure
mismatch (eq. 26)

    ∇E(h) = w(h) − b ,   w_i(h) = μ(W_i(h)),

and whose Hessian is the graph Laplacian of facet measures (eq. 27)

    ∂w_i/∂h_j = −μ(W_i ∩ W_j)/‖y_i − y_j‖ (i ≠ j),   ∂w_i/∂h_i = −Σ_{j≠i} ∂w_i/∂h_j .

Cell measures are Monte Carlo / quasi-Monte Carlo estimates (scrambled, seeded Sobol points,
*fresh* points at every iteration), computed in chunks over samples and targets as a matrix
product + running argmax, so memory stays bounded for 10^5 targets. When a
``torch.distributed`` process group is initialised, the samples of one step are split into
chunks dealt round-robin to the ranks and the integer cell counts are summed with
``all_reduce``: the result is bit-identical to one process using the same total samples.

Optimisers (``method=``):

``"adam"``      the papers' reference: Adam (with bias correction) on h, a sample size that
                doubles when ‖∇E‖₂ has not improved for ``patience`` steps; stops on the
                (conservative) one-batch estimate of the L1 marginal error or on ``grad_tol``.
``"averaged"``  Adam iterates averaged over windows of doubling length, restarted from the
                window average with a halved step (Polyak–Ruppert averaging, as in averaged
                SGD for stochastic semi-dual OT, Genevay et al. 2016). The mean of the window's
                gradients is, to first order, the gradient at the mean iterate, estimated with
                all of the window's samples: the stopping test is free and far less noisy.
``"newton"``    damped Newton with the Hessian of eq. (27) estimated from the same pass (pairs
                of best/second-best cells whose score gap is below a slab width δ give
                ``μ(W_i ∩ W_j)/‖y_i − y_j‖ ≈ #{gap < δ}/(N δ)``), the sample size doubling
                when the step no longer reduces the error; for low dimension / few targets.

Convention: h is normalised to mean zero (E is invariant to adding a constant to h).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from otgen.errors import CheckpointError, NonFiniteError, OTGenError
from otgen.ot.costs import reject_complex
from otgen.utils.checks import (
    ArrayLike,
    as_points,
    as_tensor,
    as_weights,
    check_choice,
    check_int,
    check_positive,
    same_dim,
)
from otgen.utils.device import resolve_device
from otgen.utils.io import atomic_write

SOURCES: tuple[str, ...] = ("uniform", "gaussian")
METHODS: tuple[str, ...] = ("adam", "averaged", "newton")
DUPLICATES: tuple[str, ...] = ("error", "merge")
INITS: tuple[str, ...] = ("voronoi", "zeros")

# Elements of one (samples x targets) score block: 2^21 floats = 8 MiB keeps the block in cache
# on CPU and memory bounded on GPU whatever n is.
_BLOCK_ELEMENTS = 1 << 21
# Rows x all-targets scores of the k = 1 assignment (8 MiB, at least 128 rows): long GEMMs
# whose output the argmax re-reads from cache rather than memory (issue 14: 2 cores with 1 MiB
# L2 each; 2^23 elements measured 0.26 of the GEMM rate at n = 10,000, d = 32, 2^21 0.74).
_ROW_BLOCK_ELEMENTS = 1 << 21
_MIN_ROWS = 128
# Width of the blocks of the two-level argmax (_row_max): measured best of 16-256.
_ARGMAX_BLOCK = 128
_NEWTON_MAX_TARGETS = 4096  # Newton keeps a dense n x n Hessian


# --------------------------------------------------------------------------------------------
# Source measure: seeded (quasi-)random streams, sharded over ranks
# --------------------------------------------------------------------------------------------
class SourceSampler:
    """Stream of source samples ``x ~ μ``: scrambled Sobol points (``qmc``) or pseudo-random.

    Consecutive calls return *fresh* points (the Sobol sequence continues), so successive
    iterations never reuse the same sample set. Under ``torch.distributed`` every rank walks
    the same stream and skips (``fast_forward``) the chunks owned by other ranks.
    """

    def __init__(
        self, dim: int, source: str = "uniform", *, seed: int = 0, qmc: bool = True
    ) -> None:
        self.dim = check_int(dim, "dim")
        self.source = check_choice(source, "source", SOURCES)
        self.qmc = bool(qmc)
        self.seed = int(seed)
        if self.qmc:
            if dim > torch.quasirandom.SobolEngine.MAXDIM:
                raise OTGenError(f"qmc supports dim <= {torch.quasirandom.SobolEngine.MAXDIM}")
            self._engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=self.seed)
        else:
            self._gen = torch.Generator().manual_seed(self.seed)

    def _uniform01(self, m: int, skip: bool) -> torch.Tensor | None:
        if self.qmc:
            if skip:
                self._engine.fast_forward(m)
                return None
            return self._engine.draw(m, dtype=torch.float64)
        u = torch.rand(m, self.dim, generator=self._gen, dtype=torch.float64)
        return None if skip else u

    def draw(self, m: int, *, skip: bool = False) -> torch.Tensor | None:
        """``m`` samples (float64, CPU), or None after advancing the stream when ``skip``."""
        u = self._uniform01(m, skip)
        if u is None:
            return None
        if self.source == "uniform":
            return u - 0.5  # the papers' cube [-1/2, 1/2]^d
        # Inverse normal CDF; clamp so the rare Sobol point at exactly 0 or 1 stays finite.
        u = u.clamp(1e-12, 1 - 1e-12)
        return math.sqrt(2.0) * torch.erfinv(2 * u - 1)

    def chunks(
        self, n_samples: int, chunk: int, rank: int = 0, world: int = 1
    ) -> Iterator[torch.Tensor]:
        """Yield this rank's chunks of the next ``n_samples`` points (chunk k -> rank k % world)."""
        start, k = 0, 0
        while start < n_samples:
            m = min(chunk, n_samples - start)
            mine = k % world == rank
            x = self.draw(m, skip=not mine)
            if mine:
                yield x
            start += m
            k += 1


def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if _dist()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# --------------------------------------------------------------------------------------------
# Chunked power-diagram queries: the only O(N n d) work
# --------------------------------------------------------------------------------------------
def _target_blocks(n: int, rows: int) -> int:
    return max(1, min(n, _BLOCK_ELEMENTS // max(rows, 1)))


def top_scores(
    x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest supporting planes ``⟨x, y_i⟩ + h_i`` (eq. 18) at each row of ``x``.

    Returns (scores, indices), both (m, k), sorted in decreasing order. Targets are processed
    in blocks with a running top-k, so memory is O(m (k + block)) whatever n is.
    """
    m, n = x.shape[0], y.shape[0]
    k = min(k, n)
    block = _target_blocks(n, m)
    best_s = best_i = None
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        # addmm fuses the height into the product: one pass over the (m, block) scores.
        s = torch.addmm(h[lo:hi], x, y[lo:hi].T)
        if k == 1:
            vs, vi = (v[:, None] for v in _row_max(s))
        else:
            vs, vi = s.topk(min(k, hi - lo), dim=1)
        vi = vi + lo
        if best_s is None:
            best_s, best_i = vs, vi
        elif k == 1:
            better = vs > best_s  # ties keep the lower index, like a global argmax
            best_s = torch.where(better, vs, best_s)
            best_i = torch.where(better, vi, best_i)
        else:
            cat_s, cat_i = torch.cat([best_s, vs], 1), torch.cat([best_i, vi], 1)
            best_s, pos = cat_s.topk(min(k, cat_s.shape[1]), dim=1)
            best_i = cat_i.gather(1, pos)
    return best_s, best_i


@dataclass
class CellStats:
    """One Monte Carlo pass: cell counts and optional centroid sums / Hessian slab counts."""

    counts: torch.Tensor  # (n,) int64, samples per cell
    n_samples: int
    sums: torch.Tensor | None = None  # (n, d) float64, Σ x over each cell (centroids)
    pair_counts: torch.Tensor | None = None  # (n, n) float64, top-2 pairs with gap < delta
    delta: float | None = None
    sparse_pairs: tuple[torch.Tensor, torch.Tensor] | None = None  # (i*n + j, slab), large n
    seen: torch.Tensor | None = None  # (n, n) all top-2 pairs (adjacency), dense case

    def pair_list(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Adjacent cells (i < j, seen as best/second-best pair) and their slab counts."""
        n = self.counts.shape[0]
        if self.pair_counts is not None:
            adj = torch.triu(self.seen + self.seen.T, 1)
            i, j = adj.nonzero(as_tuple=True)
            return i, j, (self.pair_counts + self.pair_counts.T)[i, j]
        lin, cnt = self.sparse_pairs
        a, b = lin // n, lin % n
        key = torch.minimum(a, b) * n + torch.maximum(a, b)
        key, inv = torch.unique(key, return_inverse=True)
        total = torch.zeros(len(key), dtype=torch.float64, device=cnt.device)
        total.index_add_(0, inv, cnt)
        return key // n, key % n, total

    @property
    def measures(self) -> torch.Tensor:
        return self.counts.double() / self.n_samples

    def centroids(self) -> torch.Tensor:
        """Cell centroids (empty cells get NaN: they have none)."""
        c = self.counts.double().clamp_min(1)[:, None]
        out = self.sums / c
        out[self.counts == 0] = float("nan")
        return out


def _row_max(s: torch.Tensor, block: int = _ARGMAX_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """``s.max(dim=1)`` (values, first index of the max) in two levels: block maxima, then the
    argmax inside each row's winning block.

    Why: on CPU ``argmax`` along rows runs ~1 G elements/s (it tracks an index per element)
    while ``amax`` is a vectorised reduction at ~12 G elements/s; at d = 32 the plain argmax
    cost 1.5x the GEMM that produced the scores. The first block holding the row maximum
    contains its first occurrence, so ties resolve exactly as ``torch.argmax`` does."""
    rows, n = s.shape
    q = n // block
    if q < 2:
        return s.max(dim=1)
    maxima = s[:, : q * block].view(rows, q, block).amax(-1)  # a view: rows keep stride n
    if q * block < n:
        maxima = torch.cat([maxima, s[:, q * block :].amax(-1, keepdim=True)], 1)
    values, winner = maxima.max(dim=1)
    start = winner * block
    # Positions past the last column (a short tail block) repeat column n - 1, which cannot
    # come first among equal values, so the within-block argmax is unaffected.
    cols = (start[:, None] + torch.arange(block, device=s.device)).clamp_max_(n - 1)
    return values, start + s.gather(1, cols).argmax(1)


def _assign_into(
    x: torch.Tensor, yt: torch.Tensor, h: torch.Tensor, buf: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """``out[r] = argmax_i ⟨x_r, y_i⟩ + h_i`` (eq. 22) with ``yt = yᵀ`` (d, n) float32.

    One addmm over *all* n targets per block of ``len(buf)`` rows, written into the reused
    buffer (no allocation, the GEMM long in n) and reduced by :func:`_row_max` while the block
    is still in cache (issue 14, benchmarks/results/semidiscrete_throughput.md)."""
    rows = buf.shape[0]
    for lo in range(0, x.shape[0], rows):
        hi = min(x.shape[0], lo + rows)
        s = buf[: hi - lo]
        torch.addmm(h, x[lo:hi], yt, out=s)
        out[lo:hi] = _row_max(s)[1]
    return out


def cell_statistics(
    y: torch.Tensor,
    h: torch.Tensor,
    sampler: SourceSampler,
    n_samples: int,
    *,
    chunk: int | None = None,
    centroids: bool = False,
    delta: float | None = None,
) -> CellStats:
    """Estimate the cell measures w(h) (eq. 21) from ``n_samples`` fresh source samples.

    ``centroids``: also accumulate Σ x per cell. ``delta``: also count, for each pair (i, j)
    = (best, second-best) cell, samples with score gap < delta (Hessian eq. 27, slab estimate).
    Under ``torch.distributed`` the sums are all-reduced (counts are integers, so exact).
    """
    n, d = y.shape
    device = y.device
    rank, world = _dist()
    chunk = chunk or max(256, min(65536, _BLOCK_ELEMENTS // max(1, min(n, 4096))))
    counts = torch.zeros(n, dtype=torch.int64, device=device)
    sums = torch.zeros(n, d, dtype=torch.float64, device=device) if centroids else None
    dense = n <= _NEWTON_MAX_TARGETS  # n x n counts; beyond, a sparse list (single process)
    if delta and not dense and world > 1:
        raise OTGenError(
            f"facet statistics under torch.distributed need n <= {_NEWTON_MAX_TARGETS}"
        )
    pairs = torch.zeros(n * n if dense else 0, dtype=torch.float64, device=device)
    seen = torch.zeros(n * n if dense else 0, dtype=torch.float64, device=device)
    sparse: list[torch.Tensor] = []
    sparse_w: list[torch.Tensor] = []
    y32, h32 = y.float(), h.float()
    k = 2 if delta else 1
    # All targets, rows at a time; at large n more rows amortise the GEMM's packing of yᵀ (n·d
    # floats per call): n = 60,000, d = 64 went from 0.44 to 0.57 of the GEMM rate at ~n/128.
    rows = min(chunk, max(_MIN_ROWS, _ROW_BLOCK_ELEMENTS // n, n // 128))
    fast = k == 1 and rows * n <= 4 * _ROW_BLOCK_ELEMENTS
    if fast:
        yt = y32.T.contiguous()
        buf = torch.empty(rows, n, device=device)
        cells = torch.empty(chunk, dtype=torch.int64, device=device)
    for xc in sampler.chunks(n_samples, chunk, rank, world):
        x = xc.to(device)
        if fast:
            own = _assign_into(x.float(), yt, h32, buf, cells[: x.shape[0]])
        else:
            s, idx = top_scores(x.float(), y32, h32, k)
            own = idx[:, 0]
        counts += torch.bincount(own, minlength=n)
        if sums is not None:
            sums.index_add_(0, own, x)
        if delta:
            # Every sample's (best, second-best) pair is a facet (adjacent cells); those within
            # the slab of width δ also measure it.
            near = ((s[:, 0] - s[:, 1]) < delta).double()
            lin = own * n + idx[:, 1]
            if dense:
                pairs += torch.bincount(lin, weights=near, minlength=n * n)
                seen += torch.bincount(lin, minlength=n * n).double()
            else:
                sparse.append(lin)
                sparse_w.append(near)
    _all_reduce(counts)
    if sums is not None:
        _all_reduce(sums)
    if not delta:
        return CellStats(counts, int(n_samples), sums)
    if dense:
        pairs, seen = _all_reduce(pairs).view(n, n), _all_reduce(seen).view(n, n)
        return CellStats(counts, int(n_samples), sums, pairs, delta, seen=seen)
    lin, inv = torch.unique(torch.cat(sparse), return_inverse=True)
    slab = torch.zeros(len(lin), dtype=torch.float64, device=device)
    slab.index_add_(0, inv, torch.cat(sparse_w))
    return CellStats(counts, int(n_samples), sums, None, delta, (lin, slab))


def assign(x: ArrayLike, y: ArrayLike, h: ArrayLike) -> torch.Tensor:
    """Cell index ``argmax_i ⟨x, y_i⟩ + h_i`` of each row of ``x`` (the map of eq. 22)."""
    yt = as_points(y, "y")
    xt = as_points(x, "x", device=yt.device)
    same_dim(xt, yt)
    ht = as_tensor(h, "h", device=yt.device)
    if ht.shape != (yt.shape[0],):
        raise OTGenError(f"h must have shape ({yt.shape[0]},), got {tuple(ht.shape)}")
    rows = max(256, _BLOCK_ELEMENTS // max(1, min(yt.shape[0], 4096)))
    out = [
        top_scores(xt[i : i + rows].float(), yt.float(), ht.float())[1][:, 0]
        for i in range(0, xt.shape[0], rows)
    ]
    return torch.cat(out)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------
def _cross_mean(u: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs k ≠ l of ⟨u_k, u_l⟩: (|Σ_k u_k|² − Σ_k |u_k|²) / (K (K − 1))."""
    k = u.shape[0]
    return ((u.sum(0) ** 2).sum() - (u**2).sum()) / (k * (k - 1))


@dataclass(frozen=True)
class MarginalCheck:
    """:meth:`SemiDiscreteResult.marginal_check`: an independent i.i.d. look at Σ|w_i − b_i|."""

    n_samples: int
    l1_iid: float  # plain Σ|ŵ_i − b_i|, biased upwards by about its floor
    l1_iid_floor: float  # sqrt(2n / (πN)): what l1_iid reads when the true error is 0
    l2_sq: float  # unbiased estimate of Σ (w_i − b_i)²
    l2_sq_se: float  # its jackknife standard error
    l1_bound: float  # sqrt(n (l2_sq + 2 se)) >= Σ|w_i − b_i| (Cauchy–Schwarz), ~97.5%


@dataclass(frozen=True)
class SemiDiscreteResult:
    """Solved semi-discrete OT problem (frozen; tensors are shared, not copied: do not mutate).

    ``marginal_error`` is the solver's estimate of the L1 marginal error Σ_i |w_i(h) − b_i|
    at the returned h (see the module docstring per method); ``grad_norm`` the matching
    ‖∇E‖₂ estimate. ``history`` holds (iteration, estimated L1 error, samples per step).
    """

    h: torch.Tensor  # (n,) float64, mean zero
    y: torch.Tensor  # (n, d) targets
    b: torch.Tensor  # (n,) target weights
    source: str
    method: str
    marginal_error: float
    grad_norm: float
    n_iter: int
    n_samples: int  # source samples drawn in total (all ranks)
    time_s: float
    converged: bool
    seed: int
    history: tuple[tuple[int, float, int], ...] = field(default=(), repr=False)

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def dim(self) -> int:
        return self.y.shape[1]

    def potential(self, x: ArrayLike) -> torch.Tensor:
        """Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i (eq. 19)."""
        xt = self._points(x)
        return top_scores(xt.double(), self.y.double(), self.h.double())[0][:, 0]

    def assign(self, x: ArrayLike) -> torch.Tensor:
        """Cell index of each new source sample."""
        return assign(self._points(x), self.y, self.h)

    def transport(self, x: ArrayLike) -> torch.Tensor:
        """The semi-discrete OT map ∇u_h(x) = y_{cell(x)} (eq. 22)."""
        return self.y[self.assign(x)]

    def cell_measures(
        self, n_samples: int = 1_000_000, *, seed: int = 12345, qmc: bool = True
    ) -> torch.Tensor:
        """Independent (quasi-)Monte Carlo estimate of w(h) with a fresh seeded stream."""
        sampler = SourceSampler(self.dim, self.source, seed=seed, qmc=qmc)
        return cell_statistics(self.y, self.h, sampler, check_int(n_samples, "n_samples")).measures

    def l1_error(self, n_samples: int = 1_000_000, *, seed: int = 12345, qmc: bool = True) -> float:
        """Independent estimate of Σ|w_i − b_i|; with i.i.d. samples (``qmc=False``) it is
        biased upwards by about sqrt(2n / (π N)), the Monte Carlo noise floor."""
        w = self.cell_measures(n_samples, seed=seed, qmc=qmc)
        return float((w - self.b.to(w)).abs().sum())

    def marginal_check(
        self, n_samples: int = 2_000_000, *, seed: int = 987_654, batches: int = 8
    ) -> MarginalCheck:
        """Independent i.i.d. check of the marginal error that can certify small errors.

        The plain estimate Σ|ŵ_i − b_i| cannot go below its noise floor ≈ sqrt(2n / (πN)):
        at n = 60,000 certifying 0.03 that way needs ~4·10⁷ samples. Instead, ``batches``
        independent i.i.d. batches give cell frequencies ŵ⁽ᵏ⁾, and for k ≠ l

            E[Σ_i (ŵ⁽ᵏ⁾_i − b_i)(ŵ⁽ˡ⁾_i − b_i)] = Σ_i (w_i − b_i)²

        exactly (independent factors: no noise term to subtract). The mean over all pairs is
        an unbiased ``l2_sq`` with a jackknife s.e. over batches, whose noise ≈ sqrt(2/n) / N
        falls like 1/N rather than 1/sqrt(N). Cauchy–Schwarz turns it into an upper bound on
        the L1 error, ``l1_bound = sqrt(n · (l2_sq + 2 s.e.))`` (one-sided, ~97.5%): tight
        when the error is spread over the cells, conservative when it is concentrated.
        """
        n_samples, batches = check_int(n_samples, "n_samples"), check_int(batches, "batches")
        if batches < 2 or n_samples < batches:
            raise OTGenError(f"need batches >= 2 and n_samples >= batches (got {batches}, "
                             f"{n_samples})")  # fmt: skip
        m = n_samples // batches
        b = self.b.double().cpu()
        # (batches, n): per-batch deviations ŵ - b, each batch its own i.i.d. stream
        u = torch.stack([self.cell_measures(m, seed=seed + k, qmc=False).cpu() - b
                         for k in range(batches)])  # fmt: skip
        total, est = u.sum(0), _cross_mean(u)
        jack = torch.stack([_cross_mean(torch.cat([u[:k], u[k + 1 :]])) for k in range(batches)])
        se = math.sqrt((batches - 1) / batches * float(((jack - jack.mean()) ** 2).sum()))
        l1_iid = float((total / batches).abs().sum())
        return MarginalCheck(
            n_samples=m * batches, l1_iid=l1_iid,
            l1_iid_floor=math.sqrt(2 * self.n / (math.pi * m * batches)),
            l2_sq=float(est), l2_sq_se=se,
            l1_bound=math.sqrt(self.n * max(0.0, float(est) + 2 * se)),
        )  # fmt: skip

    def _points(self, x: ArrayLike) -> torch.Tensor:
        xt = as_points(x, "x", device=self.y.device)
        same_dim(xt, self.y, "x", "targets")
        return xt

    # -- persistence: safetensors for tensors, JSON (in the safetensors header) for the rest --
    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        meta = {k: v for k, v in asdict(self).items() if k not in ("h", "y", "b")}
        meta["format"] = "otgen.semidiscrete/1"
        tensors = {
            "h": self.h.detach().cpu().contiguous(),
            "y": self.y.detach().cpu().contiguous(),
            "b": self.b.detach().cpu().contiguous(),
        }
        header = {"otgen": json.dumps(meta)}
        return atomic_write(path, lambda p: save_file(tensors, str(p), metadata=header))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SemiDiscreteResult:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no semi-discrete OT result at {path}")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                meta = json.loads((fh.metadata() or {})["otgen"])
                tensors = {k: fh.get_tensor(k) for k in ("h", "y", "b")}
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise CheckpointError(f"{path}: not a semi-discrete OT result ({exc})") from None
        if meta.pop("format", None) != "otgen.semidiscrete/1":
            raise CheckpointError(f"{path}: unknown format")
        meta["history"] = tuple(tuple(r) for r in meta.get("history", ()))
        dev = resolve_device(device)
        return cls(**{k: v.to(dev) for k, v in tensors.items()}, **meta)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------
def _prepare(
    y: ArrayLike, b: ArrayLike | None, duplicates: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate targets/weights. Duplicate targets have no well-defined cells (their planes
    coincide up to h), so they are an error, or merged into one target with summed weight."""
    reject_complex(y, "y")
    reject_complex(b, "b")
    yt = as_points(y, "y", device=device).double()
    if b is not None:
        bt = as_tensor(b, "b", device=device).double()
        if bt.ndim != 1:
            raise OTGenError(f"b must be a vector, got shape {tuple(bt.shape)}")
        if bool((bt == 0).any()):
            raise OTGenError("b has zero entries: drop those targets (their cells would vanish)")
    bt = as_weights(b, yt.shape[0], "b", like=yt)
    uniq, inverse = torch.unique(yt, dim=0, return_inverse=True)
    if uniq.shape[0] < yt.shape[0]:
        if duplicates == "error":
            raise OTGenError(
                f"y has {yt.shape[0] - uniq.shape[0]} duplicate targets; "
                "merge them (duplicates='merge') or remove them"
            )
        bt = torch.zeros(uniq.shape[0], dtype=bt.dtype, device=device).index_add_(0, inverse, bt)
        yt = uniq
    return yt, bt


# --------------------------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------------------------
@dataclass
class _Adam:
    """Adam with bias correction (the reference implementation omits it; we do not)."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    m: torch.Tensor | None = None
    v: torch.Tensor | None = None
    t: int = 0

    def step(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.m is None:
            self.m, self.v = torch.zeros_like(g), torch.zeros_like(g)
        self.t += 1
        self.m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        h = h - self.lr * m_hat / (v_hat.sqrt() + self.eps)
        return h - h.mean()


class _Run:
    """Bookkeeping shared by the optimisers: sampling, counting, history, stopping."""

    def __init__(self, y, b, sampler, chunk, max_iter, time_limit, callback):
        self.y, self.b, self.sampler, self.chunk = y, b, sampler, chunk
        self.max_iter, self.time_limit, self.callback = max_iter, time_limit, callback
        self.t0 = time.perf_counter()
        self.n_drawn = 0
        self.history: list[tuple[int, float, int]] = []

    def stats(self, h: torch.Tensor, n_samples: int, **kw) -> CellStats:
        self.n_drawn += n_samples
        return cell_statistics(self.y, h, self.sampler, n_samples, chunk=self.chunk, **kw)

    def grad(self, h: torch.Tensor, n_samples: int) -> torch.Tensor:
        g = self.stats(h, n_samples).measures - self.b
        if not bool(torch.isfinite(g).all()):
            raise NonFiniteError("semi-discrete OT: non-finite cell measures")
        return g

    def log(self, it: int, err: float, n_samples: int, h: torch.Tensor) -> None:
        self.history.append((it, err, n_samples))
        if self.callback is not None:
            self.callback(it, err, h)

    def out_of_time(self) -> bool:
        return self.time_limit is not None and time.perf_counter() - self.t0 > self.time_limit


def _solve_adam(run: _Run, h, *, lr, n_samples, patience, grow, tol, grad_tol, max_samples):
    """The papers' reference loop (AE-OT §4 + reference-notes): Adam on fresh MC gradients."""
    opt = _Adam(lr)
    best, stall, it, err, gnorm = math.inf, 0, 0, math.inf, math.inf
    for it in range(run.max_iter + 1):
        g = run.grad(h, n_samples)
        err, gnorm = float(g.abs().sum()), float(g.norm())
        run.log(it, err, n_samples, h)
        if (tol is not None and err <= tol) or (grad_tol is not None and gnorm < grad_tol):
            return h, err, gnorm, it, True
        if it == run.max_iter or run.out_of_time():
            break
        if gnorm < best:
            best, stall = gnorm, 0
        else:
            stall += 1
            if stall >= patience and n_samples < max_samples:
                n_samples, stall = min(max_samples, n_samples * grow), 0
        h = opt.step(h, g)
    return h, err, gnorm, it, False


def _solve_averaged(run: _Run, h, *, lr, n_samples, window, tol, lr_decay, max_samples):
    """Adam iterates averaged over windows of doubling length (Polyak–Ruppert restarts).

    Within a window (constant step) the iterates h_t jitter around the optimum; the mean h̄
    of the window's tail (after a burn-in that absorbs the transient: half of the first
    window, a quarter of later ones) carries the noise of all those samples. Each window
    restarts from h̄ with a smaller step, so the jitter shrinks; inside a restarted window the
    running average is tested against ``tol`` four times. Once a window other than the first
    ends stationary (within 3× tol), the average is no longer restarted: later windows add
    their iterates to it after a short burn-in (an eighth: Adam's moments settle after the
    restart) — Polyak–Ruppert over every stationary step; the smaller step only tames the
    jitter. At n = 2,000, d = 32, 13k samples per step, tol 0.0154, three seeds: 768 steps
    instead of 1,824, certified bounds (``marginal_check``, 4M samples) 0.015-0.019 at
    estimates of 0.0145 (before: 0.015-0.016 at 0.0137, an overshoot).

    Error estimate at h̄, per cell: ∇E(h̄) ≈ mean_t ∇E(h_t) = ḡ − ε̄, where ḡ is the mean of the
    batch gradients and ε̄ their mean sampling noise. ḡ alone is optimistic (the optimiser
    cancels the noise it has seen: Σ_t g_t telescopes to the drift of h), so the noise is
    added back from the observed spread of the g_t: E|e_i| ≈ sqrt(ḡ_i² + (2/π) s_i²/T).
    """
    if run.max_iter == 0:  # no step allowed: the start point with a one-batch estimate
        g = run.grad(h, n_samples)
        err = float(g.abs().sum())
        run.log(0, err, n_samples, h)
        return h, err, float(g.norm()), 0, tol is not None and err <= tol
    opt = _Adam(lr)
    it, length, prev_err = 0, window, math.inf
    best: tuple[torch.Tensor, float, float] | None = None  # (h̄, err, ‖e‖₂) of a full window
    carried = None  # tail sums of the stationary windows so far (see below)
    while True:
        first = best is None  # no full window yet (a window cut short returns)
        if carried is None:
            h_sum, g_sum, g_sq = torch.zeros_like(h), torch.zeros_like(h), torch.zeros_like(h)
            kept = 0
        else:
            h_sum, g_sum, g_sq, kept = carried
        steps = new = 0
        # Burn-in: the first window starts far away and its first half absorbs the transient;
        # later windows restart from the previous average, already within its noise of the
        # optimum, so a quarter suffices and the average gets more of the window's samples.
        # A window that continues a stationary average (below) starts at that average, so
        # its transient is only the settling of Adam's moments after the restart: an eighth.
        burn = length // 8 if carried is not None else length // 2 if first else length // 4
        check_every = max(4, (length - burn) // 4)
        # The time cap is checked every step: windows double, so checking only at their
        # ends could overrun the cap by a whole window. One step always runs, so g exists.
        while steps < length and it < run.max_iter and not (steps and run.out_of_time()):
            g = run.grad(h, n_samples)
            steps += 1
            it += 1
            if steps > burn:  # tail average
                h_sum += h
                g_sum += g
                g_sq += g * g
                kept += 1
                new += 1
            h = opt.step(h, g)
            # Inside a restarted window the running average is tested four times, so the
            # solver stops when it meets the target, not at the end of a window twice as long
            # (issue 14: n = 10,000, d = 32 met it a few % past a window end).
            if (not first and tol is not None and prev_err <= 3 * tol and steps < length
                    and new >= check_every and new % check_every == 0):  # fmt: skip
                h_bar, err, gnorm = _window_average(h_sum, g_sum, g_sq, kept)
                if err <= tol:
                    run.log(it, err, n_samples * kept, h_bar)
                    return h_bar, err, gnorm, it, True
        if steps < length:  # max_iter or the time cap cut the window short
            return (*_best_of(best, h_sum, g_sum, g_sq, kept, h, g), it, False)
        h, err, gnorm = _window_average(h_sum, g_sum, g_sq, kept)
        best = (h, err, gnorm) if best is None or err < best[1] else best
        run.log(it, err, n_samples * kept, h)
        # The estimate assumes a stationary window; a window that started far from the
        # optimum can drift and cancel its own gradients, so the previous one must be close too.
        if tol is not None and err <= tol and prev_err <= 3 * tol:
            return h, err, gnorm, it, True
        if it >= run.max_iter or run.out_of_time():
            return (*best, it, False)
        prev_err = err
        # A window that ended near the optimum (stationary: within 3x tol) keeps its tail in
        # the average of the next ones. The restart with a smaller step only shrinks the
        # jitter; the noise of the average falls with every kept sample, so throwing a
        # stationary window's samples away wasted up to 2/3 of the run (issue 14).
        # The first window is never kept: it started far away, and its average still carries
        # the transient its burn-in did not absorb.
        stationary = tol is not None and err <= 3 * tol and not first
        carried = (h_sum, g_sum, g_sq, kept) if stationary else None
        opt.lr *= lr_decay
        # Grow the window (not the batch): averaging needs many steps, not big batches.
        if n_samples * length * 2 <= max_samples * window:
            length *= 2


def _window_average(h_sum, g_sum, g_sq, kept: int) -> tuple[torch.Tensor, float, float]:
    """Mean iterate h̄ of a window and its noise-corrected error (see ``_solve_averaged``)."""
    g_bar = g_sum / kept
    var = (g_sq / kept - g_bar**2).clamp_min(0) * kept / (kept - 1)
    e = (g_bar**2 + (2 / math.pi) * var / kept).sqrt()
    return h_sum / kept, float(e.sum()), float(e.norm())


def _best_of(best, h_sum, g_sum, g_sq, kept, h, g) -> tuple[torch.Tensor, float, float]:
    """What a cut-short run returns: the better of the last full window's h̄ and the partial
    window's average, or, with neither (cut inside the first window), the last iterate with
    its single-batch estimate (biased upwards by the sampling noise)."""
    # Fewer than 4 kept steps give too noisy a spread for the error estimate to be trusted.
    partial = _window_average(h_sum, g_sum, g_sq, kept) if kept >= 4 else None
    candidates = [c for c in (best, partial) if c is not None]
    if not candidates:
        return h, float(g.abs().sum()), float(g.norm())
    return min(candidates, key=lambda c: c[1])


def _newton_direction(stats: CellStats, g: torch.Tensor, damping: float) -> torch.Tensor:
    """Solve (H + λ I) Δ = −g with the Laplacian H of eq. (27) (slab estimate), mean-zero Δ.

    Cells with no detected facet (tiny, or empty in this batch) and groups of cells whose
    facets to the rest were missed make H singular beyond its constant null space; the
    Levenberg–Marquardt term λ = damping · mean(diag H) keeps those steps bounded.
    """
    p = stats.pair_counts
    w = (p + p.T) / (2 * stats.n_samples * stats.delta)  # symmetric facet weights, ≈ −∂w_i/∂h_j
    lap = torch.diag(w.sum(1)) - w
    diag = lap.diagonal()
    lam = damping * (float(diag.mean()) if bool((diag > 0).any()) else 1.0)
    a = lap + lam * torch.eye(g.shape[0], dtype=lap.dtype, device=lap.device)
    step = torch.linalg.solve(a, -(g - g.mean()))
    return step - step.mean()


def _solve_newton(run: _Run, h, *, n_samples, tol, max_samples, slab):
    """Damped Newton (Kitagawa–Mérigot–Thibert) with the MC Hessian, sample size doubling.

    A step is accepted when, on a fresh batch, every cell keeps mass and the L1 error drops;
    that batch (independent of the one the step came from) is reused for the next iteration.
    When no damped step helps, the error is at the batch's noise floor: the batch doubles.
    """
    n = h.shape[0]
    if n > _NEWTON_MAX_TARGETS:
        raise OTGenError(f"method='newton' keeps a dense Hessian: n <= {_NEWTON_MAX_TARGETS}")
    x = run.sampler.draw(min(n_samples, 20000)).to(run.y)
    s, _ = top_scores(x.float(), run.y.float(), h.float(), 2)
    delta = float(torch.quantile((s[:, 0] - s[:, 1]).double(), slab))  # slab width
    stats = run.stats(h, n_samples, delta=delta)
    it, err, gnorm, damping = 0, math.inf, math.inf, 1e-3
    for it in range(run.max_iter + 1):
        g = stats.measures - run.b
        err, gnorm = float(g.abs().sum()), float(g.norm())
        run.log(it, err, n_samples, h)
        if tol is not None and err <= tol:
            return h, err, gnorm, it, True
        if it == run.max_iter or run.out_of_time():
            break
        # Keep about `slab` of the samples inside the slabs as the cells equalise.
        frac = float(stats.pair_counts.sum()) / stats.n_samples
        delta *= min(2.0, max(0.5, slab / max(frac, 1e-12)))
        step = _newton_direction(stats, g, damping)
        tau, trial = 1.0, None
        empty = int((stats.counts == 0).sum())
        for _ in range(4):
            cand = h + tau * step
            cstats = run.stats(cand, n_samples, delta=delta)
            w = cstats.measures
            # KMT damping: no cell may vanish (beyond those already empty) and the error drops.
            if int((w == 0).sum()) <= empty and float((w - run.b).abs().sum()) < err:
                trial = cand
                break
            tau /= 2
        if trial is not None:
            h, stats = trial - trial.mean(), cstats
            damping = max(damping / 4, 1e-6) if tau == 1.0 else damping
        elif damping < 1.0:
            damping *= 10  # shorter, more gradient-like steps before buying samples
            stats = run.stats(h, n_samples, delta=delta)
        elif n_samples < max_samples:
            n_samples = min(max_samples, 2 * n_samples)
            stats = run.stats(h, n_samples, delta=delta)
        else:
            break
    return h, err, gnorm, it, False


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def default_n_samples(method: str, n: int) -> int:
    """Source samples per gradient when :func:`solve` is given none, for ``n`` targets.

    ``adam``: 20,000; ``averaged``: 16 per target clipped to [8192, 65536]; ``newton``: 100
    per target. One definition, so a report can state the count a solve used."""
    check_choice(method, "method", METHODS)
    return {"adam": 20_000, "averaged": min(65536, max(8192, 16 * n)), "newton": 100 * n}[method]


def solve(
    y: ArrayLike,
    b: ArrayLike | None = None,
    *,
    source: str = "uniform",
    method: str = "averaged",
    tol: float | None = 0.03,
    grad_tol: float | None = None,
    max_iter: int = 20_000,
    n_samples: int | None = None,
    max_samples: int | None = None,
    lr: float | None = None,
    patience: int = 30,
    window: int = 32,
    lr_decay: float = 0.5,
    slab: float = 0.05,
    h0: ArrayLike | str = "voronoi",
    qmc: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
    duplicates: str = "error",
    time_limit: float | None = None,
    callback: Callable[[int, float, torch.Tensor], None] | None = None,
) -> SemiDiscreteResult:
    """Solve semi-discrete OT from ``source`` to ``Σ b_i δ_{y_i}``; see the module docstring.

    ``tol``: target for the estimated L1 marginal error Σ|w_i − b_i| (None: no such test).
    ``grad_tol``: the papers' stop on the estimated ‖∇E‖₂ (``adam`` only; None: off).
    ``n_samples``: source samples per gradient (default: adam 20,000; averaged 16·n clipped
    to [8192, 65536]; newton 100·n), ``max_samples`` its cap after growth.
    ``lr``: Adam step; default 5e-2 (the papers' CelebA value) times the RMS spread of the
    scores ⟨x, y_i⟩ (so the default is invariant to the targets' scale); ``averaged`` uses it
    for the first window. ``patience``: adam doubles the batch after this many non-improving steps.
    ``window``: first averaging window (steps, >= 4: the error estimate needs the spread of
    at least two kept gradients). ``slab``: Newton slab quantile.
    ``h0``: initial heights, ``"voronoi"`` (default: every cell non-empty from the start),
    ``"zeros"`` (the papers' start) or a vector.
    ``duplicates``: ``"error"`` (default) or ``"merge"`` (identical targets become one target
    with the summed weight; the result then has fewer targets).
    """
    check_choice(source, "source", SOURCES)
    check_choice(method, "method", METHODS)
    check_choice(duplicates, "duplicates", DUPLICATES)
    dev = resolve_device(device)
    yt, bt = _prepare(y, b, duplicates, dev)
    n, d = yt.shape
    if tol is not None:
        check_positive(tol, "tol")
    if grad_tol is not None:
        check_positive(grad_tol, "grad_tol")
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    default = default_n_samples(method, n)
    # `is None`, not `or`: an explicit 0 is refused, not replaced by the default.
    n_samples = check_int(default if n_samples is None else n_samples, "n_samples")
    if max_samples is None:
        max_samples = max(n_samples, 64 * default)
    max_samples = check_int(max_samples, "max_samples")
    lr = check_positive(lr, "lr") if lr is not None else 5e-2 * _score_scale(yt, source)
    if isinstance(h0, str):
        check_choice(h0, "h0", INITS)
        h = _voronoi_heights(yt, source) if h0 == "voronoi" else torch.zeros_like(bt)
    else:
        h = as_tensor(h0, "h0", device=dev).double().flatten()
        if h.shape[0] != n or not bool(torch.isfinite(h).all()):
            raise OTGenError(f"h0 must be a finite vector of length {n}")
        h = h - h.mean()
    sampler = SourceSampler(d, source, seed=seed, qmc=qmc)
    run = _Run(yt, bt, sampler, chunk, max_iter, time_limit, callback)
    if n == 1:  # one target takes all the mass: nothing to solve
        out = (h, 0.0, 0.0, 0, True)
    elif method == "adam":
        out = _solve_adam(
            run, h, lr=lr, n_samples=n_samples, patience=check_int(patience, "patience"),
            grow=2, tol=tol, grad_tol=grad_tol, max_samples=max_samples,
        )  # fmt: skip
    elif method == "averaged":
        out = _solve_averaged(
            run, h, lr=lr, n_samples=n_samples, window=check_int(window, "window", minimum=4),
            tol=tol,
            lr_decay=check_positive(lr_decay, "lr_decay"), max_samples=max_samples,
        )  # fmt: skip
    else:
        out = _solve_newton(
            run, h, n_samples=n_samples, tol=tol, max_samples=max_samples,
            slab=check_positive(slab, "slab"),
        )  # fmt: skip
    h, err, gnorm, n_iter, converged = out
    return SemiDiscreteResult(
        h=h - h.mean(), y=yt, b=bt, source=source, method=method, marginal_error=err,
        grad_norm=gnorm, n_iter=n_iter, n_samples=run.n_drawn,
        time_s=time.perf_counter() - run.t0, converged=converged, seed=int(seed),
        history=tuple(run.history),
    )  # fmt: skip


def _voronoi_heights(y: torch.Tensor, source: str) -> torch.Tensor:
    """Heights whose power diagram is the Voronoi diagram of the targets mapped into the source.

    With p_i = α (y_i − ȳ): argmin ‖x − p_i‖² = argmax ⟨x, y_i⟩ − α ‖y_i − ȳ‖²/2 (eq. 31 with
    ψ = 0). α matches the per-coordinate spreads, so every cell starts with mass (h = 0
    leaves the interior targets empty, which stalls Newton and slows the first-order methods).
    """
    sd_x = math.sqrt(1.0 / 12.0) if source == "uniform" else 1.0
    yc = y - y.mean(0)
    sd_y = math.sqrt(float((yc**2).sum(1).mean()) / y.shape[1])
    h = -0.5 * (sd_x / max(sd_y, 1e-12)) * (yc**2).sum(1)
    return h - h.mean()


def _score_scale(y: torch.Tensor, source: str) -> float:
    """RMS spread of the scores ⟨x, y_i⟩ over the source: the natural unit of h.

    Translating all targets adds ⟨x, c⟩ to every score (same cells), so y is centred first.
    Scaling the default step by it makes the solver invariant to the scale of the targets.
    """
    var_x = 1.0 / 12.0 if source == "uniform" else 1.0
    yc = y - y.mean(0)
    return max(math.sqrt(var_x * float((yc**2).sum(1).mean())), 1e-12)


def load(path: str | Path, device: str | torch.device = "cpu") -> SemiDiscreteResult:
    """Load a result written by :meth:`SemiDiscreteResult.save`."""
    return SemiDiscreteResult.load(path, device)
