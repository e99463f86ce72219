"""Result reports for benchmarks and reproductions: JSON + a Markdown table, from scripts.

Every number in ``benchmarks/results/`` is written by code through these helpers, never typed.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from otgen.utils.io import write_json, write_text
from otgen.utils.tables import markdown_table

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
