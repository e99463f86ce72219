"""Datasets: one call, :func:`load`, for the 2D toys, image datasets, folders and arrays.

``load(name_or_path, split=, n=, seed=, image_size=, root=)`` returns a frozen
:class:`Dataset`: ``x`` float32 (images ``(N, C, H, W)`` scaled to ``[-1, 1]``, points
``(N, 2)``), ``y`` int64 labels or ``None``, the :class:`~otgen.data.DataSpec` a method
builds its networks from, and the name. Image files are looked for, in order, in ``root``
(``--data-root``), ``$OTGEN_DATA`` and ``/usr/share/datasets`` (Debian's ``dataset-*``
packages); a missing or corrupt file raises :class:`~otgen.errors.DataNotFoundError` /
:class:`~otgen.errors.OTGenError` saying what is expected and where.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from otgen.data import images as _img
from otgen.data.fetch import fetch_command
from otgen.data.spec import DataSpec
from otgen.errors import DataNotFoundError, OTGenError
from otgen.utils.cache import datasets_dir
from otgen.utils.checks import check_int

__all__ = ["DataSpec", "Dataset", "dataset_dir", "list_datasets", "load", "to_unit_range"]

SYSTEM_ROOT = Path("/usr/share/datasets")
TOY_DEFAULT_N = 100_000  # PacGAN trains on 100,000 points
DIGITS_SPLIT_SEED = 0  # fixed permutation splitting sklearn digits into train/test
DIGITS_TRAIN = 1500  # 1,500 train / 297 test
CELEBA_CROP = 140  # centre crop of the 178x218 aligned faces before resizing (DCGAN-style)
FOLDER_DEFAULT_SIZE = 64
MAX_BYTES = 8 * 2**30  # refuse to materialise more than 8 GiB of float32 pixels

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """A whole dataset in memory (float32 ``x``, int64 ``y`` or None) and its :class:`DataSpec`."""

    x: torch.Tensor
    y: torch.Tensor | None
    spec: DataSpec
    name: str
    classes: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.x)


# -- where files live ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    doc: str
    subdirs: tuple[str, ...]  # folder names tried under each root
    probe: Callable[[Path, str], Path]  # the file proving the folder holds the split
    expected: Callable[[str], str]  # split -> the file(s) the error message says are expected
    apt: str | None = None


def _idx_names(split: str) -> tuple[str, str]:
    prefix = {"train": "train", "test": "t10k"}[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _gz(folder: Path, name: str) -> Path:
    """``name`` or ``name.gz`` in ``folder`` (the plain file wins if both exist)."""
    plain = folder / name
    return plain if plain.is_file() else folder / f"{name}.gz"


_SPLITS = {
    "mnist": ("train", "test"),
    "fashion-mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "svhn": ("train", "test", "extra"),
    "stl10": ("train", "test", "unlabeled"),
    "celeba": ("train",),
    "digits": ("train", "test", "all"),
}

_SOURCES = {
    "fashion-mnist": _Source(
        "Fashion-MNIST 28x28 grayscale, 10 classes (60,000 train / 10,000 test), IDX files",
        ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        lambda d, s: _gz(d, _idx_names(s)[0]),
        lambda s: f"{_idx_names(s)[0]}[.gz] and {_idx_names(s)[1]}[.gz]",
        "dataset-fashion-mnist",
    ),
    "mnist": _Source(
        "MNIST 28x28 grayscale digits (60,000 / 10,000), IDX files",
        ("mnist", "MNIST/raw"),
        lambda d, s: _gz(d, _idx_names(s)[0]),
        lambda s: f"{_idx_names(s)[0]}[.gz] and {_idx_names(s)[1]}[.gz]",
    ),
    "cifar10": _Source(
        "CIFAR-10 32x32 RGB, 10 classes (50,000 / 10,000), python pickle batches",
        ("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10", "cifar-10"),
        lambda d, s: d / ("data_batch_1" if s == "train" else "test_batch"),
        lambda s: "data_batch_1..5" if s == "train" else "test_batch",
    ),
    "svhn": _Source(
        "SVHN cropped digits 32x32 RGB (73,257 / 26,032 / 531,131 extra), .mat files",
        ("svhn", "SVHN"),
        lambda d, s: d / f"{s}_32x32.mat",
        lambda s: f"{s}_32x32.mat",
    ),
    "stl10": _Source(
        "STL-10 96x96 RGB (5,000 / 8,000 / 100,000 unlabeled), binary files",
        ("stl10_binary", "stl10/stl10_binary", "stl10"),
        lambda d, s: d / f"{s}_X.bin",
        lambda s: f"{s}_X.bin",
    ),
    "celeba": _Source(
        "CelebA aligned faces (202,599 JPEGs), centre-cropped 140 px, resized (default 64)",
        ("celeba/img_align_celeba", "img_align_celeba", "celeba"),
        lambda d, s: d / "000001.jpg",
        lambda s: "000001.jpg ... (the aligned CelebA JPEGs)",
    ),
}


def _roots(root: str | Path | None) -> list[Path]:
    roots = [Path(root)] if root else []
    if os.environ.get("OTGEN_DATA"):
        roots.append(Path(os.environ["OTGEN_DATA"]))
    return [*roots, datasets_dir(), SYSTEM_ROOT]  # datasets_dir: where `otgen data fetch` puts them


def dataset_dir(name: str, *, split: str = "train", root: str | Path | None = None) -> Path:
    """The folder holding ``name``'s ``split`` files, or a :class:`DataNotFoundError` saying
    which file is expected where (``root``, then ``$OTGEN_DATA``, then ``/usr/share/datasets``).
    """
    src = _SOURCES[name]
    _check_split(name, split)
    tried = []
    for r in _roots(root):
        for d in (*(r / s for s in src.subdirs), r):
            if src.probe(d, split).is_file():
                return d
        tried.append(str(r / src.subdirs[0]))
    hint = f"apt install {src.apt}, " if src.apt else ""
    hint = f"run `{fetch_command(name)}`, {hint}" if fetch_command(name) else hint
    raise DataNotFoundError(
        f"{name}: expected {src.expected(split)} in {' or '.join(tried)} "
        f"({hint}or pass --data-root DIR / set OTGEN_DATA)"
    )


def _check_split(name: str, split: str) -> None:
    splits = _SPLITS.get(name, ("train", "test"))
    if split not in splits:
        raise OTGenError(f"{name}: unknown split {split!r}; choose one of: {', '.join(splits)}")


def list_datasets() -> dict[str, str]:
    """Every dataset name :func:`load` accepts, with a one-line description."""
    out = {name: f"2D toy ({name}), default n = {TOY_DEFAULT_N:,}" for name in _toy_names()}
    out["digits"] = "scikit-learn 8x8 digits (1,797, embedded), padded to 28x28 by default"
    out.update({name: src.doc for name, src in _SOURCES.items()})
    out["<folder>"] = "any image folder (class subfolders give labels), centre-crop + resize"
    out["<file.npy|.npz>"] = "an array of images (N,H,W[,C]) / (N,C,H,W) or points (N,d)"
    return out


def _toy_names() -> tuple[str, ...]:
    from otgen.data.toy import TOY_DATASETS

    return tuple(TOY_DATASETS)


# -- pixels -> tensors ----------------------------------------------------------------------------
def to_unit_range(x: np.ndarray | torch.Tensor, name: str = "images") -> torch.Tensor:
    """Scale pixels to ``[-1, 1]`` float32: uint8 0..255 -> x/127.5 - 1, floats in [0, 1] ->
    2x - 1, floats already in [-1, 1] unchanged; anything else is an error, never a guess."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.dtype == torch.uint8:
        return t.float().div_(127.5).sub_(1.0)
    if t.dtype == torch.bool or t.is_complex():
        raise OTGenError(f"{name}: unsupported pixel dtype {t.dtype}")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise OTGenError(f"{name} contains NaN or Inf values")
    lo, hi = (float(t.min()), float(t.max())) if t.numel() else (0.0, 1.0)
    if lo >= 0 and hi <= 1:
        return t.mul_(2.0).sub_(1.0)
    if lo >= -1 and hi <= 1:
        return t
    if lo >= 0 and hi <= 255 and bool((t == t.round()).all()):
        return t.div_(127.5).sub_(1.0)
    raise OTGenError(
        f"{name}: pixel values span [{lo:.4g}, {hi:.4g}]; expected uint8 0..255 or floats in "
        "[0, 1] or [-1, 1]"
    )


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Bilinear resize to ``size`` x ``size`` (antialiased when shrinking), clamped to [-1, 1]."""
    if size is None or x.shape[-2:] == (size, size):
        return x
    out = torch.cat(
        [
            F.interpolate(
                c, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
            for c in x.split(4096)
        ]
    )
    return out.clamp_(-1.0, 1.0)


def _subset(total: int, n: int | None, seed: int) -> np.ndarray | None:
    """Indices of a seeded random subset of size ``n`` (sorted, so order follows the file)."""
    if n is None or n == total:
        return None
    if n > total:
        raise OTGenError(f"n = {n} but the dataset has only {total} samples")
    g = torch.Generator().manual_seed(seed)
    return np.sort(torch.randperm(total, generator=g)[:n].numpy())


def _finish(
    raw: _img.RawImages,
    name: str,
    *,
    n: int | None,
    seed: int,
    image_size: int | None,
    num_classes: int | None = None,
    classes: tuple[str, ...] | None = None,
    picked: bool = False,
) -> Dataset:
    x, y = raw.x, raw.y
    if not picked:
        idx = _subset(len(x), n, seed)
        if idx is not None:
            x, y = x[idx], (y[idx] if y is not None else None)
    size = image_size or x.shape[-1]
    nbytes = len(x) * x.shape[1] * size * size * 4
    if nbytes > MAX_BYTES:
        raise OTGenError(
            f"{name}: {len(x):,} images at {size}x{size} need {nbytes / 2**30:.1f} GiB; "
            "pass n= (--n) to load a subset"
        )
    xt = _resize(to_unit_range(x, name), image_size).contiguous()
    yt = torch.as_tensor(y, dtype=torch.int64) if y is not None else None
    classes = classes or raw.classes
    if num_classes is None and yt is not None:
        num_classes = len(classes) if classes else int(yt.max()) + 1 if len(yt) else None
    spec = DataSpec(shape=tuple(xt.shape[1:]), num_classes=num_classes)
    return Dataset(xt, yt, spec, name, classes)


# -- the datasets --------------------------------------------------------------------------------
def _load_toy(name: str, split: str, n: int | None, seed: int) -> Dataset:
    from otgen.data import toy

    if split not in ("train", "test"):
        raise OTGenError(f"{name}: unknown split {split!r}; choose one of: train, test")
    n = TOY_DEFAULT_N if n is None else n
    # the test split is an independent draw: a seed stream far from any user seed
    s = seed if split == "train" else seed + 1_000_000_007
    x = torch.as_tensor(toy.sample(name, n, seed=s), dtype=torch.float32)
    lo, hi = float(x.min()), float(x.max())
    return Dataset(x.contiguous(), None, DataSpec(shape=(x.shape[1],), value_range=(lo, hi)), name)


def _load_digits(split: str, n, seed, image_size) -> Dataset:
    """sklearn digits: 8x8 bilinearly upsampled to (s-4)x(s-4) and zero-padded by 2 px
    (background = -1), s = ``image_size`` or 28, like MNIST's centred digit with a border."""
    _check_split("digits", split)
    raw = _img.read_digits()
    perm = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(raw.x))
    keep = {"train": perm[:DIGITS_TRAIN], "test": perm[DIGITS_TRAIN:], "all": perm}[split]
    keep = np.sort(keep)
    raw = _img.RawImages(raw.x[keep], raw.y[keep], raw.classes)
    size = image_size or 28
    if size < 8:
        raise OTGenError(f"digits: image_size must be >= 8, got {size}")
    pad = 2 if size >= 16 else 0
    ds = _finish(raw, "digits", n=n, seed=seed, image_size=size - 2 * pad, num_classes=10)
    if pad:
        x = F.pad(ds.x, (pad, pad, pad, pad), value=-1.0)
        ds = Dataset(
            x, ds.y, DataSpec(shape=tuple(x.shape[1:]), num_classes=10), "digits", ds.classes
        )
    return ds


