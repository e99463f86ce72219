"""Readers for image datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10, SVHN, STL-10, image
folders (CelebA, ...), ``.npy``/``.npz`` arrays and scikit-learn's embedded digits.

Every reader returns a :class:`RawImages` with ``uint8`` (or float) pixels laid out
``(N, C, H, W)`` and ``int64`` labels (or ``None``); scaling to ``[-1, 1]``, resizing and
subsetting happen in :func:`otgen.data.load`. Readers validate before they trust: a file whose
magic number, shape or length is wrong raises :class:`~otgen.errors.OTGenError` naming the file
and is never half-read. Pickled CIFAR batches go through a restricted unpickler that can only
rebuild dicts, lists, bytes and numpy arrays, so a malicious pickle cannot run code.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import pickle
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from otgen.errors import DataNotFoundError, OTGenError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


@dataclass(frozen=True)
class RawImages:
    """Pixels as stored on disk: ``x`` (N, C, H, W) uint8 (or float), ``y`` int64 or None."""

    x: np.ndarray
    y: np.ndarray | None = None
    classes: tuple[str, ...] | None = None


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, transparently gunzipped for ``.gz``; corrupt archives are errors."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise OTGenError(f"{path}: corrupt or truncated file ({exc})") from None


# -- IDX (MNIST / Fashion-MNIST) ---------------------------------------------------------------
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path, *, ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (plain or ``.gz``): magic ``00 00 <type> <ndim>``, big-endian dims.

    The payload length must equal the product of the dims exactly; ``ndim`` (3 for images,
    1 for labels) is checked when given. The header is checked against the file's size before
    the payload is read, so a header declaring terabytes costs nothing.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            return _parse_idx(fh, path, ndim)
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise OTGenError(f"{path}: corrupt or truncated file ({exc})") from None


# deflate cannot expand data by more than ~1032:1, so a .gz of c bytes holds at most this * c
_MAX_GZIP_RATIO = 1100


def _parse_idx(fh, path: Path, ndim: int | None) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise OTGenError(f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'})")
    dtype, nd = _IDX_DTYPES[magic[2]], magic[3]
    if ndim is not None and nd != ndim:
        raise OTGenError(f"{path}: expected a {ndim}-dimensional IDX array, got {nd} dimensions")
    raw_dims = fh.read(4 * nd)
    if len(raw_dims) < 4 * nd:
        raise OTGenError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, ">u4"))
    header = 4 + 4 * nd
    payload = math.prod(dims) * dtype.itemsize  # python ints: no int64 overflow
    size = path.stat().st_size
    bound = size * _MAX_GZIP_RATIO if path.suffix == ".gz" else size - header
    if payload > bound:
        raise OTGenError(
            f"{path}: IDX length mismatch: header says {dims} ({header + payload} bytes) but "
            f"the file holds {size} bytes"
        )
    body = fh.read(payload + 1)  # one byte more reveals trailing data
    if len(body) != payload:
        raise OTGenError(
            f"{path}: IDX length mismatch: header says {dims} ({header + payload} bytes), "
            f"file has {header + len(body)} bytes"
        )
    return np.frombuffer(body, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_pair(images: str | Path, labels: str | Path) -> RawImages:
    """An IDX image file (N, H, W) and its IDX label file (N,), checked against each other."""
    x = read_idx(images, ndim=3)
    y = read_idx(labels, ndim=1)
    if len(x) != len(y):
        raise OTGenError(f"{images}: {len(x)} images but {labels} has {len(y)} labels")
    return RawImages(x[:, None].astype(np.uint8, copy=False), y.astype(np.int64))


# -- CIFAR-10 python batches --------------------------------------------------------------------
def _reconstruct_ndarray(subtype, shape, dtype):
    """``numpy.core.multiarray._reconstruct`` restricted to plain ndarrays."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _plain_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.hasobject:  # object arrays would unpickle arbitrary payloads
        raise pickle.UnpicklingError("object arrays are not allowed")
    return dtype


