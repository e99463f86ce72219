import json

import numpy as np
import pytest
import torch
from torch import nn

from otgen.cli import main
from otgen.data.toy import sample


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    good = sample("grid25", 300, seed=5).numpy()
    np.save(d / "good.npy", good)
    np.savez(d / "shifted.npz", samples=good + 0.5)
    return d


def _scores(out):
    return json.loads((out / "metrics.json").read_text())


def test_eval_toy_samples_writes_labelled_scores_and_is_deterministic(toy_files, tmp_path):
    args = ["eval", "--samples", str(toy_files / "good.npy"), "--data", "grid25"]
    args += ["--metrics", "fid,kid,prdc", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = _scores(tmp_path / "a"), _scores(tmp_path / "b")
    assert a["scores"] == b["scores"]  # same inputs and seed -> identical numbers
    assert a["extractor"] == {"name": "identity", "layer": "points"}
    assert a["inputs"]["n_real"] == a["inputs"]["n_generated"] == 300
    assert set(a["scores"]) >= {"FID-identity", "KID-identity", "precision-identity"}
    assert a["scores"]["FID-identity"] < 0.3 and a["scores"]["coverage-identity"] > 0.8
    assert (tmp_path / "a" / "metrics.md").is_file()
    assert (
        main([*args[:2], str(toy_files / "shifted.npz"), *args[3:], "--out", str(tmp_path / "c")])
        == 0
    )
    shifted = _scores(tmp_path / "c")["scores"]
    assert shifted["FID-identity"] > a["scores"]["FID-identity"] + 0.3  # ‖(0.5, 0.5)‖² = 0.5
    assert shifted["coverage-identity"] < 0.1


def test_eval_default_metrics_skip_what_does_not_apply(toy_files, tmp_path):
    args = ["eval", "--samples", str(toy_files / "good.npy"), "--data", "grid25", "--n", "100"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    res = _scores(tmp_path)
    assert set(res["inputs"]["skipped"]) == {"is", "coverage"}
    assert "PRD-F8-identity" in res["scores"] and (tmp_path / "prd.png").is_file()
    assert res["inputs"]["n_generated"] == 100


class TinyClassifier(nn.Module):
    """Features = per-quadrant means; class = brightest quadrant (4 classes)."""

    feature_layer = "quadrants"

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)

    def logits(self, x):
        return 10.0 * self.forward(x)


def _quadrant_images(labels, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(len(labels), 1, 8, 8, generator=g) * 0.2 - 1.0
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        x[i, 0, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 1.5
    return x


def test_eval_images_with_a_registered_classifier(tmp_path):
    from otgen.metrics.features import register_extractor

    register_extractor("test-eval-net", TinyClassifier(), overwrite=True)
    y = np.arange(200) % 4
    np.savez(tmp_path / "data.npz", x=_quadrant_images(y, 0).numpy(), y=y)
    fake = _quadrant_images(np.zeros(100, int), 1)  # mode collapse onto class 0
    np.save(tmp_path / "fake.npy", fake.numpy())
    out = tmp_path / "out"
    code = main(
        ["eval", "--samples", str(tmp_path / "fake.npy"), "--data", str(tmp_path / "data.npz"),
         "--extractor", "test-eval-net", "--metrics", "fid,is,coverage", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    res = _scores(out)
    assert res["extractor"]["name"] == "test-eval-net"
    assert res["extractor"]["layer"] == "quadrants"
    s = res["scores"]
    assert s["IS-test-eval-net"] == pytest.approx(1.0, abs=1e-3)  # one class only
    assert s["classes-covered-test-eval-net"] == 1
    p = res["details"]["coverage"]["data_fractions"]  # class frequencies of the reference set
    assert len(p) == 4 and sum(p) == pytest.approx(1.0)
    assert s["class-KL-test-eval-net"] == pytest.approx(-np.log(p[0]), abs=1e-9)  # KL(δ_0 ‖ p)
    assert (out / "coverage.png").is_file()


def test_eval_run_samples_from_load_run(monkeypatch, tmp_path):
    import otgen.engine

    class FakeMethod:
        device = torch.device("cpu")

        def sample(self, n):
            return torch.randn(n, 2) * 0.05 + 2.0

    class Cfg:
        class data:
            name = "grid25"
            image_size = None

    monkeypatch.setattr(otgen.engine, "load_run", lambda run, device="cpu": (FakeMethod(), Cfg))
    args = ["eval", "--run", str(tmp_path), "--n", "200", "--metrics", "fid,modes"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = _scores(tmp_path / "a"), _scores(tmp_path / "b")
    assert a["scores"] == b["scores"] and a["inputs"]["data"] == "grid25"
    assert a["scores"]["modes"] == 1  # everything on the mode at (2, 2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "fid,bogus"], "unknown --metrics"),
        (["--metrics", "is"], "does not apply"),
        (["--data", "no-such-data"], "unknown dataset"),
        (["--n", "100000"], "exceeds"),
    ],
)
def test_eval_bad_input_is_one_line_exit_2(toy_files, tmp_path, capsys, extra, message):
    args = ["eval", "--samples", str(toy_files / "good.npy"), "--out", str(tmp_path)]
    if "--data" not in extra:
        args += ["--data", "grid25"]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error:") and message in err[0]


def test_eval_bad_sample_files(tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.full((50, 2), np.nan))
    np.save(tmp_path / "three.npy", np.zeros((50, 3)))
    for name, message in [("missing.npy", "not found"), ("nan.npy", "NaN"), ("three.npy", "shape")]:
        code = main(["eval", "--samples", str(tmp_path / name), "--data", "grid25",
                     "--metrics", "fid", "--out", str(tmp_path / "o")])  # fmt: skip
        assert code == 2
        assert message in capsys.readouterr().err