def _load_named(name, split, n, seed, image_size, root) -> Dataset:
    _check_split(name, split)
    folder = dataset_dir(name, split=split, root=root)
    kw = {"n": n, "seed": seed, "image_size": image_size}
    if name in ("mnist", "fashion-mnist"):
        img, lab = _idx_names(split)
        raw = _img.read_idx_pair(_gz(folder, img), _gz(folder, lab))
        classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(map(str, range(10)))
        return _finish(raw, name, num_classes=10, classes=classes, **kw)
    if name == "cifar10":
        raw = _img.read_cifar10(folder, split)
        return _finish(raw, name, num_classes=10, classes=raw.classes or CIFAR10_CLASSES, **kw)
    if name == "svhn":
        raw = _img.read_svhn(folder / f"{split}_32x32.mat")
        return _finish(raw, name, num_classes=10, classes=tuple(map(str, range(10))), **kw)
    if name == "stl10":
        raw = _img.read_stl10(folder, split)
        return _finish(raw, name, num_classes=10 if raw.y is not None else None, **kw)
    # celeba: a folder of JPEGs
    return _load_folder(folder, "celeba", n, seed, image_size, crop=CELEBA_CROP)


def _load_folder(folder: Path, name: str, n, seed, image_size, crop=None) -> Dataset:
    size = image_size or FOLDER_DEFAULT_SIZE
    files = _img.list_images(folder)
    idx = _subset(len(files), n, seed) if files else None
    raw = _img.read_image_folder(folder, size=size, crop=crop, indices=idx)
    return _finish(raw, name, n=n, seed=seed, image_size=size, picked=True)


