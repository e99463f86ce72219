"""A run directory: its files, who may write it, and which outputs may never replace them.

::

    <run>/config.json        resolved config + data spec (written when training starts)
    <run>/metrics.jsonl      one record per log interval
    <run>/samples/           interval sample figures
    <run>/checkpoints/       step-<s>.{safetensors,json}
    <run>/tensorboard/       only when asked for
    <run>/.otgen.lock        PID of the last process that trained here (the lock file)

Three rules keep a run's data from being lost:

- **Training writes only into an empty directory, its own run, or where told to.** A
  directory that holds files but no run is refused unless ``overwrite=True`` (``--overwrite``),
  and then nothing in it is deleted or truncated: every entry with one of the names above
  (a foreign ``metrics.jsonl``, ``samples/``, ...) is first renamed to ``<name>.<N>`` (the
  smallest free ``N``), and all other files are left alone. A directory holding a run (a
  ``config.json`` run record or a committed checkpoint) is never overwritten: it is resumed
  (``--resume``; a config that changed since the newest checkpoint is refused by
  :func:`otgen.engine.checkpoint.check_resumable` unless the changed keys are allowed) or
  refused.
- **One writer at a time.** Training holds an exclusive ``flock`` on ``.otgen.lock`` for as
  long as it writes; the kernel drops it when the process exits or dies, so a crashed run
  never leaves a stale lock. A second process is refused with one line naming the holder's PID.
- **Other commands' outputs never replace a run's own files** (:func:`check_outputs`):
  ``otgen refine --out R/config`` (which writes ``R/config.json``) or ``otgen sample --out
  R/samples/step-….png`` is refused before any work is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from otgen.data.spec import DataSpec
from otgen.engine.checkpoint import latest_checkpoint, list_checkpoints
from otgen.engine.config import TrainConfig, config_from_dict
from otgen.engine.logging import METRICS_FILE, TENSORBOARD_DIR
from otgen.errors import CheckpointError, OTGenError
from otgen.utils.checks import check_output_path
from otgen.utils.io import write_json

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
SAMPLE_DIR = "samples"
LOCK_FILE = ".otgen.lock"
# Every entry of a run directory that training writes; nothing else may replace them.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, SAMPLE_DIR, CHECKPOINT_DIR, TENSORBOARD_DIR, LOCK_FILE)


# -- reading and writing a run ------------------------------------------------------------


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def newest_checkpoint(run_dir: str | Path) -> Path | None:
    """The JSON record of the run's newest committed checkpoint (None before the first)."""
    return latest_checkpoint(checkpoint_dir(run_dir))


def spec_dict(spec: DataSpec) -> dict[str, Any]:
    return {
        "shape": list(spec.shape),
        "num_classes": spec.num_classes,
        "value_range": list(spec.value_range),
    }


def _spec_from(d: dict[str, Any]) -> DataSpec:
    try:
        return DataSpec(tuple(d["shape"]), d.get("num_classes"), tuple(d["value_range"]))
    except (KeyError, TypeError):
        raise CheckpointError("run config has an invalid data spec") from None


def read_run(run_dir: str | Path) -> tuple[TrainConfig, DataSpec]:
    """The config and data spec stored in ``<run>/config.json``."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise OTGenError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    try:
        rec = json.loads(path.read_text())
        cfg_raw, spec_raw = rec["config"], rec["spec"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{path} is corrupt") from None
    return config_from_dict(cfg_raw), _spec_from(spec_raw)


def write_config(run_dir: str | Path, config: TrainConfig, spec: DataSpec, data: str) -> Path:
    """``<run>/config.json``: what the run trains with (atomically replaced)."""
    record = {"config": config.to_dict(), "spec": spec_dict(spec), "data": data}
    return write_json(Path(run_dir) / CONFIG_FILE, record)


def holds_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run: a ``config.json`` run record or a committed checkpoint."""
    run_dir = Path(run_dir)
    return _is_run_record(run_dir / CONFIG_FILE) or bool(list_checkpoints(checkpoint_dir(run_dir)))


