import numpy as np
import pytest
import torch

from otgen.errors import OTGenError
from otgen.utils.checks import as_points, as_weights, check_positive, same_dim
from otgen.utils.io import write_json


def test_as_points_rejects_nan_empty_and_bad_rank():
    with pytest.raises(OTGenError, match="NaN"):
        as_points([[0.0, float("nan")]])
    with pytest.raises(OTGenError, match="empty"):
        as_points(np.zeros((0, 2)))
    with pytest.raises(OTGenError, match="shape"):
        as_points(np.zeros((2, 2, 2)))
    assert as_points(np.zeros(3)).shape == (3, 1)


def test_weights_validation_and_uniform_default():
    x = torch.zeros(4, 2)
    assert torch.allclose(as_weights(None, 4, "a", like=x), torch.full((4,), 0.25))
    with pytest.raises(OTGenError, match="negative"):
        as_weights([0.5, 0.6, -0.1, 0.0], 4, "a", like=x)
    with pytest.raises(OTGenError, match="sum to 1"):
        as_weights([0.5, 0.5, 0.5, 0.5], 4, "a", like=x)
    with pytest.raises(OTGenError, match="3 entries"):
        as_weights([0.5, 0.25, 0.25], 4, "a", like=x)


def test_scalar_checks():
    with pytest.raises(OTGenError, match="eps"):
        check_positive(0.0, "eps")
    with pytest.raises(OTGenError, match="different dimensions"):
        same_dim(torch.zeros(2, 2), torch.zeros(2, 3))


def test_atomic_json_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert path.read_text().strip().startswith("{") and '"a": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_uses_umask_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = write_json(tmp_path / "p.json", {"a": 1})
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_mean_se_and_format_match_hand_values():
    from otgen.utils.tables import fmt_mean_se, mean_se

    mean, se = mean_se([1.0, 2.0, 3.0])  # sample var 1, se = sqrt(1/3)
    assert mean == 2.0 and abs(se - 3**-0.5) < 1e-12
    assert fmt_mean_se([1.0, 2.0, 3.0], 2) == "2.00 ± 0.58"
    assert fmt_mean_se([4.0], 1) == "4.0"
