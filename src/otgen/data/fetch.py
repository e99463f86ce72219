"""Download known datasets and weights once, verify them, and keep them in the otgen cache.

:func:`download` fetches one URL over HTTP(S) into ``dest``:

- **resume**: bytes go to ``dest.part``; a later call (or a retry after the server dropped the
  connection) asks for the rest with an HTTP ``Range: bytes=N-`` header and appends, or starts
  over if the server ignores ranges (status 200 instead of 206);
- **verify**: the finished ``.part`` is hashed (md5 or sha256, whichever the publisher gives;
  for torch-hub style names like ``pt_inception-…-6726825d.pth`` the file name carries the first
  8 hex digits of the sha256) and deleted on a mismatch, with an error naming both digests;
- **atomic**: only a verified file is renamed (``os.replace``) to its final name, so an
  interrupted or corrupt download never leaves a file under the name the loaders read.

:data:`DATASETS` lists what ``otgen data fetch NAME`` knows: canonical URLs, sizes, licences and
the checksums with where they were published. ``$OTGEN_FETCH_BASE_URL`` (or ``base_url=``)
replaces the folder part of every URL: a mirror, or the loopback server of the tests.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from otgen.errors import OTGenError
from otgen.utils.cache import datasets_dir

BASE_URL_ENV = "OTGEN_FETCH_BASE_URL"
CHUNK = 1 << 16
RETRIES = 3  # reconnections (each resuming where the last stopped) before giving up
TIMEOUT_S = 60.0


class FetchError(OTGenError):
    """A download failed (HTTP error, connection lost too often) or did not verify."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int | None = None  # bytes, for display; the checksum is what is verified
    md5: str | None = None
    sha256: str | None = None  # full digest, or a prefix (torch-hub file names carry 8 hex)
    extract: bool = False  # a .tar.gz unpacked into the dataset root after verification

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class KnownDataset:
    name: str
    description: str
    homepage: str
    licence: str
    checksum_source: str
    subdir: str  # folder under the root that receives the files (archives unpack into root)
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _idx(base: str, sizes: tuple[int, int, int, int], md5s: tuple[str, ...]) -> tuple:
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return tuple(RemoteFile(base + n, s, md5=m) for n, s, m in zip(names, sizes, md5s, strict=True))


DATASETS: dict[str, KnownDataset] = {
    "fashion-mnist": KnownDataset(
        "fashion-mnist",
        "Fashion-MNIST, 28x28 grayscale, 60,000 train / 10,000 test (IDX, gzip)",
        "https://github.com/zalandoresearch/fashion-mnist",
        "MIT",
        "md5 published in the Fashion-MNIST README",
        "fashion-mnist",
        _idx(
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
            (26421880, 29515, 4422102, 5148),
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
    ),
    "mnist": KnownDataset(
        "mnist",
        "MNIST digits, 28x28 grayscale, 60,000 train / 10,000 test (IDX, gzip)",
        "http://yann.lecun.com/exdb/mnist/ (HTTP only; files served from torchvision's mirror)",
        "not stated on the original page (widely redistributed; cite LeCun et al. 1998)",
        "md5 not published by the authors; torchvision's table",
        "mnist",
        _idx(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            (9912422, 28881, 1648877, 4542),
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        ),
    ),
    "cifar10": KnownDataset(
        "cifar10",
        "CIFAR-10, 32x32 RGB, 50,000 train / 10,000 test (python pickles, tar.gz)",
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "not stated (cite Krizhevsky 2009)",
        "md5 published on the CIFAR page",
        "",
        (
            RemoteFile(
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                170498071,
                md5="c58f30108f718f92721af3b95e74349a",
                extract=True,
            ),
        ),
    ),
    "svhn": KnownDataset(
        "svhn",
        "SVHN cropped digits, 32x32 RGB, 73,257 train / 26,032 test / 531,131 extra (.mat)",
        "http://ufldl.stanford.edu/housenumbers/",
        "non-commercial use only (as stated on the SVHN page)",
        "md5 not published by the authors; torchvision's table",
        "svhn",
        (
            RemoteFile(
                "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                182040794,
                md5="e26dedcc434d2e4c54c9b2d4a06d8373",
            ),
            RemoteFile(
                "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                64275384,
                md5="eb5a983be6a315427106f1b164d9cef3",
            ),
            RemoteFile(
                "http://ufldl.stanford.edu/housenumbers/extra_32x32.mat",
                1329278602,
                md5="a93ce644f1a588dc4d68dda5feec44a7",
            ),
        ),
    ),
    "stl10": KnownDataset(
        "stl10",
        "STL-10, 96x96 RGB, 5,000 train / 8,000 test / 100,000 unlabeled (binary, tar.gz)",
        "https://cs.stanford.edu/~acoates/stl10/",
        "not stated (images from ImageNet; cite Coates et al. 2011)",
        "md5 not published by the authors; torchvision's table",
        "",
        (
            RemoteFile(
                "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                2640397119,
                md5="91f7769df0f17e558f3565bffb0c7dfb",
                extract=True,
            ),
        ),
    ),
}

# The pytorch-fid Inception-v3 weights (also used by torch-fidelity). The publisher gives no
# checksum beyond the torch-hub file-name convention: "-6726825d" = sha256[:8] of the file.
INCEPTION_V3 = RemoteFile(
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    None,  # about 91 MiB; not pinned here (the hash is what is checked)
    sha256="6726825d",
)


# -- downloading --------------------------------------------------------------------------------
def with_base_url(f: RemoteFile, base_url: str | None) -> RemoteFile:
    """``f`` served from ``base_url`` (default ``$OTGEN_FETCH_BASE_URL``) instead, if given."""
    base = base_url or os.environ.get(BASE_URL_ENV)
    if not base:
        return f
    return RemoteFile(f"{base.rstrip('/')}/{f.filename}", f.size, f.md5, f.sha256, f.extract)


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, f: RemoteFile) -> str | None:
    """None if ``path`` matches ``f``'s published checksum, else a message saying how not."""
    algo, want = ("sha256", f.sha256) if f.sha256 else ("md5", f.md5)
    if not want:
        raise OTGenError(f"{f.filename}: no checksum known; refusing to trust an unchecked file")
    got = file_digest(path, algo)
    if got.startswith(want.lower()):
        return None
    return f"{algo} {got} does not match the published {want}"


