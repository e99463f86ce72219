"""otgen.data.load: names, paths, scaling to [-1, 1], subsets, DataSpec and clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from otgen import data
from otgen.errors import DataNotFoundError, OTGenError


# tiny writers (the same formats as tests/data/test_images.py; test files are not a package)
def write_idx(path, arr: np.ndarray, *, gz: bool = False) -> None:
    import gzip
    import struct

    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with (gzip.open if gz else open)(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def write_cifar_batch(path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [1] * n}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_svhn(path) -> None:
    from scipy.io import savemat

    x = np.random.default_rng(1).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)
    savemat(path, {"X": x, "y": np.array([[10], [1], [5]])})


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A data root with tiny fashion-mnist (IDX .gz), cifar10 and svhn files; no system data."""
    monkeypatch.setattr(data, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.delenv("OTGEN_DATA", raising=False)
    root = tmp_path / "root"
    fm = root / "fashion-mnist"
    fm.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 4)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        x[0] = 0
        x[1] = 255
        write_idx(fm / f"{prefix}-images-idx3-ubyte.gz", x, gz=True)
        write_idx(fm / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, gz=True)
    cf = root / "cifar-10-batches-py"
    cf.mkdir()
    for i in range(1, 6):
        write_cifar_batch(cf / f"data_batch_{i}", n=2, seed=i)
    (root / "svhn").mkdir()
    write_svhn(root / "svhn" / "train_32x32.mat")
    return root


