"""``otgen reproduce NAME --status``: the saved curves of resumable runs, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otgen.cli import main
from otgen.errors import OTGenError
from otgen.reproduce._converge import _source_hash
from otgen.reproduce.status import saved_runs


def _save(run_dir: Path, fids: list[float], source: str) -> None:
    run_dir.mkdir(parents=True)
    steps = [1000 * (i + 1) for i in range(len(fids))]
    (run_dir / "curve.json").write_text(json.dumps({
        "key": {"source": source}, "steps": steps, "fid": fids, "se": [0.5] * len(fids),
        "train_seconds": 600.0,
    }))  # fmt: skip


def test_status_reads_each_saved_curve(tmp_path: Path, capsys):
    runs = tmp_path / "runs" / "cpu"
    _save(runs / "dcgan_s0", [90.0, 60.3, 59.9, 60.0, 59.8, 60.1, 59.9], _source_hash())
    _save(runs / "eotgan_s0", [119.0, 107.6, 108.0], "another-code")
    (runs / "broken").mkdir()
    (runs / "broken" / "curve.json").write_text("{not json")
    rows = {r["run"]: r for r in saved_runs(tmp_path, "cpu")}
    assert rows["dcgan_s0"]["steady"] and rows["dcgan_s0"]["same training code"]
    assert rows["dcgan_s0"]["step"] == 7000 and rows["dcgan_s0"]["best"] == 59.8
    assert not rows["dcgan_s0"]["checkpoint"]  # the weights were deleted: it starts afresh
    assert not rows["eotgan_s0"]["steady"]  # one flat pair after a fall
    assert not rows["eotgan_s0"]["same training code"]
    assert rows["broken"]["state"] == "unreadable curve.json"
    assert main(["reproduce", "eot-mixing", "--status", "--out", str(tmp_path)]) == 0
    assert "| dcgan_s0 | 7 | 7000 | 59.9 ± 0.5 |" in capsys.readouterr().out


def test_status_without_runs_is_a_clear_error(tmp_path: Path, capsys):
    with pytest.raises(OTGenError, match="no saved runs of profile 'cpu'"):
        saved_runs(tmp_path, "cpu")
    assert main(["reproduce", "mbgan", "--status", "--out", str(tmp_path)]) == 2
    assert "no saved runs" in capsys.readouterr().err
    assert main(["reproduce", "all", "--status", "--out", str(tmp_path)]) == 2
    assert "--status needs one experiment" in capsys.readouterr().err
