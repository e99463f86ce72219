"""Hostile and careless inputs (issue 17): every one ends in one ``otgen: error:`` line with
exit code 2 (CLI) or an :class:`OTGenError` (API), changes no file, and any numbers returned
describe the input (no silent wrong answer).

Most CLI cases call :func:`otgen.cli.main` in-process (the same code path as ``otgen ...``,
a second per case cheaper); a few run the real ``python -m otgen`` in a subprocess.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import otgen
from otgen.cli import main
from otgen.data.images import load_numpy, read_array, read_idx, read_image_folder
from otgen.engine import checkpoint as C
from otgen.errors import CheckpointError, OTGenError


def tree_hash(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path (what "nothing changed" means)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(capsys, argv: list[str], folder: Path, *, match: str = "") -> str:
    """Run the CLI on ``argv``: exit 2, exactly one stderr line, ``folder`` unchanged."""
    before = tree_hash(folder)
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error: "), err
    assert match in err[0], err[0]
    assert tree_hash(folder) == before, f"{argv} changed files"
    return err[0]


# -- the top level ---------------------------------------------------------------------------


def test_unexpected_exception_is_one_line_and_debug_shows_traceback(monkeypatch, capsys):
    import otgen.commands.sample as sample

    def boom(args):
        raise RuntimeError("internal detail\nsecond line")

    monkeypatch.setattr(sample, "run", boom)
    assert main(["sample", "--run", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sample" in err[0] and "--debug" in err[0], err
    with pytest.raises(RuntimeError, match="internal detail"):
        main(["--debug", "sample", "--run", "x"])


def test_os_errors_are_one_line(monkeypatch, capsys):
    import otgen.commands.sample as sample

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "out.png")

    monkeypatch.setattr(sample, "run", full)
    assert main(["sample", "--run", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["otgen: error: sample: No space left on device (out.png)"]


# -- configs ----------------------------------------------------------------------------------

BAD_CONFIGS = {
    "huge-steps.yaml": b"method: eotgm\ndata: {name: gauss4, n: 100}\nsteps: 1" + b"0" * 23,
    "huge-n.yaml": b"method: eotgm\ndata: {name: gauss4, n: 99999999999999999999}\nsteps: 2",
    "huge-float-batch.yaml": b"method: eotgm\ndata: {name: gauss4}\nsteps: 2\nbatch_size: 1e30",
    "seed.json": b'{"method": "eotgm", "steps": 2, "seed": 99999999999999999999999}',
    "latin1.yaml": "method: eotgm  # caf\xe9\n".encode("latin-1"),
    "deep.json": b'{"method": "eotgm", "params": {"eps": ' + b"[" * 100000 + b"]" * 100000 + b"}}",
    "huge.toml": b'method = "eotgm"\nsteps = 99999999999999999999999\n',
}


def test_bad_configs_are_refused_in_well_under_a_second(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in BAD_CONFIGS.items():
        (tmp_path / name).write_bytes(text)
    main(["train", "huge-n.yaml", "--out", "warm"])  # first call pays the imports
    for name in BAD_CONFIGS:
        t0 = time.perf_counter()
        refused(capsys, ["train", name, "--out", "r"], tmp_path)
        assert time.perf_counter() - t0 < 1.0, name
    refused(capsys, ["train", "eotgm", "--steps", "9" * 20, "--out", "r"], tmp_path, match="steps")


def test_huge_step_count_does_not_hang_the_real_cli(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(BAD_CONFIGS["huge-steps.yaml"] + b"\nout: run\n")
    env = {**os.environ, "PYTHONPATH": str(Path(otgen.__file__).parents[1])}  # this otgen
    proc = subprocess.run(
        [sys.executable, "-m", "otgen", "train", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "otgen: error: steps: 100000000000000000000000 is too large (at most 2147483647)"
    ]
    assert not (tmp_path / "run").exists()


# -- data files -------------------------------------------------------------------------------


def _idx_header(dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_idx_header_declaring_terabytes_is_refused_before_allocating(tmp_path):
    huge = _idx_header((2**32 - 1, 2**16, 2**16)) + b"\0" * 64
    (tmp_path / "x-idx3-ubyte").write_bytes(huge)
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(huge))
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        with pytest.raises(OTGenError, match="length mismatch"):
            read_idx(tmp_path / name, ndim=3)
    wraps = _idx_header((2**16,) * 4)  # 2**64 bytes: an int64 product wraps around to 0
    (tmp_path / "w-idx").write_bytes(wraps)
    with pytest.raises(OTGenError, match="length mismatch"):
        read_idx(tmp_path / "w-idx")
    good = _idx_header((2, 3)) + bytes(range(6))
    (tmp_path / "g.gz").write_bytes(gzip.compress(good))
    assert read_idx(tmp_path / "g.gz").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_numpy_files_that_are_not_plain_arrays(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00")
    for name in ("obj.npy", "bad.npz", "trunc.npy"):
        with pytest.raises(OTGenError, match="not a readable"):
            read_array(tmp_path / name)
    with pytest.raises(OTGenError, match="not a readable FID statistics file"):
        from otgen.metrics.fid import load_stats

        load_stats(tmp_path / "bad.npz")
    np.savez(tmp_path / "ok.npz", x=np.arange(6.0).reshape(2, 3), y=np.array([1, 0]))
    x, y = read_array(tmp_path / "ok.npz")
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]] and y.tolist() == [1, 0]
    assert set(load_numpy(tmp_path / "ok.npz")) == {"x", "y"}


def test_cli_bad_numpy_inputs_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("obj.npy", np.array([{"a": 1}], dtype=object))
    Path("bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    np.savez("labels.npz", x=np.random.rand(10, 8, 8).astype("f4"), y=np.array(["a"] * 10))
    for data in ("obj.npy", "bad.npz", "labels.npz"):
        refused(capsys, ["train", "eotgm", "--data", data, "--steps", "2", "--out", "r"], tmp_path)
    for samples in ("obj.npy", "bad.npz"):
        refused(capsys, ["eval", "--samples", samples, "--data", "gauss4", "--out", "e"], tmp_path)


def test_decompression_bomb_image_is_refused(tmp_path, monkeypatch):
    from PIL import Image

    Image.new("L", (300, 300)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # > limit: warning, > 2x: error
    with pytest.raises(OTGenError, match="too large"):
        read_image_folder(tmp_path, size=8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60_000)
    with pytest.raises(OTGenError, match="too large"):
        read_image_folder(tmp_path, size=8)


def test_image_folder_keeps_bit_depth_and_colour(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8), 0.25, np.float32), mode="F").save(tmp_path / "a.tiff")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "b.png")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 204
    Image.fromarray(rgb).save(tmp_path / "c.png")
    x = read_image_folder(tmp_path, size=8).x
    assert x.shape == (3, 3, 8, 8) and x.dtype == np.float32  # one colour file: all RGB
    np.testing.assert_allclose(x[0], 0.25, atol=1e-6)  # float TIFF: not black
    np.testing.assert_allclose(x[1], 40000 / 65535, atol=1e-6)  # 16-bit: not clipped at 255
    np.testing.assert_allclose(x[2, 0], 204 / 255, atol=1e-6)  # red stays red ...
    np.testing.assert_allclose(x[2, 1:], 0.0)  # ... not gray
    # a gray first file does not turn colour images gray (8-bit folder stays uint8)
    (tmp_path / "a.tiff").unlink()
    (tmp_path / "b.png").unlink()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "a.png")
    x = read_image_folder(tmp_path, size=8).x
    assert x.dtype == np.uint8 and x.shape == (2, 3, 8, 8)
    assert (x[0] == 7).all() and (x[1, 0] == 204).all() and (x[1, 1:] == 0).all()
    Image.fromarray(np.full((8, 8), 2.0, np.float32), mode="F").save(tmp_path / "z.tiff")
    with pytest.raises(OTGenError, match=r"expected \[0, 1\]"):
        read_image_folder(tmp_path, size=8)


def test_complex_features_are_refused():
    from otgen.metrics.fid import fid

    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(OTGenError, match="complex"):
        fid(x + 1j, x)


# -- outputs ----------------------------------------------------------------------------------


def test_outputs_that_cannot_be_written_are_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("keep me")
    Path("dir.png").mkdir()
    np.save("s.npy", np.zeros((30, 2), np.float32))
    refused(capsys, ["sample", "--run", "nowhere", "--out", "afile/x.png"], tmp_path, match="file")
    refused(capsys, ["sample", "--run", "nowhere", "--out", "dir.png"], tmp_path, match="directory")
    argv = ["eval", "--samples", "s.npy", "--data", "gauss4", "--out", "afile/e"]
    refused(capsys, argv, tmp_path, match="which is a file")
    argv = ["train", "eotgm", "--data", "gauss4", "--steps", "2", "--out", "afile/run"]
    refused(capsys, argv, tmp_path, match="which is a file")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == "." else real_access(p, m))
    refused(capsys, ["sample", "--run", "nowhere", "--out", "x.png"], tmp_path, match="writable")


# -- checkpoints ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from otgen.engine import train

    out = tmp_path_factory.mktemp("hostile") / "run"
    cfg = {
        "method": "eotgm",
        "data": {"name": "gauss4", "n": 128},
        "steps": 4,
        "batch_size": 32,
        "checkpoint_every": 2,
        "keep_checkpoints": 5,
        "out": str(out),
    }
    train(cfg)
    return out


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst)
    return dst


def _ckpt(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:09d}.json"


def _edit(path: Path, **changes) -> None:
    rec = json.loads(path.read_text())
    rec.update(changes)
    path.write_text(json.dumps(rec))


def test_checkpoint_bound_to_its_step(run):
    four, two = _ckpt(run, 4), _ckpt(run, 2)
    rec2 = json.loads(two.read_text())
    _edit(four, tensors=rec2["tensors"], sha256=rec2["sha256"])  # re-pointed at step 2's tensors
    with pytest.raises(CheckpointError, match="holds step 2, not step 4"):
        C.load_checkpoint(four)
    _edit(two, step=4)
    with pytest.raises(CheckpointError, match="file name says 2"):
        C.load_checkpoint(two)


def test_resume_refuses_edited_config_unless_allowed(run, capsys):
    cfg = run / "config.json"
    rec = json.loads(cfg.read_text())
    rec["config"]["batch_size"] = 16
    rec["config"]["params"]["betas"] = [0.9, 0.99]
    cfg.write_text(json.dumps(rec))
    refused(capsys, ["resume", "--run", str(run)], run, match="batch_size (32 -> 16)")
    ckpt = C.load_checkpoint(_ckpt(run, 4))
    with pytest.raises(CheckpointError, match=r"method\.betas"):
        C.check_resumable(ckpt, rec["config"], allow=["batch_size"])
    C.check_resumable(ckpt, rec["config"], allow=["batch_size", "method.betas"])
    harmless = {**ckpt.meta["config"], "log_every": 7, "device": "cpu"}
    C.check_resumable(ckpt, harmless)


DEEP = "[" * 50000 + "]" * 50000  # deeper than json.loads or any recursive walk can follow


@pytest.mark.parametrize(
    "damage",
    [
        lambda rec: rec["state"].pop("rng"),
        lambda rec: rec["state"].update(meter={"sums": {}, "count": 1e300}),
        lambda rec: rec["state"].update(meter=[1, 2]),
        lambda rec: rec.update(phase=[]),
        lambda rec: rec.pop("config"),
        lambda rec: rec["state"].update(extra="DEEP"),
    ],
    ids=["no-rng", "count-overflow", "meter-list", "phase-list", "no-config", "deep"],
)
def test_damaged_checkpoint_record_is_one_line(run, capsys, damage):
    path = _ckpt(run, 4)
    rec = json.loads(path.read_text())
    damage(rec)
    path.write_text(json.dumps(rec).replace('"DEEP"', DEEP))
    refused(capsys, ["resume", "--run", str(run)], run)


def test_failed_checkpoint_write_keeps_the_newest_complete_one(run, monkeypatch):
    ckpt_dir = run / "checkpoints"
    state = C.load_checkpoint(_ckpt(run, 4))
    real_write_text = C.write_text

    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "write_text", disk_full)
    before = tree_hash(ckpt_dir)
    with pytest.raises(CheckpointError, match=r"No space left.*step-000000004\.json"):
        C.save_checkpoint(
            ckpt_dir,
            6,
            state.state,
            {
                k: v
                for k, v in state.meta.items()
                if k not in ("format", "step", "tensors", "sha256")
            },
            keep=5,
        )
    assert tree_hash(ckpt_dir) == before  # no orphan tensor file, nothing replaced
    monkeypatch.setattr(C, "write_text", real_write_text)
    assert C.load_checkpoint(C.latest_checkpoint(ckpt_dir)).step == 4


def test_feature_weights_of_another_architecture(tmp_path):
    from otgen.metrics.features import WEIGHTS_DIR, load_domain_net

    for arch in ({"bogus": 1}, {"in_channels": 3, "num_classes": 10}, ["not", "a", "dict"]):
        shutil.copy(WEIGHTS_DIR / "digits-net.safetensors", tmp_path / "w.safetensors")
        rec = json.loads((WEIGHTS_DIR / "digits-net.json").read_text())
        (tmp_path / "w.json").write_text(json.dumps({**rec, "arch": arch}))
        with pytest.raises(CheckpointError, match="DomainNet"):
            load_domain_net(tmp_path / "w.safetensors")


def test_one_sample_batches_with_batchnorm_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "aeotgan", "--data", "digits", "--data-n", "64", "--steps", "1"]
    refused(capsys, [*argv, "--batch-size", "1", "--out", "r"], tmp_path, match="BatchNorm")


@pytest.mark.parametrize(
    "damage",
    [
        lambda rec: rec["state"].update(ema="x"),
        lambda rec: rec["state"].update(nets=[1]),
        lambda rec: rec["state"].update(extra={"__items__": [[[1], 2]]}),
        lambda rec: rec["state"].update(extra="DEEP"),
    ],
    ids=["ema-str", "nets-list", "unhashable-key", "deep"],
)
def test_damaged_checkpoint_cannot_be_sampled(run, capsys, damage):
    path = _ckpt(run, 4)
    rec = json.loads(path.read_text())
    damage(rec)
    path.write_text(json.dumps(rec).replace('"DEEP"', DEEP))
    refused(capsys, ["sample", "--run", str(run), "--out", str(run / "s.npy")], run)


def test_network_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "eotgm", "--data", "gauss4", "--steps", "2", "--out", "r"]
    t0 = time.perf_counter()
    refused(capsys, [*argv, "--set", "method.hidden=[2000000000]"], tmp_path, match="weights")
    assert time.perf_counter() - t0 < 5.0
