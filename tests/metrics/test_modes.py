import math

import pytest
import torch

from otgen.data.toy import modes, sample
from otgen.errors import OTGenError
from otgen.metrics.modes import N_SAMPLES, ModeMetrics, mode_metrics


def test_all_samples_at_three_modes():
    means, _ = modes("grid25")
    x = means[[0, 5, 12]].repeat(100, 1)  # 300 samples exactly on 3 modes, 100 each
    m = mode_metrics(x, "grid25")
    assert isinstance(m, ModeMetrics)
    assert m.modes == 3 and m.num_modes == 25 and m.n_samples == 300
    assert m.high_quality == 1.0
    assert m.reverse_kl == pytest.approx(math.log(25) - math.log(3), abs=1e-12)
    assert sum(m.counts) == 300 and sorted(m.counts)[-3:] == [100, 100, 100]


def test_grid_threshold_is_euclidean_0_15():
    # grid25 std 0.05, threshold 3σ: 0.149 from a mode is high quality, 0.151 is not
    x = torch.tensor([[0.149, 0.0], [2.0, 0.151], [1.0, 1.0], [4.0, -4.0]])
    m = mode_metrics(x, "grid25")
    assert m.modes == 2 and m.high_quality == 0.5
    assert m.reverse_kl == pytest.approx(math.log(25) - math.log(2))


def test_hand_computed_unbalanced_counts_and_custom_means():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    # 3 good at mode 0, 1 good at mode 1, 1 bad (distance 2.5 > 3σ = 1.5 from mode 1)
    x = torch.tensor([[0.1, 0.0], [0.0, -0.2], [0.3, 0.3], [10.0, 1.0], [7.5, 0.0]])
    m = mode_metrics(x, means, std=0.5)
    assert m.counts == (3, 1) and m.modes == 2 and m.high_quality == pytest.approx(0.8)
    q = torch.tensor([0.75, 0.25], dtype=torch.float64)
    assert m.reverse_kl == pytest.approx(float((q * (2 * q).log()).sum()))
    # a looser threshold admits the far sample
    assert mode_metrics(x, means, std=0.5, threshold=6.0).counts == (3, 2)


def test_real_data_scores_perfectly():
    m = mode_metrics(sample("ring8", N_SAMPLES, seed=0), "ring8")
    assert m.modes == 8 and m.high_quality > 0.98 and m.reverse_kl < 0.01


def test_no_high_quality_sample_gives_infinite_kl():
    m = mode_metrics(torch.full((10, 2), 1.0), "grid25")
    assert m.modes == 0 and m.high_quality == 0.0 and m.reverse_kl == math.inf


def test_bad_inputs():
    with pytest.raises(OTGenError, match="no modes"):
        mode_metrics(torch.zeros(5, 2), "swissroll")
    with pytest.raises(OTGenError, match="unknown toy dataset"):
        mode_metrics(torch.zeros(5, 2), "grid26")
    with pytest.raises(OTGenError, match="std is required"):
        mode_metrics(torch.zeros(5, 2), torch.zeros(3, 2))
    with pytest.raises(OTGenError, match="dimensions"):
        mode_metrics(torch.zeros(5, 3), "grid25")
    with pytest.raises(OTGenError, match="NaN"):
        mode_metrics(torch.tensor([[math.nan, 0.0]]), "grid25")
    with pytest.raises(OTGenError):
        mode_metrics(torch.zeros(5, 2), torch.zeros(3, 2), std=-1.0)
