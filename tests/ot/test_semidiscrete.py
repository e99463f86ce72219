"""Semi-discrete OT: closed forms, marginals after solving, invariances, bad input."""

import math

import pytest
import torch

from otgen.errors import CheckpointError, OTGenError
from otgen.ot import semidiscrete as sd


def test_one_target_gets_all_mass():
    res = sd.solve(torch.tensor([[0.3, -1.0]]), tol=1e-6, max_iter=5)
    assert res.converged and res.marginal_error == 0.0
    assert torch.equal(res.assign(torch.rand(50, 2) - 0.5), torch.zeros(50, dtype=torch.long))
    assert float(res.h.abs().max()) == 0.0


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_two_targets_1d_exact_split(method):
    # Uniform on [-1/2, 1/2]: the left cell [-1/2, s] needs mass b1, so s = -1/2 + b1, and the
    # planes x*y1 + h1 and x*y2 + h2 meet at s: h1 - h2 = s (y2 - y1).
    y, b = torch.tensor([[0.3], [1.0]]), torch.tensor([0.3, 0.7])
    kw = {"n_samples": 4096} if method == "newton" else {"n_samples": 4096, "lr": 0.02}
    res = sd.solve(y, b, method=method, tol=2e-3, max_iter=2000, h0="zeros", **kw)
    s = -0.5 + 0.3
    assert res.converged
    assert float(res.h[0] - res.h[1]) == pytest.approx(s * (1.0 - 0.3), abs=3e-3)
    split = float((res.h[0] - res.h[1]) / (1.0 - 0.3))
    assert split == pytest.approx(s, abs=5e-3)


@pytest.mark.parametrize("source", ["uniform", "gaussian"])
def test_cell_measures_match_weights_after_solving(source):
    g = torch.Generator().manual_seed(1)
    y = torch.randn(8, 2, generator=g)
    b = torch.rand(8, generator=g) + 0.5
    b = b / b.sum()
    res = sd.solve(y, b, source=source, method="averaged", tol=0.03, n_samples=2048, seed=3)
    assert res.converged and res.marginal_error <= 0.03
    # Independent check: another seeded Sobol stream, 2e5 points.
    w = res.cell_measures(100_000, seed=99)
    assert float((w - res.b).abs().sum()) < 0.03
    assert float(res.h.mean()) == pytest.approx(0.0, abs=1e-12)


def test_newton_2d_converges_and_transport_is_the_cell_target():
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.4]])
    res = sd.solve(y, method="newton", tol=5e-3, n_samples=20000, seed=0)
    assert res.converged
    x = torch.rand(100, 2) - 0.5
    assert torch.equal(res.transport(x), res.y[res.assign(x)].to(res.y))
    # u_h is the max of the planes: it dominates every plane and touches one (eq. 19).
    u = res.potential(x)
    planes = x.double() @ res.y.double().T + res.h
    assert torch.allclose(u, planes.max(1).values)


def test_translating_targets_leaves_h_unchanged():
    # <x, y_i + c> + h_i = <x, y_i> + h_i + <x, c>: the added term is the same for every i, so
    # the cells (hence h*, recentred) do not move; u gains <x, c> and the map shifts by c.
    g = torch.Generator().manual_seed(2)
    y = torch.randn(8, 2, generator=g)
    c = torch.tensor([3.0, -2.0])
    kw = dict(method="adam", tol=None, max_iter=30, n_samples=2048, seed=5)
    r1, r2 = sd.solve(y, **kw), sd.solve(y + c, **kw)
    assert torch.allclose(r1.h, r2.h, atol=1e-3)
    x = torch.rand(200, 2) - 0.5
    agree = (r1.assign(x) == r2.assign(x)).float().mean()
    assert agree > 0.97
    assert torch.allclose(r2.potential(x) - r1.potential(x), x.double() @ c.double(), atol=2e-3)


