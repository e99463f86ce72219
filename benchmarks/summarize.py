"""Write ``benchmarks/results/SUMMARY.md``: an index of every report under benchmarks/results.

Each report is a ``<name>.json`` written by :func:`otgen.utils.report.write_report` next to
its ``<name>.md``; this script lists title, producing command and date, and links the table,
so the README can point at script-written numbers instead of quoting them.

    python benchmarks/summarize.py
"""

from __future__ import annotations

import json
from pathlib import Path

from otgen.utils.io import write_text
from otgen.utils.report import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"


def collect(root: Path = RESULTS) -> list[dict[str, str]]:
    rows = []
    for path in sorted(root.rglob("*.json")):
        if "runs" in path.relative_to(root).parts:
            continue
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(payload, dict) or "title" not in payload:
            continue
        md = path.with_suffix(".md")
        rel = md.relative_to(root) if md.exists() else path.relative_to(root)
        rows.append(
            {
                "report": f"[{payload['title']}]({rel.as_posix()})",
                "command": f"`{payload.get('command', '')}`",
                "date": payload.get("machine", {}).get("date", ""),
            }
        )
    return rows


def main() -> None:
    rows = collect()
    text = (
        "# Results index\n\nEvery table here is written by a script; this index by "
        "`python benchmarks/summarize.py`.\n\n"
        + markdown_table(rows, ["report", "command", "date"])
    )
    write_text(RESULTS / "SUMMARY.md", text)
    print(f"indexed {len(rows)} reports in {RESULTS / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