def _frombuffer(buf, dtype, shape, order):
    """``numpy._core.numeric._frombuffer`` (pickle protocol 5) for plain dtypes only."""
    arr = np.frombuffer(bytes(buf), _plain_dtype(dtype))
    return arr.reshape(shape, order="F" if order == "F" else "C").copy()


def _scalar(dtype, data=b""):
    """``numpy._core.multiarray.scalar``: a numpy scalar (e.g. an ``np.int64`` label)."""
    return np.frombuffer(bytes(data), _plain_dtype(dtype))[0]


def _latin1(text, encoding="latin1"):
    """``_codecs.encode`` as python 3 uses it to pickle bytes at protocol 2."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 text")
    return text.encode("latin1")


_CORE = ("core", "_core")  # numpy 1.x and 2.x module names


class _SafeUnpickler(pickle.Unpickler):
    """Allows exactly the globals a pickled dict of numpy arrays needs; nothing executable.

    Built-in containers (dict, list, bytes, str, int) need no global at all; numpy arrays
    need ``_reconstruct``/``_frombuffer``, ``ndarray``, ``dtype`` and ``scalar``, each replaced
    by a checked stand-in. Every other global (``os.system``, ``builtins.eval``, ...) is
    refused before it can be called.
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        **{(f"numpy.{c}.multiarray", "_reconstruct"): _reconstruct_ndarray for c in _CORE},
        **{(f"numpy.{c}.multiarray", "scalar"): _scalar for c in _CORE},
        **{(f"numpy.{c}.numeric", "_frombuffer"): _frombuffer for c in _CORE},
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None


def safe_unpickle(data: bytes, *, source: str = "pickle") -> object:
    """Unpickle ``data`` allowing only dict/list/bytes/str/number and numpy-array objects."""
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise OTGenError(f"{source}: refused or corrupt pickle ({exc})") from None


def _key(d: dict, name: str):
    """CIFAR batches pickled by python 2 have bytes keys, re-pickled ones str keys."""
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    return None


def read_cifar_batch(path: str | Path) -> RawImages:
    """One CIFAR-10 python batch: ``data`` (N, 3072) uint8 (R, G, B planes), ``labels`` (N,)."""
    path = Path(path)
    obj = safe_unpickle(_read_bytes(path), source=str(path))
    if not isinstance(obj, dict):
        raise OTGenError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    data, labels = _key(obj, "data"), _key(obj, "labels")
    if labels is None:
        labels = _key(obj, "fine_labels")  # CIFAR-100 layout
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise OTGenError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    if data.shape[1] != 3 * 32 * 32:
        raise OTGenError(f"{path}: 'data' rows have {data.shape[1]} values, expected 3072")
    if labels is None or len(labels) != len(data):
        raise OTGenError(f"{path}: 'labels' missing or not one per image")
    y = np.asarray(labels, dtype=np.int64)
    return RawImages(data.reshape(-1, 3, 32, 32), y)


def read_cifar10(folder: str | Path, split: str) -> RawImages:
    """``data_batch_1..5`` (train) or ``test_batch`` (test) in ``cifar-10-batches-py``."""
    folder = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [read_cifar_batch(folder / n) for n in names]
    classes = None
    meta = folder / "batches.meta"
    if meta.is_file():
        m = safe_unpickle(_read_bytes(meta), source=str(meta))
        names_ = _key(m, "label_names") if isinstance(m, dict) else None
        if names_ is not None:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names_)
    return RawImages(
        np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), classes
    )


