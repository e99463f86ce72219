"""Run configuration: dataclasses, file loading (YAML/TOML/JSON), overrides and validation.

A run is one :class:`TrainConfig`. Its keys, as written in a config file::

    method: eotgm              # a name in otgen.methods.METHODS
    params: {eps: 0.5}         # the method's Config fields (or method: {name: x, eps: 0.5})
    data: {name: gauss4, n: 10000, image_size: null, split: train, root: null}
    steps: 2000                # or epochs: 50 (exactly one of the two)
    batch_size: 256
    seed: 0
    device: auto
    out: runs/eotgm-gauss4
    log_every: 50
    sample_every: 500          # 0 = only at the end
    checkpoint_every: 500      # 0 = only at the end
    keep_checkpoints: 3
    n_samples: 64
    tensorboard: false
    distributed: ddp           # "ddp" (DistributedDataParallel wrappers) or "allreduce"
    ema: {decay: 0.0, start: 0}  # decay 0 disables the EMA of the generator

Every key can be overridden as ``KEY=VALUE`` (``--set method.eps=0.5``, ``--set data.n=500``);
the CLI also generates one flag per engine key from the dataclasses (:func:`cli_flags`), so a
flag and a key cannot drift apart. Unknown keys and ill-typed values raise
:class:`~otgen.errors.OTGenError` naming the dotted key, with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from otgen.errors import OTGenError
from otgen.utils.checks import check_config_int, decode_text

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")
DISTRIBUTED_MODES = ("ddp", "allreduce")


@dataclass(frozen=True)
class DataConfig:
    """Which data set: ``otgen.data.load(name, split=, n=, seed=, image_size=, root=)``."""

    name: str = ""
    n: int | None = None  # subsample size (None: all)
    image_size: int | None = None  # resize images to this side (None: native)
    split: str = "train"
    root: str | None = None  # where image files are looked for (None: otgen.data's default)

    def __post_init__(self) -> None:
        _check(self.n is None or self.n >= 1, "data.n", self.n, "an integer >= 1 or null")
        _check(
            self.image_size is None or self.image_size >= 1,
            "data.image_size",
            self.image_size,
            "an integer >= 1 or null",
        )


@dataclass(frozen=True)
class EMAConfig:
    """Exponential moving average of the generator's weights (``decay`` 0 disables it)."""

    decay: float = 0.0
    start: int = 0  # steps before ``start`` copy the weights (no averaging yet)

    def __post_init__(self) -> None:
        _check(0.0 <= self.decay < 1.0, "ema.decay", self.decay, "in [0, 1)")
        _check(self.start >= 0, "ema.start", self.start, ">= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (see the module docstring for the keys)."""

    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    out: str = ""
    log_every: int = 50
    sample_every: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    n_samples: int = 64
    tensorboard: bool = False
    distributed: str = "ddp"
    ema: EMAConfig = field(default_factory=EMAConfig)

    def __post_init__(self) -> None:
        _check(self.steps is None or self.steps >= 1, "steps", self.steps, ">= 1 or null")
        _check(self.epochs is None or self.epochs >= 1, "epochs", self.epochs, ">= 1 or null")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        for key in ("log_every", "sample_every", "checkpoint_every"):
            _check(getattr(self, key) >= 0, key, getattr(self, key), ">= 0")
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", self.keep_checkpoints, ">= 1")
        _check(self.n_samples >= 1, "n_samples", self.n_samples, ">= 1")
        if self.distributed not in DISTRIBUTED_MODES:
            raise OTGenError(
                f"distributed: unknown mode {self.distributed!r}; choose one of: "
                + ", ".join(DISTRIBUTED_MODES)
            )

    def validate_for_run(self) -> TrainConfig:
        """Checks that only matter when training starts (a method, data, a schedule)."""
        if not self.method:
            raise OTGenError("method: no method given (a name from otgen.methods.METHODS)")
        if (self.steps is None) == (self.epochs is None):
            raise OTGenError("give exactly one of steps and epochs")
        if not self.out:
            raise OTGenError("out: no output directory given")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; :func:`config_from_dict` inverts it."""
        return _jsonable(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# -- validation ---------------------------------------------------------------------------


def _check(ok: bool, key: str, value: Any, what: str) -> None:
    if not ok:
        raise OTGenError(f"{key}: must be {what}, got {value!r}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    return obj


def suggest(key: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid key, or ``""``."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown(path: str, key: str, choices: list[str]) -> OTGenError:
    full = f"{path}.{key}" if path else key
    return OTGenError(
        f"unknown config key {full!r}{suggest(key, choices)} (valid: {', '.join(choices)})"
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (from YAML/TOML/JSON/CLI) to the annotated type ``tp`` or raise."""
    if tp is Any or tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except OTGenError as exc:
                errors.append(str(exc))
        raise OTGenError(errors[0] if len(errors) == 1 else f"{key}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise OTGenError(
                f"{key}: {value!r} is not one of {', '.join(map(repr, args))}"
                + suggest(str(value), [str(a) for a in args])
            )
        return value
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise OTGenError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise OTGenError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [
                _coerce(v, a, f"{key}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            ]
        else:
            elem = args[0] if args else Any
            items = [_coerce(v, elem, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise OTGenError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if is_dataclass(tp):
        return build_dataclass(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise OTGenError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                raise OTGenError(f"{key}: expected an integer, got {value!r}")
            value = int(value)
        return check_config_int(value, key)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                value = float(value)
            except ValueError:
                raise OTGenError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OTGenError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise OTGenError(f"{key}: must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise OTGenError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise OTGenError(f"{key}: expected {tp.__name__}, got {value!r}")
    return value


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotation: fall back to the defaults' types below
        return {}


def build_dataclass(cls: type, values: Any, path: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking keys and types (recursively)."""
    if is_dataclass(values) and isinstance(values, cls):
        return values
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise OTGenError(f"{path or 'config'}: expected a mapping, got {values!r}")
    hints = _hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise _unknown(path, str(key), list(known))
        full = f"{path}.{key}" if path else key
        tp = hints.get(key)
        if tp is None:  # no usable annotation: check against the default's type
            default = known[key].default
            tp = Any if default in (dataclasses.MISSING, None) else type(default)
        kwargs[key] = _coerce(value, tp, full)
    try:
        return cls(**kwargs)
    except OTGenError as exc:
        msg = str(exc)
        raise OTGenError(msg if not path or msg.startswith(path) else f"{path}: {msg}") from None
    except (TypeError, ValueError) as exc:
        raise OTGenError(f"{path or cls.__name__}: {exc}") from None


# -- methods ------------------------------------------------------------------------------


def resolve_method(name: str) -> type:
    """The Method class registered as ``name`` in :data:`otgen.methods.METHODS`.

    Only otgen's own table is consulted: a config (e.g. a run directory's ``config.json``)
    can never make otgen import a module, so opening a run is as safe as reading JSON.
    """
    from otgen.methods import METHODS

    if not isinstance(name, str) or name not in METHODS:
        names = sorted(METHODS)
        raise OTGenError(
            f"method: unknown method {name!r}{suggest(str(name), names)} "
            f"(available: {', '.join(names)})"
        )
    return METHODS[name]


def method_config(config: TrainConfig, method_cls: type | None = None) -> Any:
    """The method's ``Config`` instance built (and validated) from ``config.params``."""
    cls = method_cls or resolve_method(config.method)
    cfg_cls = getattr(cls, "Config", None)
    if cfg_cls is None or not is_dataclass(cfg_cls):
        if config.params:
            raise OTGenError(f"method {config.method!r} takes no parameters (method.*)")
        return None
    return build_dataclass(cfg_cls, dict(config.params), "method")


# -- dicts, files, overrides --------------------------------------------------------------


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Fold ``method: {name: x, k: v}`` into ``method: x`` + ``params: {k: v}``."""
    raw = dict(raw)
    method = raw.get("method")
    if isinstance(method, dict):
        method = dict(method)
        params = dict(raw.get("params") or {})
        params.update({k: v for k, v in method.items() if k != "name"})
        raw["method"] = method.get("name", "")
        raw["params"] = params
    return raw


def config_from_dict(raw: dict[str, Any], *, check_params: bool = True) -> TrainConfig:
    """Validated :class:`TrainConfig`; ``params`` are checked against the method's Config and
    stored fully resolved (every field, defaults included) so a run records all its settings.
    """
    if not isinstance(raw, dict):
        raise OTGenError(f"config: expected a mapping at the top level, got {type(raw).__name__}")
    cfg = build_dataclass(TrainConfig, _normalise(raw))
    if check_params and cfg.method:
        mcfg = method_config(cfg)
        if mcfg is not None:
            cfg = cfg.replace(params=_jsonable(dataclasses.asdict(mcfg)))
    return cfg


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON config file into a dict (not yet validated)."""
    path = Path(path)
    if not path.is_file():
        raise OTGenError(f"config file {str(path)!r} not found")
    text = decode_text(path.read_bytes(), f"config file {str(path)!r}")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise OTGenError(
                f"config file {str(path)!r}: unknown format (use {', '.join(CONFIG_SUFFIXES)})"
            )
    except OTGenError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OTGenError(f"config file {str(path)!r} is not valid: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OTGenError(f"config file {str(path)!r}: expected a mapping at the top level")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"method.eps=0.5"`` -> ``("method.eps", 0.5)``; the value is read as YAML."""
    import yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OTGenError(f"override {text!r} must look like KEY=VALUE (e.g. method.eps=0.5)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def apply_override(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set dotted ``key`` in the raw dict (``method.X`` and ``params.X`` set a method param)."""
    raw = _normalise(raw)
    parts = key.split(".")
    if parts[0] == "method" and len(parts) > 1:
        if parts[1] == "name":
            raw["method"] = value
            return raw
        parts = ["params", *parts[1:]]
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else child
            if not isinstance(child, dict):
                raise OTGenError(f"override {key!r}: {part!r} is not a section")
            node[part] = child
        node = child
    node[parts[-1]] = value
    return raw


# -- CLI flags generated from the dataclasses ---------------------------------------------


@dataclass(frozen=True)
class Flag:
    key: str  # dotted config key, e.g. "ema.decay"
    flag: str  # e.g. "--ema-decay"
    type: Any
    help: str


_HELP = {
    "data.name": "data set name or path (otgen.data.load)",
    "data.n": "use only N training samples",
    "data.image_size": "resize images to this side",
    "data.split": "data split (default train)",
    "data.root": "folder holding the data files (default: $OTGEN_DATA, /usr/share/datasets)",
    "steps": "number of training steps (or --epochs)",
    "epochs": "number of epochs over the training set (or --steps)",
    "batch_size": "global batch size (split across processes under torchrun)",
    "seed": "random seed",
    "device": "cpu, cuda, cuda:N or auto",
    "out": "run directory",
    "log_every": "log metrics every N steps",
    "sample_every": "write a sample image every N steps (0: only at the end)",
    "checkpoint_every": "write a checkpoint every N steps (0: only at the end)",
    "keep_checkpoints": "keep the last K checkpoints",
    "n_samples": "number of samples in the interval sample images",
    "tensorboard": "also log to TensorBoard (if installed)",
    "distributed": "multi-process gradient sync: ddp or allreduce",
    "ema.decay": "EMA decay of the generator (0 disables)",
    "ema.start": "step from which the EMA averages",
}


def cli_flags() -> list[Flag]:
    """One flag per engine config key: ``a.b_c`` -> ``--a-b-c`` (``data.name`` -> ``--data``)."""
    flags = []

    def walk(cls: type, prefix: str) -> None:
        hints = _hints(cls)
        for f in fields(cls):
            key = f"{prefix}{f.name}"
            tp = hints[f.name]
            if key in ("method", "params"):
                continue
            if is_dataclass(tp):
                walk(tp, f"{key}.")
                continue
            name = "data" if key == "data.name" else key.replace(".", "-").replace("_", "-")
            flags.append(Flag(key, f"--{name}", tp, _HELP.get(key, key)))

    walk(TrainConfig, "")
    return flags
