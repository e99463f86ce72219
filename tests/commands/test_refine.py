"""``otgen refine`` on a tiny trained run: files written, K shortcut, metrics, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from otgen.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from otgen.engine import train

    out = tmp_path_factory.mktemp("runs") / "wgan"
    config = {
        "method": "wgan-gp",
        "params": {"arch": "mlp", "latent_dim": 2, "prior": "uniform"},
        "data": {"name": "gauss25-dot", "n": 256},
        "steps": 10,
        "batch_size": 32,
        "out": str(out),
        "device": "cpu",
        "log_every": 5,
    }
    return train(config)


def test_target_refine_writes_samples_figure_and_metrics(run_dir, tmp_path):
    out = tmp_path / "refined.npy"
    code = main(["refine", "--run", str(run_dir), "--mode", "target", "--n", "200",
                 "--steps", "5", "--out", str(out), "--eval", "--device", "cpu"])  # fmt: skip
    assert code == 0
    x = np.load(out)
    assert x.shape == (200, 2) and np.isfinite(x).all()
    assert x.min() >= -2 and x.max() <= 2  # the reference clip box of the 2D toys
    assert out.with_suffix(".png").stat().st_size > 1000
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["mode"] == "target" and summary["steps"] == 5
    assert summary["optimizer"] == "adam" and len(summary["K"]) == 1 and summary["K"][0] > 0
    m = summary["metrics"]
    assert m["emd_before"] > 0 and m["emd_after"] > 0


def test_latent_refine_with_keff_shortcut_is_seeded(run_dir, tmp_path):
    args = ["refine", "--run", str(run_dir), "--n", "50", "--keff", "1", "--steps", "3"]
    assert main([*args, "--out", str(tmp_path / "a.npy")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.npy")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert np.array_equal(a, b)
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["K"] == [1.0] and summary["optimizer"] == "sgd" and summary["steps"] == 3
    c = tmp_path / "c.npy"
    assert main([*args, "--seed", "1", "--out", str(c)]) == 0
    assert not np.array_equal(a, np.load(c))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--keff", "fast"], "--keff"),
        (["--keff", "-1"], "keff"),
        (["--mode", "target", "--clip", "1"], "--clip"),
        (["--mode", "target", "--clip", "1,-1"], "clip"),
        (["--n", "0"], "n must"),
        (["--lr", "0"], "lr"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_dir, tmp_path, capsys, extra, message):
    code = main(["refine", "--run", str(run_dir), "--out", str(tmp_path / "x.npy"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_missing_run_exits_2(tmp_path, capsys):
    assert main(["refine", "--run", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