def test_averaged_cut_short_returns_its_best_window_average():
    # Windows of 8, 16, 32 steps: max_iter = 27 stops 3 steps into the third window, too few
    # to average. The result must be the best full window's h̄ and its noise-corrected error,
    # not the last noisy iterate with its single-batch estimate.
    y = torch.randn(30, 3, generator=torch.Generator().manual_seed(4))
    kw = dict(method="averaged", tol=1e-9, window=8, n_samples=1024, seed=2)
    res = sd.solve(y, max_iter=27, **kw)
    assert res.n_iter == 27 and not res.converged and len(res.history) == 2
    assert res.marginal_error == min(err for _, err, _ in res.history)
    # A run stopped exactly at the end of the second window returns that same best h̄.
    full = sd.solve(y, max_iter=24, **kw)
    assert full.marginal_error == res.marginal_error and torch.equal(full.h, res.h)


def test_averaged_keeps_stationary_windows_in_its_average():
    # Once a window (not the first) ends within 3x tol, later windows add to its average
    # instead of starting a new one: the restarting solver needed 224 steps here (windows 32,
    # 64, 128, then 32 steps into the fourth); keeping the samples needs 168.
    y = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    res = sd.solve(y, method="averaged", tol=0.015, seed=1)
    assert res.converged and res.n_iter <= 192
    check = res.marginal_check(2_000_000, seed=5)
    # the estimate below tol is honest: the certified bound is ~1.25x the L1 when the error is
    # spread over the cells, so a true L1 above tol would push it past 1.25 tol
    assert check.l1_bound < 1.25 * 0.015


def test_same_seed_same_result_and_fresh_samples_per_step():
    y = torch.randn(6, 3)
    kw = dict(method="adam", tol=None, max_iter=5, n_samples=512, seed=4)
    assert torch.equal(sd.solve(y, **kw).h, sd.solve(y, **kw).h)
    s = sd.SourceSampler(3, seed=0)
    assert not torch.equal(s.draw(64), s.draw(64))  # the stream continues: fresh points


def test_gaussian_source_is_standard_normal():
    x = sd.SourceSampler(2, "gaussian", seed=0).draw(1 << 14)
    assert x.mean(0).abs().max() < 0.01 and (x.std(0) - 1).abs().max() < 0.01


def test_chunking_over_targets_matches_dense_argmax(monkeypatch):
    monkeypatch.setattr(sd, "_BLOCK_ELEMENTS", 64)  # force many target blocks
    y, h = torch.randn(300, 4), torch.randn(300)
    x = torch.rand(50, 4)
    s, idx = sd.top_scores(x, y, h, 3)
    ref = (x @ y.T + h).topk(3, dim=1)
    assert torch.equal(idx, ref.indices) and torch.allclose(s, ref.values)
    assert torch.equal(sd.assign(x, y, h), (x @ y.T + h).argmax(1))


def test_score_blocks_stay_bounded_for_100k_targets(monkeypatch):
    # n = 100,000 targets: every (samples x targets) score block that is formed must stay
    # within the block budget, whatever the number of samples per pass.
    shapes = []
    addmm = torch.addmm

    def spy(*args, **kw):
        out = addmm(*args, **kw)
        shapes.append(out.numel())
        return out

    monkeypatch.setattr(torch, "addmm", spy)
    n = 100_000
    y = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    stats = sd.cell_statistics(y, torch.zeros(n, dtype=torch.float64), sd.SourceSampler(3), 3000)
    assert int(stats.counts.sum()) == 3000 and len(shapes) > 1
    assert max(shapes) <= max(sd._BLOCK_ELEMENTS, sd._ROW_BLOCK_ELEMENTS)


def test_cell_counts_use_one_gemm_over_all_targets_per_row_block(monkeypatch):
    # The k = 1 assignment is one long GEMM over all n targets per block of rows (no running
    # max across target blocks), and agrees with the dense argmax of eq. (22).
    widths = []
    addmm = torch.addmm

    def spy(*args, **kw):
        out = addmm(*args, **kw)
        widths.append(out.shape[1])
        return out

    monkeypatch.setattr(torch, "addmm", spy)
    g = torch.Generator().manual_seed(0)
    n, d = 10_000, 4
    y, h = torch.randn(n, d, generator=g), torch.randn(n, generator=g, dtype=torch.float64)
    stats = sd.cell_statistics(y, h, sd.SourceSampler(d, seed=1), 1000)
    assert set(widths) == {n}
    x = sd.SourceSampler(d, seed=1).draw(1000).float()
    dense = torch.bincount((x @ y.T + h.float()).argmax(1), minlength=n)
    assert torch.equal(stats.counts, dense)


