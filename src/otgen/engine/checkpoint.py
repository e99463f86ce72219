"""Checkpoints: tensors in safetensors, everything else in JSON; never pickle.

A checkpoint of step ``s`` is the pair ``step-<s>.safetensors`` + ``step-<s>.json`` in
``<run>/checkpoints/``. Both are written atomically (temp file + rename), tensors first; the JSON
file is the commit record: it holds the SHA-256 of the tensor file, so a checkpoint exists only
once its JSON exists, and a damaged tensor file is detected before anything is loaded. A
SIGKILL at any moment therefore leaves either the previous checkpoint or the new one, never a
half-written one.

State trees (network and optimiser ``state_dict``s, the method's ``extra_state``, the EMA, RNG
states) are split by :func:`flatten`: tensors go to the safetensors file under a path-like key,
the rest (ints, floats, strings, lists, tuples, dicts with non-string keys) to a JSON
"skeleton" with small tagged objects (``{"__tensor__": key}``, ``{"__tuple__": [...]}``) that
:func:`unflatten` turns back into the same python objects. Loading only parses JSON and
safetensors, so a crafted checkpoint cannot execute code: anything else is a one-line
:class:`~otgen.errors.CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from otgen.errors import CheckpointError
from otgen.utils.io import atomic_write, write_text

FORMAT = "otgen-checkpoint/1"
_NAME = re.compile(r"^step-(\d{9,})\.json$")
_MARKERS = ("__tensor__", "__tuple__", "__items__", "__float__")


# -- state trees <-> (JSON skeleton, flat tensors) ----------------------------------------


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able skeleton of ``obj``; its tensors are added to ``tensors`` under path keys."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        while key in tensors:  # path keys are unique unless a dict key holds a "/"
            key += "_"
        t = obj.detach()
        # safetensors refuses tensors sharing storage and non-contiguous ones: copy to the CPU
        tensors[key] = (t.cpu() if t.device.type != "cpu" else t.clone()).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, _join(prefix, i), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, _join(prefix, i), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: flatten(v, _join(prefix, k), tensors) for k, v in obj.items()}
        return {
            "__items__": [
                [
                    flatten(k, _join(prefix, f"key{i}"), tensors),
                    flatten(v, _join(prefix, k), tensors),
                ]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar
        return flatten(obj.item(), prefix, tensors)
    raise CheckpointError(f"cannot checkpoint a {type(obj).__name__} at {prefix!r}")


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}/{key}" if prefix else str(key)


def unflatten(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`; a malformed skeleton raises :class:`CheckpointError`."""
    if isinstance(skel, list):
        return [unflatten(v, tensors) for v in skel]
    if not isinstance(skel, dict):
        if isinstance(skel, (bool, int, float, str)) or skel is None:
            return skel
        raise CheckpointError(f"unexpected {type(skel).__name__} in checkpoint")
    if "__tensor__" in skel:
        key = skel["__tensor__"]
        if not isinstance(key, str) or key not in tensors:
            raise CheckpointError(f"checkpoint refers to a missing tensor {key!r}")
        return tensors[key]
    if "__tuple__" in skel:
        return tuple(unflatten(v, tensors) for v in _list(skel["__tuple__"]))
    if "__float__" in skel:
        text = skel["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise CheckpointError(f"bad float {text!r} in checkpoint")
        return float(text)
    if "__items__" in skel:
        out = {}
        for pair in _list(skel["__items__"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise CheckpointError("malformed mapping in checkpoint")
            k = unflatten(pair[0], tensors)
            if not isinstance(k, (str, int, float, bool, tuple)) and k is not None:
                raise CheckpointError("unhashable key in checkpoint")
            out[k] = unflatten(pair[1], tensors)
        return out
    return {k: unflatten(v, tensors) for k, v in skel.items()}


def _list(x: Any) -> list:
    if not isinstance(x, list):
        raise CheckpointError("malformed checkpoint structure")
    return x


# -- files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its step, JSON metadata and the restored state tree."""

    path: Path  # the JSON file
    step: int
    meta: dict[str, Any]  # everything in the JSON file except the state skeleton
    state: dict[str, Any]  # nets / optimizers / extra / ema / rng, tensors on the CPU


def checkpoint_path(ckpt_dir: str | Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step-{step:09d}.json"


def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """Committed checkpoints (their JSON exists), oldest first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def save_checkpoint(
    ckpt_dir: str | Path, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int
) -> Path:
    """Write the checkpoint of ``step`` (tensors, then the JSON commit record); keep ``keep``."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, "", tensors)
    blob = save(tensors)
    json_path = checkpoint_path(ckpt_dir, step)
    tensor_path = json_path.with_suffix(".safetensors")
    atomic_write(tensor_path, lambda p: p.write_bytes(blob))
    record = {
        "format": FORMAT,
        "step": step,
        **meta,
        "tensors": tensor_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "state": skeleton,
    }
    write_text(json_path, json.dumps(record, allow_nan=False) + "\n")
    _prune(Path(ckpt_dir), keep)
    return json_path


def _prune(ckpt_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, and orphans from interrupted saves."""
    found = list_checkpoints(ckpt_dir)
    for _, json_path in found[: max(0, len(found) - keep)]:
        json_path.unlink(missing_ok=True)  # un-commit first, then the tensors
        json_path.with_suffix(".safetensors").unlink(missing_ok=True)
    committed = {p.with_suffix(".safetensors").name for _, p in list_checkpoints(ckpt_dir)}
    for p in ckpt_dir.glob("step-*.safetensors"):
        if p.name not in committed:
            p.unlink(missing_ok=True)
    for p in ckpt_dir.glob(".step-*.tmp"):
        p.unlink(missing_ok=True)


def load_checkpoint(json_path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint; any problem is one :class:`CheckpointError` line."""
    from safetensors.torch import load

    json_path = Path(json_path)
    where = str(json_path)
    try:
        raw = json_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {where}: {exc.strerror}") from None
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {where} is corrupt (not valid JSON)") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {where} is not an otgen checkpoint ({FORMAT})")
    name = record.get("tensors")
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise CheckpointError(f"checkpoint {where} names an invalid tensor file")
    tensor_path = json_path.parent / name
    try:
        blob = tensor_path.read_bytes()
    except OSError:
        raise CheckpointError(f"checkpoint {where}: tensor file {name} is missing") from None
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise CheckpointError(
            f"checkpoint tensor file {tensor_path} is corrupt or truncated (checksum mismatch)"
        )
    try:
        tensors = load(blob)
    except Exception as exc:  # safetensors parses without code execution; any failure = corrupt
        raise CheckpointError(f"checkpoint tensor file {tensor_path} is corrupt ({exc})") from None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {where} has an invalid step {step!r}")
    state = unflatten(record.get("state", {}), tensors)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {where} has an invalid state")
    meta = {k: v for k, v in record.items() if k != "state"}
    return Checkpoint(json_path, step, meta, state)
