import importlib

import numpy as np
import pytest

from otgen.errors import OTGenError
from otgen.metrics.prdc import prdc

# The module (the package attribute ``otgen.metrics.prdc`` is the function of that name).
prdc_mod = importlib.import_module("otgen.metrics.prdc")

# Hand-made 1-D example, k = 1 (worked out in the comments; ties test the strict '<').
REAL = np.array([0.0, 2.0, 3.0, 10.0, 11.0])[:, None]  # NND_1: 2, 1, 1, 1, 1
FAKE = np.array([1.0, 2.5, 4.0, 30.0])[:, None]  # NND_1: 1.5, 1.5, 1.5, 26


def test_hand_computed_values():
    res = prdc(REAL, FAKE, k=1)
    # precision: y=1 ∈ B(0, 2); y=2.5 ∈ B(2, 1); y=4 is at distance exactly 1 from 3 (tie: out);
    # y=30 in no ball -> 2/4.
    assert res.precision == 0.5
    # recall: 0, 2 ∈ B(1, 1.5); 3 ∈ B(2.5, 1.5); 10, 11 ∈ B(30, 26) (the outlier's huge ball) -> 1.
    assert res.recall == 1.0
    # density: pairs (y, x) with |y − x| < NND(x): (1, 0), (2.5, 2), (2.5, 3) -> 3 / (k·m) = 3/4.
    assert res.density == 0.75
    # coverage: 0 (y=1), 2 (y=2.5), 3 (y=2.5) have a fake inside their ball; 10, 11 not -> 3/5.
    assert res.coverage == 0.6
    assert res.k == 1


def test_second_hand_made_example_in_2d_with_k2():
    real = np.array([[0, 0], [1, 0], [0, 1], [5, 5]], float)  # NND_2: 1, √2, √2, √41
    fake = np.array([[0.5, 0.5], [20, 20], [21, 20]], float)  # NND_2 ≈ 28.3, 27.6, 28.3
    res = prdc(real, fake, k=2)
    # (0.5, 0.5) is within radius 1 of (0, 0) (d = 0.707): precision counts it; (20, 20) and
    # (21, 20) are ≥ 21 from (5, 5) > √41 ≈ 6.4: out -> 1/3.
    assert res.precision == pytest.approx(1 / 3)
    # density: (0.5, 0.5) is inside the balls of (0,0) [0.71 < 1], (1,0) [0.71 < 1.41],
    # (0,1) [0.71 < 1.41], and of (5, 5) [6.36 < 6.40] -> 4 / (2·3).
    assert res.density == pytest.approx(4 / 6)
    assert res.coverage == 1.0  # every real ball contains (0.5, 0.5)
    assert res.recall == 1.0  # every real point is within 28.3 of (0.5, 0.5)


def test_identical_sets_and_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    same = prdc(x, x)
    assert (same.precision, same.recall, same.coverage) == (1.0, 1.0, 1.0)
    y = rng.normal(size=(70, 3)) + 0.3
    full = prdc(x, y)
    monkeypatch.setattr(prdc_mod, "_CHUNK", 7)  # block-wise evaluation gives the same numbers
    assert prdc(x, y) == full


def test_bad_inputs_raise():
    with pytest.raises(OTGenError, match="at least 6"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
    with pytest.raises(OTGenError, match="different feature dimensions"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(OTGenError, match="NaN"):
        prdc(np.zeros((10, 2)), np.full((10, 2), np.nan))