def download(f: RemoteFile, dest: str | Path, *, progress: bool = True) -> Path:
    """Fetch ``f`` to ``dest`` (resuming ``dest.part``), verify it, rename it into place.

    An existing ``dest`` that verifies is kept as is (nothing is downloaded).
    """
    dest = Path(dest)
    if dest.is_file() and verify(dest, f) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(RETRIES + 1):
        try:
            if _fetch_into(f, part, progress):
                break
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, FetchError):
                raise
            if attempt == RETRIES:
                raise FetchError(
                    f"{f.url}: connection failed {RETRIES + 1} times ({exc}); "
                    f"run the same command again to resume from {part}"
                ) from None
        if attempt == RETRIES:
            raise FetchError(f"{f.url}: download incomplete after {RETRIES + 1} tries")
    problem = verify(part, f)
    if problem:
        part.unlink()
        raise FetchError(f"{f.url}: downloaded file is corrupt ({problem}); deleted it")
    os.replace(part, dest)
    return dest


def _fetch_into(f: RemoteFile, part: Path, progress: bool) -> bool:
    """Append the rest of ``f.url`` to ``part``; True when the server sent everything."""
    from tqdm import tqdm

    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(f.url, headers={"User-Agent": "otgen"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is complete
            return True
        raise FetchError(f"{f.url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None
    with resp:
        if resp.status != 206:  # the server ignored the range: start over
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else f.size
        got = 0
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=f.filename,
                disable=not progress,
                file=sys.stderr,
            ) as bar,
        ):
            while block := resp.read(CHUNK):
                out.write(block)
                got += len(block)
                bar.update(len(block))
    # urllib returns b"" (no exception) when the peer closes early: compare with the length.
    return length is None or got >= int(length)


# -- datasets -----------------------------------------------------------------------------------
def known(name: str) -> KnownDataset:
    key = name.lower()
    if key not in DATASETS:
        raise OTGenError(f"unknown dataset {name!r}; otgen can fetch: {', '.join(DATASETS)}")
    return DATASETS[key]


def fetch_command(name: str) -> str | None:
    """The exact command that fetches ``name``, or None if otgen cannot fetch it."""
    return f"otgen data fetch {name}" if name.lower() in DATASETS else None


def fetch_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download, verify and (for archives) unpack ``name`` under ``root``; returns the folder.

    ``root`` defaults to ``$OTGEN_DATA`` or ``<cache>/datasets``, where the loaders look.
    """
    ds = known(name)
    root = Path(root).expanduser() if root else datasets_dir()
    folder = root / ds.subdir if ds.subdir else root
    for f in ds.files:
        f = with_base_url(f, base_url)
        path = download(f, folder / f.filename, progress=progress)
        marker = folder / f".{f.filename}.unpacked"  # skip re-unpacking gigabytes on a re-run
        if f.extract and not marker.is_file():
            _extract(path, root)
            marker.touch()
    return folder


def _extract(archive: Path, root: Path) -> None:
    """Unpack a tar archive's top folders into ``root`` via a temporary folder, then rename,
    so a killed extraction leaves no half folder under the name the loaders read."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise FetchError(f"{archive}: unsafe archive member {m.name!r}")
            # Members are checked above; the "data" filter (Python >= 3.12) checks again.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **safe)
        for top in tmp.iterdir():
            target = root / top.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_size(n: int | None) -> str:
    if not n:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# -- extractor weights --------------------------------------------------------------------------
def inception_weights_path() -> Path:
    """Where the pytorch-fid Inception-v3 weights are cached (whether or not present)."""
    from otgen.utils.cache import weights_dir

    return weights_dir() / INCEPTION_V3.filename


def cached_inception_weights() -> Path | None:
    """The cached Inception-v3 weights file if ``otgen features fetch inception-v3`` ran."""
    path = inception_weights_path()
    return path if path.is_file() else None


def fetch_inception_weights(*, base_url: str | None = None, progress: bool = True) -> Path:
    """Download the pytorch-fid Inception-v3 weights into the cache, checking sha256[:8]."""
    return download(
        with_base_url(INCEPTION_V3, base_url), inception_weights_path(), progress=progress
    )
