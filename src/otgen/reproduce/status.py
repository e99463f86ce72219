"""What a resumable image reproduction has trained so far (``otgen reproduce NAME --status``).

Reads every ``curve.json`` that :func:`otgen.reproduce._converge.train_until_flat` saved under
``<out>/runs/<profile>/`` and trains nothing. For each run: evaluations so far, the last and
the best value of its probe (FID, or an AE's held-out MSE), whether the curve is steady (the
stop rule, :func:`otgen.utils.claims.check_steady`), the training time, whether it was saved by
the same training code as this one (another source hash is retrained from scratch; the rest of
the key, the config and data, is the reproduction's to match) and whether its checkpoint is
still there (a folder without one starts afresh).
"""

from __future__ import annotations

import json
from pathlib import Path

from otgen.errors import OTGenError

_COLUMNS = ("run", "evaluations", "step", "metric", "best", "steady", "train_min",
            "same training code", "checkpoint", "state")  # fmt: skip


def saved_runs(out_dir: str | Path, profile: str) -> list[dict]:
    """One row per saved curve under ``out_dir/runs/profile`` (sorted by run folder)."""
    root = Path(out_dir) / "runs" / profile
    if not root.is_dir():
        raise OTGenError(f"no saved runs of profile {profile!r} under {out_dir} (no {root})")
    rows = []
    for path in sorted(root.rglob("curve.json")):
        run = path.parent.relative_to(root).as_posix()
        try:
            rows.append({"run": run, **_row(json.loads(path.read_text()), path.parent)})
        except (OSError, ValueError, KeyError, TypeError, IndexError, OTGenError):
            rows.append({"run": run, "state": "unreadable curve.json"})
    return rows


def _row(saved: dict, run_dir: Path) -> dict:
    """One saved curve: ``metric`` is the probe's value (FID, or the AE's held-out MSE)."""
    from otgen.engine.checkpoint import list_checkpoints
    from otgen.reproduce._converge import _source_hash
    from otgen.utils.claims import check_steady

    steps, values, ses = saved["steps"], saved["fid"], saved["se"]
    if not steps:
        return {"state": "no evaluation yet"}
    return {
        "evaluations": len(steps), "step": steps[-1], "metric": f"{values[-1]:.4g} ± {ses[-1]:.2g}",
        "best": float(f"{min(values):.4g}"), "steady": check_steady(steps, values, ses).converged,
        "train_min": round(saved.get("train_seconds", 0) / 60, 1),
        "same training code": saved["key"].get("source") == _source_hash(),
        "checkpoint": bool(list_checkpoints(run_dir / "checkpoints")),
    }  # fmt: skip


def status_table(out_dir: str | Path, profile: str) -> str:
    """:func:`saved_runs` as a Markdown table (or a line saying there is none)."""
    from otgen.utils.tables import markdown_table

    rows = saved_runs(out_dir, profile)
    if not rows:
        return f"no saved curve under {Path(out_dir) / 'runs' / profile}"
    present = {k for r in rows for k in r}
    columns = [c for c in _COLUMNS if c in present]
    return markdown_table([{c: r.get(c, "") for c in columns} for r in rows], columns)