def test_save_load_roundtrip(tmp_path):
    res = sd.solve(torch.randn(5, 2), method="adam", tol=None, max_iter=3, n_samples=256)
    path = res.save(tmp_path / "ot.safetensors")
    back = sd.load(path)
    assert torch.equal(back.h, res.h) and torch.equal(back.y, res.y)
    assert back.history == res.history and back.n_iter == res.n_iter
    assert back.marginal_error == res.marginal_error
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        sd.load(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError):
        sd.load(tmp_path / "missing.safetensors")


def test_duplicates_error_or_merge():
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(OTGenError, match="duplicate"):
        sd.solve(y, max_iter=1)
    res = sd.solve(y, duplicates="merge", method="adam", tol=None, max_iter=1, n_samples=64)
    assert res.n == 2
    assert sorted(res.b.tolist()) == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize(
    "y, b, kw, match",
    [
        (torch.randn(3, 2), torch.tensor([0.5, 0.5, 0.0]), {}, "zero"),
        (torch.randn(3, 2), torch.tensor([0.7, 0.5, -0.2]), {}, "negative"),
        (torch.randn(3, 2), torch.tensor([0.2, 0.2, 0.2]), {}, "sum to 1"),
        (torch.randn(3, 2), torch.tensor([0.5, 0.5]), {}, "entries"),
        (torch.tensor([[0.0, math.nan], [1.0, 1.0]]), None, {}, "NaN"),
        (torch.randn(3, 2), None, {"method": "sgd"}, "method"),
        (torch.randn(3, 2), None, {"source": "cube"}, "source"),
        (torch.randn(3, 2), None, {"tol": -1.0}, "tol"),
        (torch.randn(3, 2), None, {"h0": [0.0, 1.0]}, "h0"),
    ],
)
def test_bad_input_raises(y, b, kw, match):
    with pytest.raises(OTGenError, match=match):
        sd.solve(y, b, max_iter=1, **kw)


def test_bad_query_points_raise():
    res = sd.solve(torch.randn(4, 2), method="adam", tol=None, max_iter=1, n_samples=64)
    with pytest.raises(OTGenError, match="dimensions"):
        res.transport(torch.rand(5, 3))
    with pytest.raises(OTGenError, match="NaN"):
        res.assign(torch.tensor([[0.0, math.nan]]))


# ------------------------------------------------------ regressions (issues #14 and #17)


def test_averaged_with_no_iterations_returns_the_start_point():
    # max_iter=0 raised UnboundLocalError: now the start point with its one-batch estimate.
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    res = sd.solve(y, method="averaged", max_iter=0, n_samples=4096, tol=1e-9)
    assert res.n_iter == 0 and not res.converged
    assert math.isfinite(res.marginal_error)
    # the estimate is the start point's measured L1 error on that batch
    w = sd.cell_statistics(res.y, res.h, sd.SourceSampler(2, seed=0), 4096).measures
    assert res.marginal_error == pytest.approx(float((w - res.b).abs().sum()), rel=1e-12)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_too_small_window_is_refused(window):
    # a window of <= 2 keeps one gradient and its spread is 0/0: marginal_error was NaN
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    with pytest.raises(OTGenError, match="window"):
        sd.solve(y, method="averaged", window=window, max_iter=20)


def test_smallest_window_gives_a_finite_error():
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    res = sd.solve(y, method="averaged", window=4, max_iter=12, n_samples=2048, tol=1e-9)
    assert math.isfinite(res.marginal_error)


@pytest.mark.parametrize("key", ["n_samples", "max_samples"])
def test_zero_samples_is_refused(key):
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    with pytest.raises(OTGenError, match=key):
        sd.solve(y, **{key: 0})


