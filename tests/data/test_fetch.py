"""otgen.data.fetch end to end against a loopback HTTP server (no internet)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from typing import ClassVar

import numpy as np
import pytest

from otgen.cli import main
from otgen.data import fetch
from otgen.errors import OTGenError

PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    drop_first: ClassVar[set[str]] = set()  # first GET of these sends half the body, hangs up
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self):
        name = self.path.lstrip("/")
        type(self).ranges.append(self.headers.get("Range"))
        body = self.files.get(name)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if name in self.drop_first:
            self.drop_first.discard(name)
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.drop_first, _Handler.ranges = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


def _remote(base: str, name: str, body: bytes, **kw) -> fetch.RemoteFile:
    return fetch.RemoteFile(f"{base}/{name}", len(body), md5=hashlib.md5(body).hexdigest(), **kw)


def test_download_verifies_and_renames(server, tmp_path):
    base, h = server
    h.files["a.bin"] = PAYLOAD
    out = fetch.download(_remote(base, "a.bin", PAYLOAD), tmp_path / "a.bin", progress=False)
    assert out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    # A second call finds the verified file and downloads nothing.
    fetch.download(_remote(base, "a.bin", PAYLOAD), tmp_path / "a.bin", progress=False)
    assert len(h.ranges) == 1


def test_wrong_checksum_leaves_no_file(server, tmp_path):
    base, h = server
    h.files["a.bin"] = PAYLOAD
    bad = fetch.RemoteFile(f"{base}/a.bin", md5="0" * 32)
    with pytest.raises(fetch.FetchError, match=r"corrupt.*md5"):
        fetch.download(bad, tmp_path / "a.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_range(server, tmp_path):
    base, h = server
    h.files["a.bin"] = PAYLOAD
    h.drop_first.add("a.bin")
    out = fetch.download(_remote(base, "a.bin", PAYLOAD), tmp_path / "a.bin", progress=False)
    assert out.read_bytes() == PAYLOAD
    assert h.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_killed_fetch_part_is_resumed_not_read(server, tmp_path):
    base, h = server
    h.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])  # what a killed run leaves
    assert not (tmp_path / "a.bin").exists()
    fetch.download(_remote(base, "a.bin", PAYLOAD), tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert h.ranges == ["bytes=1000-"]


def test_404_is_a_clear_error(server, tmp_path):
    base, _ = server
    with pytest.raises(fetch.FetchError, match="HTTP 404"):
        fetch.download(fetch.RemoteFile(f"{base}/nope.bin", md5="0" * 32), tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_sha256_prefix_as_in_torch_hub_names(server, tmp_path):
    base, h = server
    h.files["w.pth"] = PAYLOAD
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    ok = fetch.RemoteFile(f"{base}/w.pth", sha256=prefix)
    assert fetch.download(ok, tmp_path / "w.pth", progress=False).is_file()
    flipped = prefix[:-1] + ("0" if prefix[-1] != "0" else "1")
    with pytest.raises(fetch.FetchError, match="sha256"):
        fetch.download(fetch.RemoteFile(f"{base}/w.pth", sha256=flipped), tmp_path / "v.pth")
    assert not (tmp_path / "v.pth").exists()


def test_inception_weights_fetched_once_then_found(server, tmp_path, monkeypatch):
    base, h = server
    name = fetch.INCEPTION_V3.filename
    h.files[name] = PAYLOAD
    monkeypatch.setenv("OTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(fetch.BASE_URL_ENV, base)
    monkeypatch.setattr(
        fetch,
        "INCEPTION_V3",
        fetch.RemoteFile(fetch.INCEPTION_V3.url, sha256=hashlib.sha256(PAYLOAD).hexdigest()[:8]),
    )
    assert fetch.cached_inception_weights() is None
    assert main(["features", "fetch", "inception-v3", "--no-progress"]) == 0
    assert fetch.cached_inception_weights() == tmp_path / "cache" / "weights" / name


def _idx_gz(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return gzip.compress(head + arr.astype(np.uint8).tobytes(), mtime=0)


def test_cli_fetch_then_load_fashion_mnist(server, tmp_path, monkeypatch, capsys):
    """`otgen data fetch fashion-mnist` then loading it by name, with no other step."""
    from otgen.data import load

    base, h = server
    rng = np.random.default_rng(1)
    files = {
        "train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (30, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, 30)),
        "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (12, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, 12)),
    }
    h.files.update(files)
    ds = fetch.DATASETS["fashion-mnist"]
    table = tuple(_remote("https://example.invalid", n, b) for n, b in files.items())
    monkeypatch.setitem(fetch.DATASETS, "fashion-mnist", fetch.KnownDataset(
        ds.name, ds.description, ds.homepage, ds.licence, ds.checksum_source, ds.subdir, table
    ))  # fmt: skip
    monkeypatch.setenv(fetch.BASE_URL_ENV, base)
    monkeypatch.setenv("OTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OTGEN_DATA", raising=False)
    assert main(["data", "fetch", "fashion-mnist", "--no-progress"]) == 0
    folder = tmp_path / "cache" / "datasets" / "fashion-mnist"
    assert str(folder) in capsys.readouterr().out
    assert load("fashion-mnist", split="test").x.shape == (12, 1, 28, 28)


def test_missing_known_dataset_names_the_fetch_command(tmp_path, monkeypatch):
    from otgen.data import dataset_dir

    monkeypatch.setenv("OTGEN_CACHE", str(tmp_path))
    monkeypatch.delenv("OTGEN_DATA", raising=False)
    with pytest.raises(OTGenError, match="run `otgen data fetch cifar10`"):
        dataset_dir("cifar10", root=tmp_path)


def test_unknown_dataset_cli_error(capsys):
    assert main(["data", "fetch", "imagenet"]) == 2
    assert "otgen: error: unknown dataset 'imagenet'" in capsys.readouterr().err


def test_table_has_a_checksum_for_every_file():
    for ds in fetch.DATASETS.values():
        for f in ds.files:
            assert (f.md5 and len(f.md5) == 32) or f.sha256, f.url
    assert fetch.INCEPTION_V3.sha256 == fetch.INCEPTION_V3.filename.rsplit("-", 1)[1][:8]


def test_tar_archive_is_unpacked_into_root(server, tmp_path, monkeypatch):
    import io
    import tarfile

    base, h = server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/readme.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    body = buf.getvalue()
    h.files["cifar-10-python.tar.gz"] = body
    ds = fetch.DATASETS["cifar10"]
    f = _remote("https://x.invalid", "cifar-10-python.tar.gz", body, extract=True)
    monkeypatch.setitem(fetch.DATASETS, "cifar10", fetch.KnownDataset(
        ds.name, ds.description, ds.homepage, ds.licence, ds.checksum_source, ds.subdir, (f,)
    ))  # fmt: skip
    fetch.fetch_dataset("cifar10", tmp_path, base_url=base, progress=False)
    assert (tmp_path / "cifar-10-batches-py" / "readme.txt").read_bytes() == b"hello"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".extract")]
    # A second fetch neither downloads nor unpacks again (the user's edit survives).
    (tmp_path / "cifar-10-batches-py" / "readme.txt").write_bytes(b"kept")
    fetch.fetch_dataset("cifar10", tmp_path, base_url=base, progress=False)
    assert (tmp_path / "cifar-10-batches-py" / "readme.txt").read_bytes() == b"kept"
    assert len(h.ranges) == 1
