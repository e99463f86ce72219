"""Feature extractors for FID/KID/PRD/IS: a registry, pinned domain networks, Inception-v3.

FID-style scores are only comparable between runs that share the extractor, its layer and its
weights, so every :class:`FeatureExtractor` carries ``name``, ``layer`` and
``weights_sha256`` and reports should be labelled with them ("FID (fmnist-net, fc1)").

Shipped extractors
------------------
``fmnist-net``   small CNN classifier for 28x28 Fashion-MNIST, trained by
                 ``otgen features train --data fashion-mnist`` with a fixed seed; 128-d
                 ``fc1`` features (the hidden layer before the classifier), 10 logits.
``digits-net``   the same architecture trained on scikit-learn's digits (28x28 padding).
``inception-v3`` pytorch-fid's FID Inception ("pt_inception-2015-12-05" weights, a local file:
                 ``weights=`` or ``$OTGEN_INCEPTION_WEIGHTS``); 2048-d ``pool3``, 1008 logits.

Weights of the domain networks live in ``otgen/weights/<name>.safetensors`` beside a JSON
record (sha256, seed, layer, test accuracy, command); the hash is verified on every load.

Any ``nn.Module`` can be registered: ``register_extractor("mine", lambda device, weights:
MyNet())`` — its ``forward`` gives the features and a ``logits`` method, if present, the
class scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from otgen.errors import CheckpointError, DataNotFoundError, OTGenError
from otgen.utils.checks import check_int
from otgen.utils.device import resolve_device
from otgen.utils.io import sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
RANGE_SLACK = 0.1  # inputs may overshoot [-1, 1] by this much (clamped); beyond is an error


# -- the extractor ------------------------------------------------------------------------------
class FeatureExtractor:
    """A frozen network mapping images in ``[-1, 1]`` ``(N, C, H, W)`` to features ``(N, D)``.

    ``input_shape`` (C, H, W), when set, adapts inputs: grayscale is repeated to 3 channels,
    other sizes are resized bilinearly (``antialias`` when shrinking small nets; pytorch-fid's
    Inception resize is plain bilinear). Outputs are float64 CPU tensors; evaluation mode and
    no randomness make them deterministic for a given device.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        layer: str,
        features_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        input_shape: tuple[int, int, int] | None = None,
        antialias: bool = True,
        weights_sha256: str | None = None,
        device: str | torch.device = "cpu",
        info: dict[str, Any] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.name, self.layer, self.weights_sha256 = name, layer, weights_sha256
        self._features = features_fn or self.net
        self._logits = logits_fn or getattr(self.net, "logits", None)
        self.input_shape = input_shape
        self.antialias = antialias
        self.info = dict(info or {})

    @property
    def is_classifier(self) -> bool:
        return self._logits is not None

    def __repr__(self) -> str:
        sha = (self.weights_sha256 or "none")[:12]
        return f"FeatureExtractor({self.name!r}, layer={self.layer!r}, sha256={sha})"

    def label(self) -> str:
        """Short tag for reports, e.g. ``fmnist-net/fc1@1a2b3c4d``."""
        return f"{self.name}/{self.layer}@{(self.weights_sha256 or 'unpinned')[:8]}"

    def __call__(self, images, batch_size: int = 256) -> torch.Tensor:
        """Features ``(N, D)`` float64 of ``images`` in ``[-1, 1]``."""
        return self._run(self._features, images, batch_size)

    def logits(self, images, batch_size: int = 256) -> torch.Tensor:
        """Class scores ``(N, K)`` float64 (only for classifiers)."""
        if self._logits is None:
            raise OTGenError(f"extractor {self.name!r} is not a classifier (no logits)")
        return self._run(self._logits, images, batch_size)

    # -- internals --------------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_shape is None:
            return x
        c, h, w = self.input_shape
        if x.shape[1] != c:
            if x.shape[1] == 1 and c == 3:
                x = x.expand(-1, 3, -1, -1)  # grayscale -> RGB, as FID on MNIST-like data does
            else:
                raise OTGenError(
                    f"{self.name} expects {c}-channel images, got {x.shape[1]} channels"
                )
        if x.shape[-2:] != (h, w):
            shrink = self.antialias and (x.shape[-2] > h or x.shape[-1] > w)
            x = F.interpolate(
                x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink
            )
        return x

    def _run(self, fn, images, batch_size: int) -> torch.Tensor:
        batch_size = check_int(batch_size, "batch_size")
        x = _check_images(images, self.name)
        outs = []
        with torch.inference_mode():
            for chunk in x.split(batch_size):
                chunk = self._prepare(chunk.to(self.device, torch.float32))
                out = fn(chunk)
                if out.ndim != 2:
                    out = out.flatten(1)
                outs.append(out.to("cpu", torch.float64))
        return torch.cat(outs) if outs else torch.zeros(0, 0, dtype=torch.float64)


