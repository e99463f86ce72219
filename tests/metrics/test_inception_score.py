import math

import numpy as np
import pytest
import torch

from otgen.errors import OTGenError
from otgen.metrics.inception_score import inception_score


def test_confident_uniform_classifier_scores_number_of_classes():
    k, n = 10, 1000
    labels = np.arange(n) % k  # every split of 100 holds each class 10 times
    probs = np.eye(k)[labels]
    res = inception_score(probs=probs)
    assert res.mean == pytest.approx(k, abs=1e-12) and res.std == pytest.approx(0, abs=1e-12)
    assert len(res.split_scores) == 10
    logits = torch.as_tensor(50.0 * probs)  # softmax is one-hot up to e^-50
    assert inception_score(logits).mean == pytest.approx(k, rel=1e-9)


def test_classifier_that_ignores_its_input_scores_one():
    logits = np.tile([0.3, -1.0, 2.0], (200, 1))
    assert inception_score(logits, splits=4).mean == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_value_and_shift_invariance():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    p_bar = np.array([0.75, 0.25])
    kl1 = 0.5 * math.log(0.5 / p_bar[0]) + 0.5 * math.log(0.5 / p_bar[1])
    kl2 = math.log(1.0 / p_bar[0])
    assert inception_score(probs=probs, splits=1).mean == pytest.approx(math.exp((kl1 + kl2) / 2))
    logits = np.random.default_rng(0).normal(size=(50, 4))
    a, b = inception_score(logits, splits=5), inception_score(logits + 7.0, splits=5)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)


def test_splits_are_contiguous_chunks():
    """First half only class 0 (split IS 1), second half balanced over 2 classes (IS 2)."""
    probs = np.eye(2)[np.r_[np.zeros(10, int), np.arange(10) % 2]]
    res = inception_score(probs=probs, splits=2)
    assert res.split_scores == pytest.approx((1.0, 2.0))
    assert res.mean == pytest.approx(1.5) and res.std == pytest.approx(0.5)


def test_bad_inputs_raise():
    with pytest.raises(OTGenError, match="exactly one"):
        inception_score()
    with pytest.raises(OTGenError, match="exactly one"):
        inception_score(np.zeros((20, 3)), probs=np.full((20, 3), 1 / 3))
    with pytest.raises(OTGenError, match="at least 10 samples"):
        inception_score(np.zeros((5, 3)))
    with pytest.raises(OTGenError, match="sum to 1"):
        inception_score(probs=np.full((20, 3), 0.5))
    with pytest.raises(OTGenError, match="negative"):
        inception_score(probs=np.tile([1.5, -0.5], (20, 1)))
    with pytest.raises(OTGenError, match="NaN"):
        inception_score(np.full((20, 3), np.nan))