def test_fashion_mnist_from_root(fake_root):
    ds = data.load("fashion-mnist", root=fake_root)
    assert ds.x.shape == (12, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.spec.shape == (1, 28, 28) and ds.spec.num_classes == 10 and ds.spec.is_image
    assert ds.x[0].eq(-1).all() and ds.x[1].eq(1).all()  # 0 -> -1, 255 -> +1
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == [i % 10 for i in range(12)]
    assert ds.classes[0] == "T-shirt/top"
    test = data.load("fashion-mnist", split="test", root=fake_root)
    assert len(test) == 4


def test_env_var_root(fake_root, monkeypatch):
    monkeypatch.setenv("OTGEN_DATA", str(fake_root))
    assert len(data.load("fashion-mnist")) == 12


def test_subset_is_seeded_and_resize(fake_root):
    a = data.load("fashion-mnist", root=fake_root, n=5, seed=3)
    b = data.load("fashion-mnist", root=fake_root, n=5, seed=3)
    c = data.load("fashion-mnist", root=fake_root, n=5, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.y, c.y)
    big = data.load("fashion-mnist", root=fake_root, image_size=32)
    assert big.x.shape == (12, 1, 32, 32) and big.spec.shape == (1, 32, 32)
    assert big.x.min() >= -1 and big.x.max() <= 1
    with pytest.raises(OTGenError, match="only 12"):
        data.load("fashion-mnist", root=fake_root, n=13)


def test_missing_dataset_message(fake_root):
    with pytest.raises(DataNotFoundError) as err:
        data.load("mnist", root=fake_root)
    msg = str(err.value)
    assert "train-images-idx3-ubyte[.gz]" in msg and str(fake_root) in msg
    assert "OTGEN_DATA" in msg
    with pytest.raises(DataNotFoundError, match=r"t10k-images.*apt install dataset-fashion-mnist"):
        data.load("fashion-mnist", split="test", root=fake_root / "nothing")


def test_unknown_name_and_split(fake_root):
    with pytest.raises(DataNotFoundError, match="unknown dataset"):
        data.load("no-such-dataset")
    with pytest.raises(OTGenError, match="unknown split"):
        data.load("cifar10", split="valid", root=fake_root)


def test_corrupt_file_rejected(fake_root):
    path = fake_root / "fashion-mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(OTGenError):
        data.load("fashion-mnist", root=fake_root)


def test_cifar_and_svhn_by_name(fake_root):
    c = data.load("cifar10", root=fake_root)
    assert c.x.shape == (10, 3, 32, 32) and c.spec.num_classes == 10
    s = data.load("svhn", root=fake_root)
    assert s.x.shape == (3, 3, 32, 32) and s.y.tolist() == [0, 1, 5]


def test_path_formats_detected(fake_root, tmp_path):
    ds = data.load(fake_root / "cifar-10-batches-py")
    assert ds.x.shape == (10, 3, 32, 32)
    ds = data.load(fake_root / "svhn" / "train_32x32.mat")
    assert len(ds) == 3


def test_malicious_cifar_refused_through_load(fake_root):
    import os

    marker = fake_root / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (fake_root / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(OTGenError, match="not allowed"):
        data.load("cifar10", root=fake_root)
    assert not marker.exists()


def test_arrays(tmp_path):
    np.save(tmp_path / "u8.npy", np.full((4, 8, 8, 3), 255, np.uint8))  # channels-last
    ds = data.load(tmp_path / "u8.npy")
    assert ds.x.shape == (4, 3, 8, 8) and ds.x.eq(1).all() and ds.y is None
    np.savez(tmp_path / "f.npz", x=np.full((4, 1, 8, 8), 0.5, np.float32), y=np.arange(4))
    ds = data.load(tmp_path / "f.npz")
    assert torch.allclose(ds.x, torch.zeros(1)) and ds.spec.num_classes == 4  # [0,1] -> [-1,1]
    pts = np.random.default_rng(0).normal(size=(50, 2)) * 10
    np.save(tmp_path / "p.npy", pts)
    ds = data.load(tmp_path / "p.npy", n=20)
    assert ds.x.shape == (20, 2) and ds.spec.shape == (2,) and not ds.spec.is_image
    np.save(tmp_path / "bad.npy", np.full((2, 8, 8), 300.5))
    with pytest.raises(OTGenError, match="pixel values span"):
        data.load(tmp_path / "bad.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 8, 8), np.nan))
    with pytest.raises(OTGenError, match="NaN"):
        data.load(tmp_path / "nan.npy")


def test_image_folder_path(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 80 * i, np.uint8)).save(tmp_path / f"{i}.png")
    ds = data.load(tmp_path, image_size=16)
    assert ds.x.shape == (3, 3, 16, 16) and ds.y is None
    assert ds.x[0].eq(-1).all()
    assert data.load(tmp_path).x.shape[-1] == data.FOLDER_DEFAULT_SIZE
    assert len(data.load(tmp_path, n=2, seed=1)) == 2


def test_digits_default():
    ds = data.load("digits")
    assert ds.x.shape == (1500, 1, 28, 28) and ds.spec.num_classes == 10
    border = torch.cat([ds.x[..., :2, :].flatten(), ds.x[..., -2:, :].flatten()])
    assert border.eq(-1).all()  # 2-pixel background frame around the 24x24 digit
    test = data.load("digits", split="test")
    assert len(test) == 1797 - 1500
    assert data.load("digits", image_size=32).x.shape[-1] == 32
    assert len(data.load("digits", split="all")) == 1797


def test_toy_dataset():
    ds = data.load("grid25", n=1000, seed=1)
    assert ds.x.shape == (1000, 2) and ds.y is None and ds.spec.shape == (2,)
    again = data.load("grid25", n=1000, seed=1)
    assert torch.equal(ds.x, again.x)
    other = data.load("grid25", n=1000, seed=1, split="test")
    assert not torch.equal(ds.x, other.x)


def test_list_datasets():
    names = data.list_datasets()
    for name in ("fashion-mnist", "mnist", "digits", "cifar10", "svhn", "grid25"):
        assert name in names


@pytest.mark.skipif(
    not (data.SYSTEM_ROOT / "fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_system_fashion_mnist():
    ds = data.load("fashion-mnist", split="test", n=100)
    assert ds.x.shape == (100, 1, 28, 28)
    assert ds.x.min() == -1 and ds.x.max() == 1