def _check_images(images, name: str) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise OTGenError(f"{name}: images must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise OTGenError(f"{name}: images must be floats in [-1, 1], got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise OTGenError(f"{name}: images contain NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise OTGenError(
            f"{name}: images must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}] "
            "(otgen.data.to_unit_range converts uint8 or [0, 1] images)"
        )
    return x.clamp(-1.0, 1.0)


# -- registry -----------------------------------------------------------------------------------
Factory = Callable[..., "FeatureExtractor | nn.Module"]
_REGISTRY: dict[str, Factory] = {}


def register_extractor(name: str, factory: Factory | nn.Module, *, overwrite: bool = False):
    """Register ``factory(device=..., weights=...) -> FeatureExtractor | nn.Module`` (or a
    module instance) under ``name``; a bare module's ``forward`` gives the features."""
    if not isinstance(name, str) or not name:
        raise OTGenError("extractor name must be a non-empty string")
    if name in _REGISTRY and not overwrite:
        raise OTGenError(f"extractor {name!r} is already registered (pass overwrite=True)")
    if isinstance(factory, nn.Module):
        module = factory
        factory = lambda device="cpu", weights=None: module  # noqa: E731
    elif not callable(factory):
        raise OTGenError(f"extractor {name!r}: factory must be callable or an nn.Module")
    _REGISTRY[name] = factory
    return factory


def available_extractors() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_extractor(
    name: str, device: str | torch.device = "cpu", weights: str | Path | None = None
) -> FeatureExtractor:
    """Build the extractor ``name`` on ``device``; ``weights`` overrides the weights file."""
    if name not in _REGISTRY:
        raise OTGenError(
            f"unknown feature extractor {name!r}; choose one of: {', '.join(_REGISTRY)}"
        )
    made = _REGISTRY[name](device=device, weights=weights)
    if isinstance(made, FeatureExtractor):
        return made
    if isinstance(made, nn.Module):
        return FeatureExtractor(
            made, name=name, layer=getattr(made, "feature_layer", "output"), device=device
        )
    raise OTGenError(f"extractor {name!r}: factory returned {type(made).__name__}")


# -- the domain network ----------------------------------------------------------------------------
class DomainNet(nn.Module):
    """Small CNN classifier for 28x28 grayscale images (~98k parameters, ~400 KB float32).

    conv3x3(1→w)-BN-ReLU, maxpool → conv3x3(w→2w)-BN-ReLU, maxpool → conv3x3(2w→4w)-BN-ReLU,
    maxpool (3x3 maps) → linear(36w→128)-ReLU (``fc1``, the 128-d features) → linear(128→K).
    Sized so that training fits in ~10 minutes on one contended CPU core (w = 16).
    """

    feature_layer = "fc1"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)  # bias is redundant before BN
            return [conv, nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        w = width
        self.body = nn.Sequential(
            *block(in_channels, w), *block(w, 2 * w), *block(2 * w, 4 * w), nn.Flatten()
        )
        self.fc1 = nn.Linear(4 * w * 3 * 3, 128)
        self.head = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(self.body(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # logits, for training
        return self.head(self.features(x))


DOMAIN_NETS = {"fmnist-net": "fashion-mnist", "digits-net": "digits"}


def _domain_factory(name: str) -> Factory:
    def factory(device="cpu", weights=None) -> FeatureExtractor:
        path = Path(weights) if weights else WEIGHTS_DIR / f"{name}.safetensors"
        net, record = load_domain_net(path)
        return FeatureExtractor(
            net,
            name=name,
            layer=record.get("layer", DomainNet.feature_layer),
            features_fn=net.features,
            logits_fn=net.forward,
            input_shape=tuple(record.get("input_shape", (1, 28, 28))),
            weights_sha256=record["sha256"],
            device=device,
            info=record,
        )

    return factory


def load_domain_net(path: str | Path) -> tuple[DomainNet, dict[str, Any]]:
    """Load ``path`` (.safetensors) after checking its sha256 against the ``.json`` beside it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = path.with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        raise DataNotFoundError(
            f"{path}: weights or their record {meta.name} missing "
            "(train them with `otgen features train --data fashion-mnist|digits --out FILE`)"
        )
    try:
        record = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta}: corrupt JSON ({exc})") from None
    digest = sha256_file(path)
    if digest != record.get("sha256"):
        raise CheckpointError(
            f"{path}: sha256 {digest[:16]}... does not match {meta.name} "
            f"({str(record.get('sha256'))[:16]}...); the weights file was modified or corrupted"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    try:
        net = DomainNet(**record.get("arch", {}))
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the DomainNet architecture ({exc})"
        ) from None
    return net.eval(), record


for _name in DOMAIN_NETS:
    register_extractor(_name, _domain_factory(_name))


def _inception_factory(device="cpu", weights=None) -> FeatureExtractor:
    from otgen.metrics.inception import load_fid_inception

    net, path, digest = load_fid_inception(weights)
    return FeatureExtractor(
        net,
        name="inception-v3",
        layer="pool3",
        features_fn=net.pool3,
        logits_fn=net.logits,
        input_shape=(3, 299, 299),
        antialias=False,  # pytorch-fid: F.interpolate(bilinear, align_corners=False), no antialias
        weights_sha256=digest,
        device=device,
        info={"weights": str(path), "standard": net.standard},
    )


register_extractor("inception-v3", _inception_factory)


# -- training the domain networks ----------------------------------------------------------------
DEFAULT_EPOCHS = {"fashion-mnist": 6, "digits": 40}


def train_domain_net(
    data: str = "fashion-mnist",
    *,
    out: str | Path,
    epochs: int | None = None,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 3e-3,
    root: str | Path | None = None,
    device: str = "cpu",
    threads: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train :class:`DomainNet` on ``data``'s train split and write ``out`` (.safetensors) plus
    its JSON record (sha256, seed, layer, test accuracy). Adam with a one-cycle schedule;
    random horizontal flips for Fashion-MNIST (clothes are mirror-symmetric, digits are not).

    ``threads`` defaults to 1: reductions are then bitwise reproducible, and on a shared
    2-core machine several 2-thread processes thrash (measured 0.5 s vs 3.5 s per step).
    """
    from safetensors.torch import save_file

    from otgen.data import load
    from otgen.utils.io import atomic_write, write_json
    from otgen.utils.seeding import seed_everything

    if data not in DEFAULT_EPOCHS:
        raise OTGenError(f"unknown data {data!r}; choose one of: {', '.join(DEFAULT_EPOCHS)}")
    epochs = check_int(DEFAULT_EPOCHS[data] if epochs is None else epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    dev = resolve_device(device)
    train, test = load(data, split="train", root=root), load(data, split="test", root=root)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(check_int(threads, "threads"))
    try:
        gen = seed_everything(seed)
        net = DomainNet(in_channels=train.x.shape[1], num_classes=train.spec.num_classes).to(dev)
        t0 = time.perf_counter()
        acc = _fit(net, train, test, epochs, batch_size, lr, gen, dev, data == "fashion-mnist", log)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(saved_threads)
    out = Path(out)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    atomic_write(out, lambda p: save_file(state, str(p)))
    name = next(k for k, v in DOMAIN_NETS.items() if v == data)
    record = {
        "name": name,
        "data": data,
        "sha256": sha256_file(out),
        "seed": seed,
        "layer": DomainNet.feature_layer,
        "feature_dim": net.fc1.out_features,
        "input_shape": list(train.spec.shape),
        "arch": {"in_channels": train.x.shape[1], "num_classes": train.spec.num_classes},
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "threads": threads,
        "test_accuracy": acc,
        "test_size": len(test),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "command": f"otgen features train --data {data} --epochs {epochs} --seed {seed} "
        f"--out {out.name}",
    }
    write_json(out.with_suffix(".json"), record)
    for p in (out, out.with_suffix(".json")):
        p.chmod(0o644)  # package data: readable by everyone (temp files are created 0600)
    return record


def _fit(net, train, test, epochs, batch_size, lr, gen, dev, flip, log) -> float:
    """The training loop; returns the final test accuracy."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    acc = 0.0
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for idx in torch.randperm(len(train), generator=gen).split(batch_size):
            x, y = train.x[idx], train.y[idx]
            if flip:
                mask = torch.rand(len(x), generator=gen) < 0.5
                x = torch.where(mask[:, None, None, None], x.flip(-1), x)
            loss = F.cross_entropy(net(x.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = accuracy(net, test.x, test.y, device=dev)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(train):.4f}, test accuracy {acc:.4f}")
    return acc


def accuracy(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, device="cpu", batch_size=1000
) -> float:
    """Top-1 accuracy of ``net`` (logits) on images ``x`` with labels ``y``."""
    was_training = net.training
    net.eval()
    correct = 0
    with torch.inference_mode():
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            correct += int((net(xb.to(device)).argmax(1).cpu() == yb).sum())
    net.train(was_training)
    return correct / len(y)