# -- SVHN (.mat) ---------------------------------------------------------------------------------
def read_svhn(path: str | Path) -> RawImages:
    """SVHN cropped digits: ``X`` (32, 32, 3, N) uint8, ``y`` (N, 1) in 1..10 (10 means 0)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: file not found")
    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises several types for corrupt files
        raise OTGenError(f"{path}: not a readable .mat file ({exc})") from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        raise OTGenError(f"{path}: expected variables 'X' and 'y'")
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise OTGenError(f"{path}: 'X' must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if len(y) != x.shape[3]:
        raise OTGenError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() > 10):
        raise OTGenError(f"{path}: labels outside 0..10")
    y[y == 10] = 0
    return RawImages(np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y)


# -- STL-10 binary ---------------------------------------------------------------------------------
def read_stl10(folder: str | Path, split: str) -> RawImages:
    """``stl10_binary/{split}_X.bin``: N x 3 x 96 x 96 uint8 stored column-major; labels 1..10."""
    folder = Path(folder)
    buf = _read_bytes(folder / f"{split}_X.bin")
    size = 3 * 96 * 96
    if len(buf) == 0 or len(buf) % size:
        raise OTGenError(f"{folder / f'{split}_X.bin'}: length {len(buf)} is not N*3*96*96")
    # column-major storage: each image is (3, 96, 96) with height and width swapped
    x = np.frombuffer(buf, np.uint8).reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    y = None
    ypath = folder / f"{split}_y.bin"
    if ypath.is_file():
        y = np.frombuffer(_read_bytes(ypath), np.uint8).astype(np.int64) - 1
        if len(y) != len(x):
            raise OTGenError(f"{ypath}: {len(y)} labels for {len(x)} images")
    return RawImages(np.ascontiguousarray(x), y)


# -- image folders (CelebA, STL-10 as PNGs, ...) ---------------------------------------------------
def list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def read_image_folder(
    folder: str | Path, *, size: int, crop: int | None = None, indices=None
) -> RawImages:
    """Every image under ``folder``, centre-cropped to a square (``crop`` px, default the
    shorter side) and resized to ``size`` x ``size`` (bicubic, PIL), as RGB or grayscale.

    The folder is grayscale only when every selected image is: one gray file among colour
    ones is widened to RGB, never the colour ones narrowed to gray. 8-bit images give
    ``uint8``; when any image holds more (16-bit PNG/TIFF, 32-bit integer or float TIFF) all
    are returned as float32 in ``[0, 1]``, each scaled by its own bit depth, so no file is
    clipped at 255 or truncated to black. Images in class subfolders (``folder/<class>/*.png``)
    get labels from the sorted subfolder names; images lying directly in ``folder`` (or a mix)
    get none. ``indices`` selects a subset of the sorted file list before decoding.
    """
    folder = Path(folder)
    files = list_images(folder)
    if not files:
        raise DataNotFoundError(
            f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found in this folder"
        )
    parents = {f.parent for f in files}
    labelled = all(p.parent == folder for p in parents) and folder not in parents
    classes = tuple(sorted(p.name for p in parents)) if labelled else None
    if indices is not None:
        files = [files[i] for i in indices]
    gray = all(_with_image(f, lambda im: im.mode in _GRAY_MODES) for f in files)
    out = [_with_image(f, lambda im, f=f: _pixels(im, f, gray, size, crop)) for f in files]
    if any(a.dtype != np.uint8 for a in out):
        out = [a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a for a in out]
    x = np.stack(out)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    y = None
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[f.parent.name] for f in files], dtype=np.int64)
    return RawImages(np.ascontiguousarray(x), y, classes)


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_DEEP_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _with_image(path: Path, use):
    """Open ``path`` with PIL and return ``use(image)``; decoding problems and decompression
    bombs (more pixels than PIL's ``MAX_IMAGE_PIXELS``) are one-line errors naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return use(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise OTGenError(f"{path}: refused, image too large ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise OTGenError(f"{path}: unreadable image ({exc})") from None


def _pixels(im, path: Path, gray: bool, size: int, crop: int | None) -> np.ndarray:
    """(H, W) or (H, W, 3) pixels: uint8 for 8-bit images, float32 in [0, 1] for deeper ones."""
    if im.mode not in _DEEP_MODES:
        return np.asarray(_crop_resize(im.convert("L" if gray else "RGB"), size, crop))
    from PIL import Image

    a = _unit_scale(np.asarray(im), im, path)
    a = np.asarray(_crop_resize(Image.fromarray(a, mode="F"), size, crop), dtype=np.float32)
    a = np.clip(a, 0.0, 1.0)  # bicubic overshoots; the 8-bit path clips the same way
    return a if gray else np.repeat(a[..., None], 3, axis=-1)


def _unit_scale(a: np.ndarray, im, path: Path) -> np.ndarray:
    """A deep single-channel image in [0, 1]: integers divided by 2**bits - 1 (bits from the
    file: PNG 16, TIFF's BitsPerSample, else the mode's width); floats taken as [0, 1]."""
    a = a.astype(np.float64)
    if a.size and not np.isfinite(a).all():
        raise OTGenError(f"{path}: image holds NaN or Inf values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F":
        if lo < 0 or hi > 1:
            raise OTGenError(
                f"{path}: float image values span [{lo:.4g}, {hi:.4g}]; expected [0, 1]"
            )
        return a.astype(np.float32)
    bits = 16 if im.mode.startswith("I;16") or im.format == "PNG" else 32
    tag = getattr(im, "tag_v2", {}).get(258) if im.format == "TIFF" else None
    if isinstance(tag, tuple):
        tag = tag[0]
    bits = int(tag) if isinstance(tag, int) and 1 <= tag <= 32 else bits
    if lo < 0 or hi > 2**bits - 1:
        raise OTGenError(f"{path}: pixel values span [{lo:.6g}, {hi:.6g}], not {bits}-bit")
    return (a / (2**bits - 1)).astype(np.float32)


def _crop_resize(im, size: int, crop: int | None):
    from PIL import Image

    w, h = im.size
    c = min(w, h) if crop is None else min(crop, w, h)
    left, top = (w - c) // 2, (h - c) // 2
    im = im.crop((left, top, left + c, top + c))
    if c != size:
        im = im.resize((size, size), Image.BICUBIC)
    return im


# -- numpy arrays --------------------------------------------------------------------------------
_X_KEYS = ("x", "images", "data", "X", "arr_0")
_Y_KEYS = ("y", "labels", "targets", "Y", "arr_1")


def load_numpy(path: str | Path, what: str = "numpy file") -> np.ndarray | dict[str, np.ndarray]:
    """The array of a ``.npy`` file, or every array of a ``.npz`` archive by name.

    Object arrays are refused (``allow_pickle=False``), so loading never runs code; a missing,
    truncated, corrupt or non-numpy file is one :class:`OTGenError` line naming ``what``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{what} not found: {path}")
    try:
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return obj
        with obj:
            return {k: obj[k] for k in obj.files}
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OTGenError(f"{path}: not a readable {what} ({first})") from None


def read_array(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``.npy`` (one array) or ``.npz`` (keys ``x``/``images``/``data`` and ``y``/``labels``).

    Object arrays are refused (``allow_pickle=False``), so loading never runs code.
    """
    obj = load_numpy(path, "numpy file")
    if isinstance(obj, np.ndarray):
        return obj, None
    xk = next((k for k in _X_KEYS if k in obj), None)
    if xk is None:
        raise OTGenError(
            f"{path}: no image array; expected one of the keys {', '.join(_X_KEYS)} "
            f"(found {', '.join(obj) or 'none'})"
        )
    yk = next((k for k in _Y_KEYS if k in obj and k != xk), None)
    return obj[xk], (obj[yk] if yk else None)


# -- scikit-learn digits --------------------------------------------------------------------------
def read_digits() -> RawImages:
    """scikit-learn's embedded 8x8 digits (1,797 images, 17 gray levels 0..16, labels 0..9).

    Returned as uint8 scaled to 0..255 (v * 255 / 16) so every reader shares one scaling.
    """
    x, y = _digits_arrays()
    return RawImages(x.copy(), y.copy(), tuple(str(i) for i in range(10)))


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # parses a CSV: cached, callers get copies

    d = load_digits()
    return np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None], d.target.astype(np.int64)
