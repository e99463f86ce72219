import math

import numpy as np
import pytest
import torch

from otgen.errors import OTGenError
from otgen.metrics.coverage import class_coverage, plot_class_coverage


def test_histogram_and_reverse_kl_hand_computed(tmp_path):
    logits = np.eye(4)[[0, 0, 0, 1, 1, 2, 0, 1]] * 3.0  # predicted: 0 ×4, 1 ×3, 2 ×1, 3 ×0
    labels = np.array([0, 1, 2, 3] * 5)  # data: uniform over 4 classes
    cov = class_coverage(logits, labels)
    assert cov.counts == (4, 3, 1, 0) and cov.classes_covered == 3 and cov.num_classes == 4
    q = np.array([4, 3, 1]) / 8
    assert cov.reverse_kl == pytest.approx(float((q * np.log(q / 0.25)).sum()))
    # Uniform default and explicit distribution agree with the labels' (uniform) frequencies.
    assert class_coverage(logits).reverse_kl == pytest.approx(cov.reverse_kl)
    assert class_coverage(torch.as_tensor(logits), data_dist=[0.25] * 4) == cov
    assert plot_class_coverage(cov, tmp_path / "c.png").stat().st_size > 0


def test_matching_class_frequencies_give_zero_kl_and_unsupported_class_gives_inf():
    labels = np.array([0, 0, 0, 1])  # data p = (0.75, 0.25, 0)
    logits = np.eye(3)[[0, 0, 0, 1, 0, 0, 0, 1]]
    assert class_coverage(logits, labels).reverse_kl == pytest.approx(0.0, abs=1e-15)
    logits_bad = np.eye(3)[[0, 2]]
    assert class_coverage(logits_bad, labels).reverse_kl == math.inf


def test_bad_inputs_raise():
    logits = np.eye(3)
    with pytest.raises(OTGenError, match=r"\[0, 2\]"):
        class_coverage(logits, np.array([0, 5]))
    with pytest.raises(OTGenError, match="integer"):
        class_coverage(logits, np.array([0.5, 1.0]))
    with pytest.raises(OTGenError, match="sum to 1"):
        class_coverage(logits, data_dist=[0.5, 0.5, 0.5])
    with pytest.raises(OTGenError, match="not both"):
        class_coverage(logits, np.array([0]), data_dist=[1, 0, 0])
    with pytest.raises(OTGenError, match="NaN"):
        class_coverage(np.full((2, 3), np.nan))
