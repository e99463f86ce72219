"""Result reports for benchmarks and reproductions: JSON + a Markdown table, from scripts.

Every number in ``benchmarks/results/`` is written by code through these helpers, never typed.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from otgen.utils.io import write_json, write_text

if TYPE_CHECKING:
    from otgen.utils.claims import Claim


def machine_info() -> dict[str, Any]:
    import os

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e6):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: str | Path,
    name: str,
    *,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    data: dict[str, Any] | None = None,
    notes: str = "",
    command: str = "",
    figures: Sequence[str | Path] = (),
    claims: Sequence[Claim] = (),
    profile: str | None = None,
    device: str | None = None,
    wall_s: float | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (rows, data, machine, provenance, claims) and ``<name>.md``.

    Every report records its provenance (:func:`otgen.utils.provenance.provenance`: commit,
    dirty flag, full command line, profile, wall time, device, torch and threads); ``profile``,
    ``device`` and ``wall_s`` override what is inferred from ``sys.argv`` and the process start.
    ``claims`` (:class:`otgen.utils.claims.Claim`) become a table with verdicts.
    """
    from otgen.utils.claims import claims_markdown
    from otgen.utils.provenance import provenance, provenance_markdown

    out_dir = Path(out_dir)
    info = machine_info()
    prov = provenance(profile=profile, device=device, wall_s=wall_s)
    payload = {"title": title, "command": command, "machine": info, "provenance": prov,
               "rows": list(rows)}  # fmt: skip
    payload.update(data or {})
    if claims:
        payload["claims"] = [c.to_dict() for c in claims]
    json_path = write_json(out_dir / f"{name}.json", payload)
    md = [f"# {title}\n", provenance_markdown(prov)]
    if command:  # the caller's short form; the exact invocation is in the provenance line
        md.append(f"Experiment command: `{command}`.\n")
    if claims:
        md.append("## Claims\n\n" + claims_markdown(claims) + "\n## Results\n")
    md.append(markdown_table(rows, columns))
    if notes:
        md.append("\n" + notes.strip() + "\n")
    for fig in figures:
        rel = Path(fig).name if Path(fig).parent == out_dir else fig
        md.append(f"\n![{Path(fig).stem}]({rel})\n")
    md_path = write_text(out_dir / f"{name}.md", "\n".join(md))
    return json_path, md_path


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN error for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def fmt_mean_se(values: Sequence[float], digits: int) -> str:
    """``"m ± se"`` with ``digits`` decimals, or just ``"m"`` for a single value."""
    mean, se = mean_se(values)
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"
