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

A checkpoint is also bound to its step three ways -- its file name, the JSON ``step`` and the
tensor file's own safetensors metadata -- so a record re-pointed at another step's tensors is
refused. :func:`check_resumable` refuses to resume a run whose training config changed since
the checkpoint (a learning rate, a batch size) unless the changed keys are named explicitly.
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
    """Write the checkpoint of ``step`` (tensors, then the JSON commit record); keep ``keep``.

    A failed write (disk full, read-only directory) leaves the previous checkpoints untouched,
    removes what it had begun and raises one :class:`CheckpointError` line.
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, "", tensors)
    blob = save(tensors, metadata={"format": FORMAT, "step": str(step)})
    json_path = checkpoint_path(ckpt_dir, step)
    tensor_path = json_path.with_suffix(".safetensors")
    record = {
        "format": FORMAT,
        "step": step,
        **meta,
        "tensors": tensor_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "state": skeleton,
    }
    text = json.dumps(record, allow_nan=False) + "\n"
    committed = json_path.exists()
    try:
        atomic_write(tensor_path, lambda p: p.write_bytes(blob))
        write_text(json_path, text)
    except OSError as exc:
        if not committed:  # an uncommitted tensor file is garbage; a committed one is kept
            tensor_path.unlink(missing_ok=True)
        newest = latest_checkpoint(ckpt_dir)
        raise CheckpointError(
            f"cannot write checkpoint of step {step} in {ckpt_dir}: "
            f"{exc.strerror or exc} (newest complete checkpoint: "
            f"{newest.name if newest else 'none'})"
        ) from None
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
    json_path = Path(json_path)
    where = str(json_path)
    record = _read_record(json_path)
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {where} has an invalid step {step!r}")
    named = _NAME.match(json_path.name)
    if named and int(named.group(1)) != step:
        raise CheckpointError(
            f"checkpoint {where} says step {step} but its file name says {int(named.group(1))}"
        )
    name = record.get("tensors")
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise CheckpointError(f"checkpoint {where} names an invalid tensor file")
    tensors = _read_tensors(json_path.parent / name, record, step)
    try:
        state = unflatten(record.get("state", {}), tensors)
    except RecursionError:
        raise CheckpointError(f"checkpoint {where} is nested too deeply") from None
    _check_state_types(state, where)
    meta = {k: v for k, v in record.items() if k != "state"}
    return Checkpoint(json_path, step, meta, state)


# the trainer's state tree: what each top-level entry must be when present
_STATE_TYPES = {"nets": dict, "optimizers": dict, "extra": dict, "rng": dict, "meter": dict}


def _check_state_types(state: Any, where: str) -> None:
    """Mistyped entries (``"ema": "x"``, a list of nets) are refused here, in one line, rather
    than deep inside ``load_state_dict``."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {where} has an invalid state")
    for key, kind in _STATE_TYPES.items():
        if key in state and not isinstance(state[key], kind):
            raise CheckpointError(f"checkpoint {where} has an invalid {key!r} record")
    groups = [state.get("nets", {}), state.get("optimizers", {})]
    if not all(isinstance(v, dict) for g in groups for v in g.values()):
        raise CheckpointError(f"checkpoint {where} has a net or optimizer that is not a mapping")
    if state.get("ema") is not None and not isinstance(state["ema"], dict):
        raise CheckpointError(f"checkpoint {where} has an invalid 'ema' record")


def _read_record(json_path: Path) -> dict[str, Any]:
    where = str(json_path)
    try:
        raw = json_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {where}: {exc.strerror}") from None
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {where} is corrupt (not valid JSON)") from None
    except RecursionError:
        raise CheckpointError(f"checkpoint {where} is nested too deeply") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {where} is not an otgen checkpoint ({FORMAT})")
    return record


def _read_tensors(tensor_path: Path, record: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
    """The tensor file, verified against the record's SHA-256 and its own recorded step."""
    from safetensors.torch import load

    try:
        blob = tensor_path.read_bytes()
    except OSError:
        raise CheckpointError(f"checkpoint tensor file {tensor_path} is missing") from None
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise CheckpointError(
            f"checkpoint tensor file {tensor_path} is corrupt or truncated (checksum mismatch)"
        )
    own = _tensor_metadata(blob).get("step")
    if own != str(step):
        raise CheckpointError(
            f"checkpoint tensor file {tensor_path} holds step {own or 'unknown'}, not step {step}"
        )
    try:
        return load(blob)
    except Exception as exc:  # safetensors parses without code execution; any failure = corrupt
        raise CheckpointError(f"checkpoint tensor file {tensor_path} is corrupt ({exc})") from None


def _tensor_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob: an 8-byte little-endian header length, then
    that many bytes of JSON. Anything malformed reads as no metadata."""
    if len(blob) < 8:
        return {}
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        return {}
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


# -- resuming a training run --------------------------------------------------------------

# Keys that change what a run logs or where it runs, never the numbers it trains to.
HARMLESS_CHANGES = frozenset(
    {"device", "out", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints"}
    | {"n_samples", "tensorboard"}
)


def check_resumable(ckpt: Checkpoint, config: dict[str, Any], allow=()) -> None:
    """Refuse to resume from ``ckpt`` under a training config that differs from the one the
    checkpoint was trained with (``config`` is ``TrainConfig.to_dict()``), except for
    :data:`HARMLESS_CHANGES` and the dotted keys in ``allow``; also check the state holds what a
    resume needs (nets, optimisers, RNG state, meter), so a damaged record is one line."""
    where = str(ckpt.path)
    state, meta = ckpt.state, ckpt.meta
    for key in ("nets", "optimizers", "rng", "extra"):
        if key not in state:
            raise CheckpointError(f"checkpoint {where} has no {key!r} record")
    meter = state.get("meter", {"sums": {}, "count": 0})
    sums = meter.get("sums") if isinstance(meter, dict) else None
    count = meter.get("count") if isinstance(meter, dict) else None
    if (
        not isinstance(sums, dict)
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in sums.values())
        or isinstance(count, bool)
        or not isinstance(count, int)
        or count < 0
    ):
        raise CheckpointError(f"checkpoint {where} has an invalid 'meter' record")
    if not isinstance(meta.get("phase", ""), str):
        raise CheckpointError(f"checkpoint {where} has an invalid 'phase'")
    stored = meta.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {where} does not record its training config")
    old, new = config_leaves(stored), config_leaves(config)
    changed = sorted(
        k
        for k in old.keys() | new.keys()
        if old.get(k) != new.get(k) and k not in HARMLESS_CHANGES and k not in set(allow)
    )
    if changed:
        shown = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in changed[:4])
        raise CheckpointError(
            f"cannot resume from {ckpt.path.name}: the config changed since it was written: "
            f"{shown}; restore the config or allow the change explicitly "
            f"(--allow-change {changed[0]})"
        )


def config_leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"params": {"lr": 1}, "data": {"n": 5}}`` -> ``{"method.lr": 1, "data.n": 5}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            # method parameters are spelled method.X on the command line (--set method.lr=...)
            out.update(
                config_leaves(v, "method." if (prefix, k) == ("", "params") else f"{prefix}{k}.")
            )
        else:
            out[f"{prefix}{k}"] = v
    return out
