"""``otgen train | sample | resume`` through :func:`otgen.cli.main`."""

import numpy as np
import pytest
from engine_tiny_methods import METHOD, tiny_data

import otgen.engine.trainer as trainer
from otgen.cli import main


@pytest.fixture(autouse=True)
def _tiny_data(monkeypatch):
    monkeypatch.setattr(trainer, "load_data", lambda config: tiny_data())


def _files(d):
    return {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}


def test_train_sample_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        METHOD,
        "--data",
        "tiny4",
        "--out",
        str(out),
        "--steps",
        "6",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--set",
        "method.hidden=8",
        "--ema-decay",
        "0.5",
    ]
    assert main(args) == 0
    assert (out / "checkpoints" / "step-000000006.json").exists()
    assert main(["sample", "--run", str(out), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    arr = np.load(tmp_path / "s.npy")
    assert arr.shape == (10, 2) and np.isfinite(arr).all()
    assert main(["sample", "--run", str(out), "--n", "10"]) == 0
    assert (out / "samples.png").stat().st_size > 0
    assert main(["resume", "--run", str(out)]) == 0  # finished: nothing left to do
    assert main([*args, "--resume"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "method.hiden=8"], "unknown config key 'method.hiden'; did you mean 'hidden'?"),
        (["--set", "bach_size=8"], "did you mean 'batch_size'?"),
        (["--steps", "-3"], "steps: must be >= 1"),
        (["--ema-decay", "2"], "ema.decay: must be in [0, 1)"),
        ([], "already holds a run"),
    ],
)
def test_cli_errors_are_one_line_exit_2_and_touch_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    base = [
        "train",
        METHOD,
        "--out",
        str(out),
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--device",
        "cpu",
    ]
    assert main(base) == 0
    capsys.readouterr()
    before = _files(out)
    assert main(base + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error: ") and message in err[0]
    assert _files(out) == before


def test_config_file_typo_exit_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"method: '{METHOD}'\nsteps: 3\nbatch_size: 32\nlog_evry: 2\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'log_evry'; did you mean 'log_every'?" in err
    assert not (tmp_path / "r").exists()


def test_sample_and_resume_of_missing_or_corrupt_run(tmp_path, capsys):
    assert main(["sample", "--run", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                METHOD,
                "--out",
                str(out),
                "--steps",
                "2",
                "--batch-size",
                "32",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    ck = out / "checkpoints" / "step-000000002.json"
    ck.write_text("{")
    before = _files(out)
    assert main(["resume", "--run", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt" in err[0]
    assert _files(out) == before