def _load_path(path: Path, split: str, n, seed, image_size) -> Dataset:
    name = str(path)
    if path.is_dir():
        # a folder holding one of the known formats, else a plain image folder
        for fmt, src in _SOURCES.items():
            if fmt != "celeba" and split in _SPLITS[fmt] and src.probe(path, split).is_file():
                return _load_named(fmt, split, n, seed, image_size, path)
        if (path / split).is_dir():
            path = path / split
        return _load_folder(path, name, n, seed, image_size)
    if path.suffix in (".npy", ".npz"):
        x, y = _img.read_array(path)
        return _from_array(x, y, name, n, seed, image_size)
    if path.suffix == ".mat":
        return _finish(_img.read_svhn(path), name, n=n, seed=seed, image_size=image_size)
    raise OTGenError(f"{path}: unsupported file type; use a folder, .npy, .npz or .mat")


def _from_array(x: np.ndarray, y, name: str, n, seed, image_size) -> Dataset:
    """Arrays: (N, d) points kept as they are; (N, H, W), (N, H, W, C) or (N, C, H, W) images."""
    if x.dtype.kind not in "uif":
        raise OTGenError(f"{name}: unsupported array dtype {x.dtype}")
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x) or y.dtype.kind not in "ui":
            raise OTGenError(f"{name}: labels must be integers, one per sample ({len(x)})")
    if x.ndim == 2:
        idx = _subset(len(x), n, seed)
        if idx is not None:
            x, y = x[idx], (y[idx] if y is not None else None)
        t = torch.as_tensor(x, dtype=torch.float32)
        if not bool(torch.isfinite(t).all()) or t.numel() == 0:
            raise OTGenError(f"{name}: points must be a non-empty finite (N, d) array")
        spec = DataSpec(shape=(t.shape[1],), value_range=(float(t.min()), float(t.max())))
        yt = torch.as_tensor(y, dtype=torch.int64) if y is not None else None
        return Dataset(t.contiguous(), yt, spec, name)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # channels-last (N, H, W, C) -> (N, C, H, W)
    elif x.ndim != 4:
        raise OTGenError(f"{name}: expected (N, d), (N, H, W) or (N, C, H, W), got {x.shape}")
    if x.shape[1] not in (1, 3, 4):
        raise OTGenError(f"{name}: images must have 1, 3 or 4 channels, got shape {x.shape}")
    raw = _img.RawImages(np.ascontiguousarray(x), y.astype(np.int64) if y is not None else None)
    return _finish(raw, name, n=n, seed=seed, image_size=image_size)


def load(
    name_or_path: str | Path,
    *,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    root: str | Path | None = None,
) -> Dataset:
    """Load a dataset by name (see :func:`list_datasets`) or path.

    ``n`` keeps a seeded random subset (``seed``); for 2D toys it is the number of points
    drawn (default 100,000, as PacGAN). ``image_size`` resizes images to a square (bilinear,
    antialiased); ``root`` is searched before ``$OTGEN_DATA`` and ``/usr/share/datasets``.
    """
    if n is not None:
        n = check_int(n, "n")
    if image_size is not None:
        image_size = check_int(image_size, "image_size")
    seed = check_int(seed, "seed", minimum=0)
    name = str(name_or_path)
    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "stl-10": "stl10"}.get(key, key)
    if key in _toy_names():
        return _load_toy(key, split, n, seed)
    if key == "digits":
        return _load_digits(split, n, seed, image_size)
    if key in _SOURCES:
        return _load_named(key, split, n, seed, image_size, root)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _load_path(path, split, n, seed, image_size)
    known = ", ".join(k for k in list_datasets() if not k.startswith("<"))
    raise DataNotFoundError(f"unknown dataset {name!r}: not a file or folder; known names: {known}")
