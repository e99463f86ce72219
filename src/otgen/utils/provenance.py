"""Provenance of a report: which code, command, profile and machine produced its numbers.

A row marked "reproduced" is only evidence if a reader can tell that it came from a commit in
the history, at a stated budget, on a stated machine. :func:`provenance` collects that record;
:func:`otgen.utils.report.write_report` stores it in every JSON report and prints it in the
Markdown, so every reproduction and benchmark gets it without passing anything.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

PROFILES = ("quick", "cpu", "paper")
# Report files are rewritten while an experiment runs; their changes do not make the code dirty.
_IGNORED_FOR_DIRTY = ("benchmarks/results",)
_IMPORT_TIME = time.time()


def repo_root() -> Path | None:
    """The git work tree holding the imported otgen package (not the caller's cwd)."""
    here = Path(__file__).resolve().parent
    out = _git(["rev-parse", "--show-toplevel"], here)
    return Path(out) if out else None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # strip only line ends: porcelain status lines start with a meaningful space
    return res.stdout.rstrip("\n") if res.returncode == 0 else None


def git_state(root: Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty", "dirty_files"}`` of the work tree (None fields outside git).

    Dirty = a tracked file outside ``benchmarks/results`` differs from the commit; untracked
    files are not counted (new report folders are untracked while they are written).
    """
    root = root or repo_root()
    if root is None:
        return {"commit": None, "dirty": None, "dirty_files": []}
    commit = _git(["rev-parse", "HEAD"], root)
    spec = ["--", "."] + [f":(exclude){p}" for p in _IGNORED_FOR_DIRTY]
    status = _git(["status", "--porcelain", "--untracked-files=no", *spec], root)
    files = [line[3:] for line in (status or "").splitlines() if len(line) > 3]
    return {"commit": commit, "dirty": bool(files) if status is not None else None,
            "dirty_files": files[:20]}  # fmt: skip


def command_line(argv: list[str] | None = None) -> str:
    """The invoking command as a shell line, ``--out`` and every other flag included."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    prog = argv[0]
    name = Path(prog).name
    if name == "__main__.py" and Path(prog).parent.name == "otgen":
        head = ["python", "-m", "otgen"]
    elif name.endswith(".py"):
        head = ["python", _relative(prog)]
    else:
        head = [name or prog]
    return shlex.join(head + argv[1:])


def _relative(path: str) -> str:
    root = repo_root()
    try:
        return Path(path).resolve().relative_to(root).as_posix() if root else path
    except ValueError:
        return path


def _flag(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def infer_profile(argv: list[str] | None = None) -> str:
    """``--profile X`` if given; else "quick" under ``--quick``; else "cpu" (the non-quick
    defaults of every experiment are sized for this CPU, not for the papers' budgets)."""
    argv = list(sys.argv if argv is None else argv)
    explicit = _flag(argv, "--profile")
    if explicit:
        return explicit
    return "quick" if "--quick" in argv else "cpu"


def infer_device(argv: list[str] | None = None) -> str:
    """The device the command asked for (``--device``), resolved to a name; default cpu."""
    argv = list(sys.argv if argv is None else argv)
    dev = _flag(argv, "--device") or "cpu"
    if dev.startswith("cuda") or dev == "auto":
        if torch.cuda.is_available():
            return f"{dev} ({torch.cuda.get_device_name(0)})"
        return "cpu" if dev == "auto" else f"{dev} (unavailable)"
    return dev


def process_start_time() -> float:
    """Unix time at which this process started (Linux /proc), else when otgen was imported."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 (starttime), counted after "pid (comm)"
        btime = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORT_TIME


def provenance(
    *,
    profile: str | None = None,
    device: str | None = None,
    wall_s: float | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The provenance record of a report written now by this process.

    ``profile``/``device``/``wall_s`` override what is inferred from the command line and the
    process start time (a caller that knows them exactly should pass them).
    """
    argv = list(sys.argv if argv is None else argv)
    wall = time.time() - process_start_time() if wall_s is None else float(wall_s)
    return {
        **git_state(),
        "command_line": command_line(argv),
        "profile": profile or infer_profile(argv),
        "wall_s": round(wall, 1),
        "device": device or infer_device(argv),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_markdown(p: dict[str, Any]) -> str:
    """One paragraph for the top of a Markdown report."""
    commit = (p.get("commit") or "unknown")[:10]
    dirty = {True: " (dirty tree)", False: "", None: " (dirty state unknown)"}[p.get("dirty")]
    return (
        f"Provenance: commit `{commit}`{dirty}; command `{p.get('command_line', '')}`; "
        f"profile **{p.get('profile')}**; wall time {p.get('wall_s')} s; device {p.get('device')}; "
        f"torch {p.get('torch')}, {p.get('torch_threads')} thread(s) of {p.get('cpu_count')} CPUs; "
        f"{p.get('date')}.\n"
    )


def is_complete(p: Any) -> bool:
    """True for a provenance record with every field this module writes (not older code's)."""
    keys = ("commit", "dirty", "command_line", "profile", "wall_s", "device", "torch",
            "torch_threads", "date")  # fmt: skip
    return isinstance(p, dict) and all(k in p for k in keys) and bool(p.get("commit"))