def _is_run_record(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        rec = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(rec, dict) and "config" in rec and "spec" in rec


# -- one writer at a time -----------------------------------------------------------------


class RunLock:
    """An exclusive ``flock`` on ``<run>/.otgen.lock``, held until :meth:`release` or exit.

    ``flock`` locks belong to the open file, so the kernel releases this one when the process
    ends however it ends (SIGKILL included); the PID written into the file only names the
    holder in the refusal message of a second writer. ``release(undo=True)`` (training failed
    before writing anything) leaves the directory as it was found: a lock file or directories
    this lock created are removed again, an older lock file gets its old content back.
    """

    def __init__(self, path: Path, fd: int, created: list[Path], old: bytes | None) -> None:
        self.path, self._fd, self._created, self._old = path, fd, created, old

    @classmethod
    def acquire(cls, run_dir: str | Path) -> RunLock:
        path = Path(run_dir) / LOCK_FILE
        created = [d for d in (path.parent, *path.parent.parents) if not d.exists()][::-1]
        old = path.read_bytes() if path.is_file() else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OTGenError(f"out: cannot create {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # a lock file unlinked by an undo between our open and flock is not the lock
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            holder = _read_pid(fd)
            os.close(fd)
            raise _in_use(path.parent, holder) from None
        except OSError as exc:  # a file system without locks
            os.close(fd)
            raise OTGenError(f"out: cannot lock {path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd, created + ([] if old is not None else [path]), old)

    def release(self, *, undo: bool = False) -> None:
        if self._fd is None:
            return
        if undo and self._old is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, self._old, 0)
        if undo:  # files first (the lock file is removed while still held), then directories
            for p in reversed(self._created):
                with contextlib.suppress(OSError):  # a directory someone wrote into stays
                    if p.is_dir():
                        p.rmdir()
                    else:
                        p.unlink()
        os.close(self._fd)  # closing the file drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _in_use(run_dir: Path, pid: int | None) -> OTGenError:
    who = f"otgen process {pid}" if pid else "another otgen process"
    return OTGenError(
        f"{run_dir} is being written by {who} (lock {LOCK_FILE}); wait for it to end or "
        "choose another --out"
    )


def _check_not_locked(run_dir: Path) -> None:
    """Refuse a run directory another process holds the lock of, without writing anything."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody trains here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while a writer holds LOCK_EX
    except BlockingIOError:
        raise _in_use(run_dir, _read_pid(fd)) from None
    except OSError:
        pass  # no locks on this file system: acquire() will say so
    finally:
        os.close(fd)


# -- may training write here? --------------------------------------------------------------


def claim(
    run_dir: str | Path, *, resume: bool, overwrite: bool = False, lock: bool = True
) -> RunLock | None:
    """Check that training may write ``run_dir`` and, with ``lock``, lock it for this process.

    Refused (nothing written): a directory another process trains in; a run (unless
    ``resume``); a directory holding files but no run (unless ``overwrite``, which first
    renames the entries a run writes to ``<name>.<N>``); an output inside another run's own
    files. Processes other than rank 0 of a torchrun job pass ``lock=False`` (they only read).
    """
    run_dir = Path(run_dir)
    check_output_path(run_dir, "out", directory=True)
    check_outputs([run_dir], name="out")
    if lock:  # (the other ranks of a torchrun job see rank 0's lock: that is no refusal)
        _check_not_locked(run_dir)
    _check_contents(run_dir, resume, overwrite)
    if not lock:
        return None
    held = RunLock.acquire(run_dir)
    try:
        _check_contents(run_dir, resume, overwrite)  # again: another process may have begun
        if overwrite and not holds_run(run_dir):
            _set_aside(run_dir)
    except BaseException:
        held.release(undo=True)
        raise
    return held


def _check_contents(run_dir: Path, resume: bool, overwrite: bool) -> None:
    if holds_run(run_dir):
        if not resume:
            raise OTGenError(
                f"{run_dir} already holds a run; continue it with "
                f"`otgen resume --run {run_dir}` or choose another --out"
                + (" (--overwrite never replaces a run)" if overwrite else "")
            )
        return
    found = _entries(run_dir)
    if found and not overwrite:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise OTGenError(
            f"{run_dir} is not empty and holds no otgen run ({shown}); choose a new or empty "
            "--out, or pass --overwrite to train there (nothing in it is deleted)"
        )


def _entries(run_dir: Path) -> list[str]:
    """The names in ``run_dir`` other than its lock file, sorted (none if it does not exist)."""
    if not run_dir.is_dir():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_FILE)


def _set_aside(run_dir: Path) -> None:
    """Rename every entry a run would write to ``<name>.<N>``, so training replaces nothing."""
    for name in RUN_FILES:
        path = run_dir / name
        if name == LOCK_FILE or not (path.exists() or path.is_symlink()):
            continue
        n = 1
        while (run_dir / f"{name}.{n}").exists():
            n += 1
        path.rename(run_dir / f"{name}.{n}")
        print(f"otgen: note: kept the earlier {path} as {name}.{n}", file=sys.stderr)


# -- outputs of other commands ------------------------------------------------------------


def check_outputs(
    outputs: Iterable[str | Path], run: str | Path | None = None, *, name: str = "--out"
) -> None:
    """Refuse any of ``outputs`` (all paths a command will write) that is, or lies inside, one
    of a run's own entries (:data:`RUN_FILES`) -- of ``run`` or of any run directory above the
    output. Symbolic links and ``..`` are resolved first."""
    runs = [Path(run).resolve()] if run is not None else []
    for out in outputs:
        path = Path(out).resolve()
        owners = runs + [d for d in path.parents if d not in runs and holds_run(d)]
        for owner in owners:
            if path == owner or owner not in path.parents:
                continue
            entry = path.relative_to(owner).parts[0]
            if entry in RUN_FILES:
                raise OTGenError(
                    f"{name}: {out} would write into the run's own {entry} in {owner}; "
                    "choose another output path"
                )