def test_complex_and_empty_targets_are_refused():
    with pytest.raises(OTGenError, match="complex"):
        sd.solve(torch.ones(3, 2, dtype=torch.complex64))
    with pytest.raises(OTGenError, match="empty"):
        sd.solve(torch.zeros(0, 2))


@pytest.mark.parametrize("n", [1, 7, 128, 256, 300, 1000, 10_007])
def test_two_level_row_max_equals_torch_max_with_ties(n):
    from otgen.ot.semidiscrete import _row_max

    gen = torch.Generator().manual_seed(n)
    s = torch.randint(0, 5, (37, n), generator=gen).float()  # many exact ties per row
    s[3] = 2.0  # a constant row: the first index must win
    values, index = _row_max(s)
    ref_values, ref_index = s.max(dim=1)
    assert torch.equal(values, ref_values)
    assert torch.equal(index, ref_index)
    cont = torch.randn(5, n, generator=gen)
    assert torch.equal(_row_max(cont, block=16)[1], cont.argmax(1))


def _voronoi_result(y: torch.Tensor):
    """Uniform source on [-1/2, 1/2]^d, Voronoi heights h = -|y|²/2: power cells = Voronoi."""
    from otgen.ot.semidiscrete import SemiDiscreteResult

    n = len(y)
    return SemiDiscreteResult(
        h=-(y.double() ** 2).sum(1) / 2, y=y.float(), b=torch.full((n,), 1 / n).double(),
        source="uniform", method="averaged", marginal_error=0.0, grad_norm=0.0, n_iter=0,
        n_samples=0, time_s=0.0, converged=True, seed=0,
    )  # fmt: skip


def test_marginal_check_is_unbiased_and_bounds_the_exact_l1():
    gen = torch.Generator().manual_seed(0)
    y = torch.sort(torch.rand(50, generator=gen, dtype=torch.float64) - 0.5).values
    res = _voronoi_result(y[:, None])  # 1D: the cells are the intervals between midpoints
    mids = torch.cat([torch.tensor([-0.5]), (y[1:] + y[:-1]) / 2, torch.tensor([0.5])])
    w = (mids[1:] - mids[:-1]).double()
    exact_l2 = float(((w - 1 / 50) ** 2).sum())
    exact_l1 = float((w - 1 / 50).abs().sum())
    check = res.marginal_check(400_000, seed=5, batches=8)
    assert abs(check.l2_sq - exact_l2) <= 4 * check.l2_sq_se
    assert check.l2_sq_se < 0.05 * exact_l2  # a precise estimate, not a wide interval
    assert exact_l1 <= check.l1_bound <= 1.1 * math.sqrt(50 * exact_l2)  # Cauchy–Schwarz


def test_marginal_check_certifies_below_the_plain_floor():
    # 2D grid of 48 x 48 cell centres: equal square cells, error exactly 0 (cells this wide
    # keep float32 scores from moving the boundaries measurably)
    side = (torch.arange(48, dtype=torch.float64) + 0.5) / 48 - 0.5
    res = _voronoi_result(torch.cartesian_prod(side, side))
    check = res.marginal_check(1_000_000, seed=9, batches=8)
    assert abs(check.l2_sq) <= 4 * check.l2_sq_se  # zero, within noise
    assert check.l1_iid > 0.8 * check.l1_iid_floor  # the plain estimate reads its floor
    assert check.l1_bound < 0.6 * check.l1_iid_floor  # the bound certifies far below it
    with pytest.raises(OTGenError, match="batches >= 2"):
        res.marginal_check(100, batches=1)


def test_default_n_samples_is_what_solve_uses():
    assert [sd.default_n_samples("averaged", n) for n in (10, 1000, 10**5)] == [8192, 16000, 65536]
    assert sd.default_n_samples("newton", 7) == 700
    y = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    implicit = sd.solve(y, method="averaged", max_iter=8, tol=None)
    explicit = sd.solve(y, method="averaged", max_iter=8, tol=None, n_samples=8192)
    assert torch.equal(implicit.h, explicit.h) and implicit.n_samples == explicit.n_samples
    with pytest.raises(OTGenError, match="method"):
        sd.default_n_samples("lbfgs", 10)
