"""Readers of otgen.data.images on small files written by the tests themselves."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from otgen.data import images as im
from otgen.errors import DataNotFoundError, OTGenError


def write_idx(path, arr: np.ndarray, *, gz: bool = False, magic_type: int = 0x08) -> None:
    header = bytes([0, 0, magic_type, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def small_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.arange(5, dtype=np.uint8)


# -- IDX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, small_images, gz):
    x, y = small_images
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"img{sfx}", x, gz=gz)
    write_idx(tmp_path / f"lab{sfx}", y, gz=gz)
    raw = im.read_idx_pair(tmp_path / f"img{sfx}", tmp_path / f"lab{sfx}")
    assert raw.x.shape == (5, 1, 28, 28) and raw.x.dtype == np.uint8
    np.testing.assert_array_equal(raw.x[:, 0], x)
    np.testing.assert_array_equal(raw.y, y)
    assert raw.y.dtype == np.int64


def test_idx_big_endian_int32(tmp_path):
    arr = np.array([1, 70000, -3], dtype=">i4")
    header = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3)
    (tmp_path / "a").write_bytes(header + arr.tobytes())
    np.testing.assert_array_equal(im.read_idx(tmp_path / "a"), [1, 70000, -3])


def test_idx_bad_magic_rejected(tmp_path, small_images):
    write_idx(tmp_path / "img", small_images[0])
    data = bytearray((tmp_path / "img").read_bytes())
    data[0] = 7
    (tmp_path / "img").write_bytes(bytes(data))
    with pytest.raises(OTGenError, match="bad magic"):
        im.read_idx(tmp_path / "img")


@pytest.mark.parametrize("delta", [-1, +3])
def test_idx_wrong_length_rejected(tmp_path, small_images, delta):
    write_idx(tmp_path / "img", small_images[0])
    data = (tmp_path / "img").read_bytes()
    data = data[:delta] if delta < 0 else data + b"\0" * delta
    (tmp_path / "img").write_bytes(data)
    with pytest.raises(OTGenError, match="length mismatch"):
        im.read_idx(tmp_path / "img")


def test_idx_wrong_ndim_and_count_rejected(tmp_path, small_images):
    x, y = small_images
    write_idx(tmp_path / "img", x)
    write_idx(tmp_path / "lab", y[:4])
    with pytest.raises(OTGenError, match="3-dimensional"):
        im.read_idx(tmp_path / "lab", ndim=3)
    with pytest.raises(OTGenError, match="4 labels"):
        im.read_idx_pair(tmp_path / "img", tmp_path / "lab")


def test_idx_truncated_gzip_rejected(tmp_path, small_images):
    write_idx(tmp_path / "img.gz", small_images[0], gz=True)
    data = (tmp_path / "img.gz").read_bytes()
    (tmp_path / "img.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(OTGenError, match="corrupt or truncated"):
        im.read_idx(tmp_path / "img.gz")


def test_missing_file_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        im.read_idx(tmp_path / "nope")


# -- CIFAR ---------------------------------------------------------------------------------------
def write_cifar_batch(path, n=4, seed=0, *, protocol=2, str_keys=False):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    k = (lambda s: s) if str_keys else (lambda s: s.encode())
    path.write_bytes(pickle.dumps({k("data"): data, k("labels"): labels}, protocol=protocol))
    return data, labels


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batch(tmp_path, protocol):
    data, labels = write_cifar_batch(tmp_path / "b", protocol=protocol, str_keys=protocol == 5)
    raw = im.read_cifar_batch(tmp_path / "b")
    assert raw.x.shape == (4, 3, 32, 32)
    # CIFAR rows hold the R plane, then G, then B, each row-major 32x32
    np.testing.assert_array_equal(raw.x[1, 2, 3], data[1, 2 * 1024 + 3 * 32 : 2 * 1024 + 4 * 32])
    np.testing.assert_array_equal(raw.y, labels)


def test_cifar_folder_train_and_test(tmp_path):
    for i in range(1, 6):
        write_cifar_batch(tmp_path / f"data_batch_{i}", n=2, seed=i)
    write_cifar_batch(tmp_path / "test_batch", n=3, seed=9)
    assert len(im.read_cifar10(tmp_path, "train").x) == 10
    assert len(im.read_cifar10(tmp_path, "test").y) == 3


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_cifar_pickle_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}))
    with pytest.raises(OTGenError, match="not allowed"):
        im.read_cifar_batch(tmp_path / "b")
    assert not marker.exists()
    # an object array smuggling the payload is refused as well
    evil_arr = np.array([_Evil(marker)], dtype=object)
    (tmp_path / "c").write_bytes(pickle.dumps({b"data": evil_arr, b"labels": [0]}))
    with pytest.raises(OTGenError):
        im.read_cifar_batch(tmp_path / "c")
    assert not marker.exists()


def test_cifar_wrong_shape_rejected(tmp_path):
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "b").write_bytes(pickle.dumps(bad))
    with pytest.raises(OTGenError, match="3072"):
        im.read_cifar_batch(tmp_path / "b")
    bad = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}
    (tmp_path / "b").write_bytes(pickle.dumps(bad))
    with pytest.raises(OTGenError, match="labels"):
        im.read_cifar_batch(tmp_path / "b")


# -- SVHN ----------------------------------------------------------------------------------------
def write_svhn(path, n=3):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = np.array([[10], [1], [5]])[:n]
    savemat(path, {"X": x, "y": y})
    return x, y


def test_svhn_mat(tmp_path):
    x, _ = write_svhn(tmp_path / "train_32x32.mat")
    raw = im.read_svhn(tmp_path / "train_32x32.mat")
    assert raw.x.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(raw.x[2, 1, 4, 7], x[4, 7, 1, 2])  # (H, W, C, N) -> (N, C, H, W)
    np.testing.assert_array_equal(raw.y, [0, 1, 5])  # label 10 means digit 0


def test_svhn_wrong_shape_and_garbage(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "a.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(OTGenError, match="32, 32, 3"):
        im.read_svhn(tmp_path / "a.mat")
    (tmp_path / "b.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(OTGenError):
        im.read_svhn(tmp_path / "b.mat")


# -- STL-10 binary ---------------------------------------------------------------------------------
def test_stl10_column_major(tmp_path):
    img = np.arange(3 * 96 * 96, dtype=np.int64).reshape(3, 96, 96) % 251
    # stored column-major: write the transpose of each channel in row-major order
    (tmp_path / "train_X.bin").write_bytes(img.transpose(0, 2, 1).astype(np.uint8).tobytes())
    (tmp_path / "train_y.bin").write_bytes(bytes([3]))
    raw = im.read_stl10(tmp_path, "train")
    np.testing.assert_array_equal(raw.x[0], img)
    np.testing.assert_array_equal(raw.y, [2])
    (tmp_path / "train_X.bin").write_bytes(b"\0" * 100)
    with pytest.raises(OTGenError, match="not N"):
        im.read_stl10(tmp_path, "train")


# -- image folders -------------------------------------------------------------------------------
def test_image_folder_crop_resize_and_labels(tmp_path):
    from PIL import Image

    for cls, value in (("cat", 50), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            arr = np.full((40, 60, 3), value, np.uint8)
            arr[:, :10] = 0  # outside the centre crop: must not reach the output
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    raw = im.read_image_folder(tmp_path, size=16)
    assert raw.x.shape == (4, 3, 16, 16)
    assert raw.classes == ("cat", "dog")
    np.testing.assert_array_equal(raw.y, [0, 0, 1, 1])
    assert np.all(raw.x[:2] == 50) and np.all(raw.x[2:] == 200)


def test_image_folder_unlabelled_gray_and_broken(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "a.png")
    raw = im.read_image_folder(tmp_path, size=8)
    assert raw.x.shape == (1, 1, 8, 8) and raw.y is None
    (tmp_path / "b.png").write_bytes(b"garbage")
    with pytest.raises(OTGenError, match="unreadable image"):
        im.read_image_folder(tmp_path, size=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no images"):
        im.read_image_folder(tmp_path / "empty", size=8)


# -- arrays --------------------------------------------------------------------------------------
def test_npy_and_npz(tmp_path):
    x = np.zeros((3, 8, 8), np.uint8)
    np.save(tmp_path / "a.npy", x)
    arr, lab = im.read_array(tmp_path / "a.npy")
    assert arr.shape == (3, 8, 8) and lab is None
    np.savez(tmp_path / "b.npz", images=x, labels=np.arange(3))
    arr, lab = im.read_array(tmp_path / "b.npz")
    np.testing.assert_array_equal(lab, [0, 1, 2])
    np.savez(tmp_path / "c.npz", foo=x)
    with pytest.raises(OTGenError, match="expected one of the keys"):
        im.read_array(tmp_path / "c.npz")


def test_npy_object_array_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OTGenError, match="not a readable numpy file"):
        im.read_array(tmp_path / "o.npy")
    (tmp_path / "t.npy").write_bytes((tmp_path / "o.npy").read_bytes()[:20])
    with pytest.raises(OTGenError):
        im.read_array(tmp_path / "t.npy")


def test_digits_reader():
    raw = im.read_digits()
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.max() == 255 and raw.x.min() == 0
    assert set(np.unique(raw.y)) == set(range(10))
