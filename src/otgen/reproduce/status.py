"""What a resumable image reproduction has trained so far (``otgen reproduce NAME --status``).

Reads every ``curve.json`` that :func:`otgen.reproduce._converge.train_until_flat` saved under
``<out>/runs/<profile>/`` and trains nothing. For each run: evaluations so far, the last and
the best FID, whether the curve is steady (the stop rule, :func:`otgen.utils.claims.
check_steady`), the training time, and whether *this* code would continue it: a run saved by
other training code (another source hash) is retrained from scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

from otgen.errors import OTGenError

_COLUMNS = ("run", "evaluations", "step", "FID", "best FID", "steady", "train_min",
            "this code continues it", "state")  # fmt: skip


def saved_runs(out_dir: str | Path, profile: str) -> list[dict]:
    """One row per saved curve under ``out_dir/runs/profile`` (sorted by run folder)."""
    from otgen.reproduce._converge import _source_hash
    from otgen.utils.claims import check_steady

    root = Path(out_dir) / "runs" / profile
    if not root.is_dir():
        raise OTGenError(f"no saved runs of profile {profile!r} under {out_dir} (no {root})")
    rows = []
    for path in sorted(root.rglob("curve.json")):
        run = path.parent.relative_to(root).as_posix()
        try:
            saved = json.loads(path.read_text())
            steps, fid, se = saved["steps"], saved["fid"], saved["se"]
        except (OSError, ValueError, KeyError, TypeError):
            rows.append({"run": run, "state": "unreadable curve.json"})
            continue
        if not steps:
            rows.append({"run": run, "state": "no evaluation yet"})
            continue
        conv = check_steady(steps, fid, se)
        rows.append({
            "run": run, "evaluations": len(steps), "step": steps[-1],
            "FID": f"{fid[-1]:.2f} ± {se[-1]:.2f}", "best FID": round(min(fid), 2),
            "steady": conv.converged, "train_min": round(saved.get("train_seconds", 0) / 60, 1),
            "this code continues it": saved.get("key", {}).get("source") == _source_hash(),
        })  # fmt: skip
    return rows


def status_table(out_dir: str | Path, profile: str) -> str:
    """:func:`saved_runs` as a Markdown table (or a line saying there is none)."""
    from otgen.utils.tables import markdown_table

    rows = saved_runs(out_dir, profile)
    if not rows:
        return f"no saved curve under {Path(out_dir) / 'runs' / profile}"
    present = {k for r in rows for k in r}
    columns = [c for c in _COLUMNS if c in present]
    return markdown_table([{c: r.get(c, "") for c in columns} for r in rows], columns)
