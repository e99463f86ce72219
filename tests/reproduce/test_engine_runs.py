import torch

from otgen.reproduce._engine_runs import train_fresh


def test_train_fresh_replaces_an_earlier_run_and_returns_records(tmp_path):
    data = torch.randn(64, 2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stale.txt").write_text("old")
    params = {"hidden": [8], "eps": 1.0}
    records, seconds = train_fresh(
        "eotgm", params, data, steps=4, batch=16, seed=0, device="cpu", run_dir=run_dir,
        log_points=2,
    )  # fmt: skip
    assert not (run_dir / "stale.txt").exists()
    assert (run_dir / "config.json").exists() and seconds > 0
    assert [r["step"] for r in records if "step" in r][-1] >= 2
