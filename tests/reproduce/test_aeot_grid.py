"""AE-OT grid25 reproduction: the OT solve is capped in steps, never in wall time."""

from __future__ import annotations

import itertools
import time

import torch

from otgen.reproduce import aeot_grid

CPU = torch.device("cpu")


def test_same_seed_same_numbers_however_slow_the_machine(monkeypatch):
    """A loaded machine (simulated: every clock read advances 100 s) must not change a run.
    With the former wall-time cap the solve stopped after its first step there."""
    torch.set_num_threads(1)
    cfg = {**aeot_grid.QUICK, "max_iter": 96}  # tiny: three averaging windows
    a = aeot_grid.aeot_run("grid25", "iid", 3, cfg, CPU)
    clock = itertools.count(start=time.perf_counter(), step=100.0)
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    b = aeot_grid.aeot_run("grid25", "iid", 3, cfg, CPU)
    assert a["res"].n_iter == b["res"].n_iter
    assert torch.equal(a["res"].h, b["res"].h)
    assert torch.equal(a["fake"], b["fake"])
    assert a["metrics"].as_dict() == b["metrics"].as_dict()


def test_profiles_cap_steps_not_time():
    for name, cfg in aeot_grid.PROFILES.items():
        assert "time_limit" not in cfg and cfg["max_iter"] > 0, name
        assert cfg["seeds"] >= 2, name  # a claim needs a mean ± s.e. over seeds


class _Res:
    def __init__(self, converged: bool, n_iter: int, err: float) -> None:
        self.converged, self.n_iter, self.marginal_error = converged, n_iter, err


def test_ot_convergence_needs_every_seed_at_tolerance():
    ok = aeot_grid.ot_convergence([_Res(True, 224, 0.12), _Res(True, 480, 0.09)], 0.15)
    assert ok.converged and "all 2 seeds stopped at tol 0.15" in ok.evidence
    assert "224–480" in ok.evidence
    capped = aeot_grid.ot_convergence([_Res(True, 224, 0.12), _Res(False, 992, 0.4)], 0.15)
    assert not capped.converged and "1 of 2 seeds hit the step cap" in capped.evidence
