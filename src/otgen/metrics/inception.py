"""Inception-v3 as used for FID: the "pt_inception-2015-12-05" network of pytorch-fid.

The FID literature uses the TensorFlow Inception graph of 2015-12-05, ported to PyTorch by
pytorch-fid (file ``pt_inception-2015-12-05-6726825d.pth``; torch-fidelity ships the same
weights). That graph differs from torchvision's Inception-v3 in four blocks, reproduced here:

- ``Mixed_5b/5c/5d`` (A) and ``Mixed_6b..6e`` (C) and ``Mixed_7b`` (E_1): the 3x3 average pool
  of the pooling branch excludes padding (``count_include_pad=False``), as TF does;
- ``Mixed_7c`` (E_2): the pooling branch is a 3x3 *max* pool (a quirk of the TF graph).

Inputs in ``[-1, 1]`` are resized to 299x299 (bilinear, ``align_corners=False``) exactly as
pytorch-fid does after its ``2x - 1`` normalisation (both are linear, so the order does not
matter). ``pool3`` is the 2048-d global average pool; ``logits`` the 1008-way ``fc`` layer.
Module and parameter names follow torchvision's ``Inception3`` so the published state dict
loads directly (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch_pool.bn.running_var``, ...).
Weights: ``weights=``, ``$OTGEN_INCEPTION_WEIGHTS``, or the cache filled by
``otgen features fetch inception-v3`` (see ``otgen.data.fetch``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from otgen.errors import CheckpointError, DataNotFoundError
from otgen.utils.io import sha256_file

WEIGHTS_ENV = "OTGEN_INCEPTION_WEIGHTS"
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
# torch.hub naming convention: the suffix of the published file name is its sha256 prefix
FID_SHA256_PREFIX = "6726825d"


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, as the TF graph) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 'SAME' average pool divides by the number of *valid* pixels at the border."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (64+64+96+pool_features)."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 (384+96+cin)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1); 4 x 192 channels out."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        return torch.cat([b1, b7, bd, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 (320+192+cin)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 branches (320+768+768+192 = 2048 channels).

    ``pool="avg"`` is FIDInceptionE_1 (Mixed_7b, padding-excluding average pool);
    ``pool="max"`` is FIDInceptionE_2 (Mixed_7c, max pool, as in the TF graph).
    """

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 graph; ``pool3`` (2048) and ``logits`` (1008) of [-1, 1] inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, c7=128)
        self.Mixed_6c = FIDInceptionC(768, c7=160)
        self.Mixed_6d = FIDInceptionC(768, c7=160)
        self.Mixed_6e = FIDInceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)
        self.standard = False  # set by load_fid_inception when the file hash matches

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """2048-d features of images in [-1, 1] (any size; resized to 299 here)."""
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b):
            x = block(x)
        for block in (self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b):
            x = block(x)
        x = self.Mixed_7c(x)
        return x.mean((2, 3))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """1008 class scores (``fc`` on pool3, with bias; softmax them for the Inception Score)."""
        return self.fc(self.pool3(x))

    forward = pool3


def _strip(keys) -> set[str]:
    """Keys that must match: BatchNorm's step counter and the unused aux head are optional."""
    return {
        k for k in keys if not k.endswith("num_batches_tracked") and not k.startswith("AuxLogits.")
    }


def load_fid_inception(weights: str | Path | None = None) -> tuple[FIDInceptionV3, Path, str]:
    """Build :class:`FIDInceptionV3` and load ``weights`` (``.pth`` state dict, read with
    ``weights_only=True``, or ``.safetensors``); returns (net, path, sha256)."""
    from otgen.data.fetch import cached_inception_weights

    source = weights or os.environ.get(WEIGHTS_ENV) or cached_inception_weights()
    if not source:
        raise DataNotFoundError(
            f"inception-v3 needs the FID weights file {FID_WEIGHTS_NAME}: run `otgen features "
            f"fetch inception-v3`, pass weights=PATH or set {WEIGHTS_ENV}=PATH"
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataNotFoundError(
            f"inception-v3 weights: {path} not found (expected {FID_WEIGHTS_NAME})"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/safetensors errors all mean: not a usable state dict
        raise CheckpointError(f"{path}: not a readable state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    with torch.device("meta"):  # no random init of 24M parameters that are overwritten anyway
        net = FIDInceptionV3()
    own = net.state_dict()
    missing, unexpected = sorted(_strip(own) - set(state)), sorted(_strip(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not the FID Inception state dict (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}; {len(missing)} missing, {len(unexpected)} unexpected)"
        )
    for k in _strip(own):
        if tuple(state[k].shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
            )
    net.load_state_dict({k: state[k].float() for k in _strip(own)}, strict=False, assign=True)
    for m in net.modules():  # BatchNorm step counters are not in the published file
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked = torch.zeros((), dtype=torch.long)
    digest = sha256_file(path)
    net.standard = digest.startswith(FID_SHA256_PREFIX)
    return net.eval(), path, digest
