"""Feature extractors: registry, input checks, shipped weights (hash, accuracy), Inception."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from otgen import data
from otgen.errors import CheckpointError, DataNotFoundError, OTGenError
from otgen.metrics import features as feats
from otgen.metrics.inception import FIDInceptionV3, _avg3


class TinyClassifier(nn.Module):
    feature_layer = "flat"

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(channels * 8 * 8, 3)

    def forward(self, x):
        return x.flatten(1)

    def logits(self, x):
        return self.lin(x.flatten(1))


@pytest.fixture
def user_extractor():
    name = "test-user-module"
    feats.register_extractor(name, TinyClassifier(), overwrite=True)
    yield name
    feats._REGISTRY.pop(name, None)


def test_register_user_module(user_extractor):
    ext = feats.get_extractor(user_extractor)
    assert ext.name == user_extractor and ext.layer == "flat" and ext.is_classifier
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    f = ext(x, batch_size=2)
    assert f.shape == (5, 64) and f.dtype == torch.float64
    torch.testing.assert_close(f, x.flatten(1).double())
    assert ext.logits(x).shape == (5, 3)
    with pytest.raises(OTGenError, match="already registered"):
        feats.register_extractor(user_extractor, TinyClassifier())


def test_register_factory_and_errors():
    feats.register_extractor("test-factory", lambda device, weights: nn.Flatten(), overwrite=True)
    try:
        ext = feats.get_extractor("test-factory")
        assert ext.layer == "output" and not ext.is_classifier
        with pytest.raises(OTGenError, match="not a classifier"):
            ext.logits(torch.zeros(1, 1, 4, 4))
    finally:
        feats._REGISTRY.pop("test-factory")
    with pytest.raises(OTGenError, match="unknown feature extractor"):
        feats.get_extractor("nope")
    with pytest.raises(OTGenError, match="callable"):
        feats.register_extractor("test-bad", 3)


def test_input_range_and_shape_checked(user_extractor):
    ext = feats.get_extractor(user_extractor)
    with pytest.raises(OTGenError, match=r"scaled to \[-1, 1\]"):
        ext(torch.full((2, 1, 8, 8), 255.0))
    with pytest.raises(OTGenError, match="NaN"):
        ext(torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(OTGenError, match="must be floats"):
        ext(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(OTGenError, match="shape"):
        ext(torch.zeros(8))


def test_channel_and_size_adaptation():
    ext = feats.FeatureExtractor(nn.Flatten(), name="t", layer="x", input_shape=(3, 4, 4))
    gray = torch.rand(2, 1, 8, 8) * 2 - 1
    f = ext(gray).view(2, 3, 4, 4)
    assert torch.equal(f[:, 0], f[:, 1]) and torch.equal(f[:, 0], f[:, 2])  # gray repeated
    small = feats.FeatureExtractor(nn.Flatten(), name="t", layer="x", input_shape=(1, 4, 4))
    with pytest.raises(OTGenError, match="1-channel"):
        small(torch.zeros(2, 3, 4, 4))


# -- shipped domain networks ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fmnist-net", "digits-net"])
def test_shipped_weights_hash_verified(name):
    ext = feats.get_extractor(name)
    record = json.loads((feats.WEIGHTS_DIR / f"{name}.json").read_text())
    assert (
        ext.weights_sha256
        == record["sha256"]
        == feats.sha256_file(feats.WEIGHTS_DIR / f"{name}.safetensors")
    )
    assert ext.layer == record["layer"] == "fc1"
    assert (feats.WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 2 * 2**20


def test_tampered_or_missing_weights_rejected(tmp_path):
    src = feats.WEIGHTS_DIR / "fmnist-net.safetensors"
    dst = tmp_path / "w.safetensors"
    shutil.copy(src, dst)
    with pytest.raises(DataNotFoundError, match=r"w\.json"):
        feats.get_extractor("fmnist-net", weights=dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    raw = bytearray(dst.read_bytes())
    raw[-10] ^= 0xFF
    dst.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256"):
        feats.get_extractor("fmnist-net", weights=dst)


def test_features_deterministic():
    ext = feats.get_extractor("digits-net")
    x = data.load("digits", split="test", n=64).x
    a, b = ext(x, batch_size=64), ext(x, batch_size=64)
    assert torch.equal(a, b)
    torch.testing.assert_close(ext(x, batch_size=7), a, rtol=1e-5, atol=1e-5)
    assert a.shape == (64, 128) and bool((a >= 0).all())  # post-ReLU fc1 features


def test_digits_net_accuracy():
    ds = data.load("digits", split="test")
    acc = (feats.get_extractor("digits-net").logits(ds.x).argmax(1) == ds.y).double().mean()
    assert acc >= 0.9


@pytest.mark.skipif(
    not (data.SYSTEM_ROOT / "fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_fmnist_net_accuracy():
    ds = data.load("fashion-mnist", split="test", n=1000, seed=0)
    logits = feats.get_extractor("fmnist-net").logits(ds.x, batch_size=500)
    acc = float((logits.argmax(1) == ds.y).double().mean())
    assert acc >= 0.88, acc
    # 32x32 inputs (DCGAN-sized samples) are resized back to 28x28 and still classified
    big = data.load("fashion-mnist", split="test", n=200, seed=0, image_size=32)
    acc32 = float(
        (feats.get_extractor("fmnist-net").logits(big.x).argmax(1) == big.y).double().mean()
    )
    assert acc32 >= 0.8


def test_train_domain_net_writes_pinned_record(tmp_path):
    out = tmp_path / "d.safetensors"
    rec = feats.train_domain_net("digits", out=out, epochs=1, log=lambda s: None)
    assert rec["sha256"] == feats.sha256_file(out) and rec["seed"] == 0
    ext = feats.get_extractor("digits-net", weights=out)
    assert ext.weights_sha256 == rec["sha256"]
    assert 0.0 <= rec["test_accuracy"] <= 1.0


# -- Inception-v3 (FID) ---------------------------------------------------------------------------
def test_inception_missing_weights_message(monkeypatch, tmp_path):
    monkeypatch.delenv("OTGEN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(DataNotFoundError, match="OTGEN_INCEPTION_WEIGHTS"):
        feats.get_extractor("inception-v3")
    monkeypatch.setenv("OTGEN_INCEPTION_WEIGHTS", str(tmp_path / "none.pth"))
    with pytest.raises(DataNotFoundError, match="not found"):
        feats.get_extractor("inception-v3")


def _inception_shapes() -> dict[str, torch.Size]:
    with torch.device("meta"):
        state = FIDInceptionV3().state_dict()
    # BatchNorm step counters are absent from the published file
    return {k: v.shape for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_inception_state_dict_roundtrip_and_forward(tmp_path, monkeypatch):
    shapes = _inception_shapes()
    assert len(shapes) == 94 * 5 + 2  # 94 conv+BN units (5 tensors each) and fc
    assert shapes["fc.weight"] == (1008, 2048)
    assert shapes["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.rand(s, generator=g) - 0.5) * 0.1 for k, s in shapes.items()}
    state.update({k: torch.ones(s) for k, s in shapes.items() if k.endswith("running_var")})
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    monkeypatch.setenv("OTGEN_INCEPTION_WEIGHTS", str(path))
    ext = feats.get_extractor("inception-v3")
    assert ext.layer == "pool3" and not ext.info["standard"]
    key = "Mixed_6e.branch7x7_2.conv.weight"
    assert torch.equal(ext.net.get_submodule(key.rsplit(".", 1)[0]).weight, state[key])
    x = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1  # grayscale, small: resized to 299 RGB
    f = ext(x)
    assert f.shape == (2, 2048) and bool(torch.isfinite(f).all())


def test_inception_bad_state_dict_refused(tmp_path):
    shapes = _inception_shapes()
    wrong = {k: torch.zeros(1) for k in shapes}  # every key present, every shape wrong
    torch.save(wrong, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="has shape"):
        feats.get_extractor("inception-v3", weights=tmp_path / "shape.pth")
    del wrong["fc.weight"]
    torch.save(wrong, tmp_path / "keys.pth")
    with pytest.raises(CheckpointError, match=r"missing \['fc.weight'\]"):
        feats.get_extractor("inception-v3", weights=tmp_path / "keys.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable state dict"):
        feats.get_extractor("inception-v3", weights=tmp_path / "junk.pth")


def test_fid_pooling_quirks():
    # TF 'SAME' average pooling ignores padding: a constant map stays constant at the border
    x = torch.full((1, 1, 5, 5), 3.0)
    assert torch.equal(_avg3(x), x)
    # Mixed_7c (FIDInceptionE_2) pools with max, Mixed_7b (E_1) with average
    with torch.device("meta"):
        net = FIDInceptionV3()
    assert net.Mixed_7b.pool == "avg" and net.Mixed_7c.pool == "max"


def test_cli_features_list_and_info(capsys, monkeypatch):
    from otgen.cli import main

    assert main(["features", "list"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"fmnist-net", "digits-net", "inception-v3"} <= set(listed)
    assert main(["features", "info", "digits-net"]) == 0
    assert (
        feats.sha256_file(feats.WEIGHTS_DIR / "digits-net.safetensors") in capsys.readouterr().out
    )
    monkeypatch.delenv("OTGEN_INCEPTION_WEIGHTS", raising=False)
    assert main(["features", "info", "inception-v3"]) == 2
    assert "OTGEN_INCEPTION_WEIGHTS" in capsys.readouterr().err
