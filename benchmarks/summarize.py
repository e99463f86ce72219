"""Write ``benchmarks/results/SUMMARY.md``: every claim of the five papers with its verdict.

    python benchmarks/summarize.py

Sources, all script-written:

- the claims catalogue :data:`otgen.utils.claims.CATALOG` (the papers' claims, from papers/
  and issues 15–16);
- the ``claims`` lists that :func:`otgen.utils.report.write_report` stores in each report's
  JSON (matched by claim key). A catalogued claim no report tests is "untested — no report";
- each report's ``provenance``: a report without one (older code), or whose commit is not in
  this checkout's history, is flagged "stale — regenerate", and its verdicts are not trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from otgen.errors import OTGenError
from otgen.utils.claims import CATALOG, UNTESTED, check_steady
from otgen.utils.io import write_text
from otgen.utils.provenance import is_complete, repo_root
from otgen.utils.tables import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS_DIR = Path("/usr/share/datasets")
# Data the papers' image tables use; only what is present under DATASETS_DIR can be used here.
PAPER_DATASETS = {
    "CIFAR-10": "DOT Table 1–2, AE-OT Table 4, AE-OT-GAN, MBGAN Table 3",
    "STL-10": "DOT Table 1",
    "ImageNet (+ public pre-trained cGAN)": "DOT Table 3",
    "CelebA": "AE-OT Table 4, AE-OT-GAN",
    "MNIST": "EOT Fig. 1c–d, AE-OT Table 4",
    "SVHN": "MBGAN Table 4",
    "Fashion-MNIST": "analogue of every image table (issue 16)",
}


def load_reports(root: Path = RESULTS) -> list[dict[str, Any]]:
    """Every ``<name>.json`` report under ``root`` (not training runs), with its link."""
    reports = []
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
        rel = (md if md.exists() else path).relative_to(root).as_posix()
        reports.append({"path": path, "link": rel, "payload": payload,
                        "status": report_status(payload)})  # fmt: skip
    return reports


def _in_history(commit: str) -> bool:
    root = repo_root()
    if root is None:
        return False
    res = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=root,
                         capture_output=True, check=False)  # fmt: skip
    return res.returncode == 0


def report_status(payload: dict) -> str:
    """ "ok", "ok (dirty tree)" or "stale — regenerate" (no provenance / unknown commit / a
    curve the report counted as converged that today's rule does not accept)."""
    prov = payload.get("provenance")
    if not is_complete(prov):
        return "stale — regenerate (no provenance: older code)"
    if not _in_history(prov["commit"]):
        return "stale — regenerate (commit not in history)"
    unsteady = unsteady_curves(payload)
    if unsteady:
        return (f"stale — regenerate ({len(unsteady)} curve(s) it counted as converged are not "
                "steady under today's rule, otgen.utils.claims.check_steady)")  # fmt: skip
    return "ok (dirty tree)" if prov.get("dirty") else "ok"


# the two ways a report stores a curve it counted as converged: a training's FID curve
# (``otgen.reproduce._converge.Curve.to_dict``) and a claim's convergence record
# (``otgen.utils.claims.Convergence``: the across-seed mean ± s.e. of a 2D experiment's metric)
CURVE_KEYS = (("steps", "fid", "se"), ("steps", "means", "ses"))


def _saved_curve(payload: dict) -> tuple | None:
    """``(steps, values, ses)`` of a curve counted as converged, else None."""
    if payload.get("converged") is not True:
        return None
    for keys in CURVE_KEYS:
        if set(keys) <= payload.keys() and payload["steps"]:
            return tuple(payload[k] for k in keys)
    return None


def _steady(curve: tuple) -> bool:
    """Today's stop rule on a saved curve; one that cannot be read counts as not steady."""
    try:
        return check_steady(*curve).converged
    except (OTGenError, TypeError, ValueError):
        return False


def unsteady_curves(payload: Any, path: str = "") -> list[str]:
    """Where a report's saved curves counted as converged (:data:`CURVE_KEYS`) fail today's
    stop rule: the rule was made stricter after some reports were written."""
    found = []
    if isinstance(payload, dict):
        curve = _saved_curve(payload)
        if curve is not None and not _steady(curve):
            found.append(path or "/")
        for key, value in payload.items():
            found += unsteady_curves(value, f"{path}/{key}")
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            found += unsteady_curves(value, f"{path}[{i}]")
    return found


def claim_rows(reports: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per catalogued claim (and per extra claim a report adds), best evidence first."""
    found: dict[str, list[tuple[dict, dict]]] = {}
    for rep in reports:
        for c in _claims_of(rep["payload"]):
            found.setdefault(c["key"], []).append((c, rep))
    rows, seen = [], set()
    for entry in CATALOG:
        seen.add(entry.key)
        hits = found.get(entry.key, [])
        if not hits:
            rows.append(_untested_row(entry, reports))
            continue
        rows.extend(_measured_row(c, rep) for c, rep in hits)
    for key, hits in found.items():  # claims a report tests that the catalogue lacks
        if key not in seen:
            rows.extend(_measured_row(c, rep) for c, rep in hits)
    return rows


def _claims_of(payload: dict) -> list[dict]:
    """The report's Claim records (older reports used "claims" for free-form data)."""
    claims = payload.get("claims")
    if not isinstance(claims, list):
        return []
    return [c for c in claims if isinstance(c, dict) and {"key", "verdict"} <= c.keys()]


def _untested_row(entry, reports) -> dict[str, str]:
    related = [r for r in reports if r["link"].split("/")[0].startswith(entry.report)]
    link = ", ".join(f"[{r['link']}]({r['link']})" for r in related) or "—"
    verdict = (
        f"untested — not reproducible here ({entry.why_not})"
        if not entry.reproducible_here
        else "untested — no report"
    )
    return {"paper": entry.paper, "claim": entry.claim, "paper's value": entry.paper_value,
            "otgen": "—", "seeds": "—", "budget": "—", "verdict": verdict,
            "report": link}  # fmt: skip


def _measured_row(c: dict, rep: dict) -> dict[str, str]:
    verdict = c["verdict"]
    if verdict == UNTESTED and c.get("reason"):
        verdict = f"untested ({c['reason']})"
    if not rep["status"].startswith("ok"):  # a stale report's verdict is not trusted
        verdict = f"untested — {rep['status']}; the report said: {verdict}"
    budget = "—" if c.get("budget") is None else f"{c['budget']:.3g}×"
    return {"paper": c["paper"], "claim": c["claim"], "paper's value": c["paper_value"],
            "otgen": c.get("ours", "—"), "seeds": str(c.get("n_seeds", 0)), "budget": budget,
            "verdict": verdict, "report": f"[{rep['link']}]({rep['link']})"}  # fmt: skip


def index_rows(reports: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for rep in reports:
        p = rep["payload"]
        prov = p.get("provenance") or {}
        rows.append(
            {
                "report": f"[{p['title']}]({rep['link']})",
                "command": f"`{prov.get('command_line') or p.get('command', '')}`",
                "profile": prov.get("profile", "—"),
                "commit": (prov.get("commit") or "—")[:10],
                "date": prov.get("date") or p.get("machine", {}).get("date", ""),
                "status": rep["status"],
            }
        )
    return rows


def _norm(name: str) -> str:
    """ "Fashion-MNIST", "fashion_mnist" -> "fashionmnist" (exact match: MNIST ≠ Fashion-MNIST)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def unavailable_section() -> str:
    lines = ["## What cannot be reproduced on this machine, and why\n"]
    names = {_norm(p.name) for p in DATASETS_DIR.iterdir()} if DATASETS_DIR.is_dir() else set()
    for name, used_by in PAPER_DATASETS.items():
        present = _norm(name.split(" ")[0]) in names
        state = "present" if present else "**not on the machine** (no internet to fetch it)"
        lines.append(f"- {name}: {state}; used by {used_by}.")
    weights = os.environ.get("OTGEN_INCEPTION_WEIGHTS")
    lines.append(
        "- Inception-v3 FID weights (pt_inception-2015-12-05): "
        + (
            "given by OTGEN_INCEPTION_WEIGHTS."
            if weights
            else "**absent** (cannot be "
            "downloaded here), so no FID/IS comparable to the papers' numbers; image claims are "
            "tested with the pinned Fashion-MNIST extractor (FID-fmnist-net) instead."
        )
    )
    lines.append(
        "\nThe published tables on those datasets are therefore quoted, never re-measured; "
        "their claims are tested on Fashion-MNIST analogues (issue 16) and listed above as "
        "separate rows.\n"
    )
    return "\n".join(lines)


def render(reports: list[dict[str, Any]]) -> str:
    claims = claim_rows(reports)
    counts: dict[str, int] = {}
    for r in claims:
        v = r["verdict"].split(" (")[0].split(" —")[0]
        counts[v] = counts.get(v, 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    stale = sum(not r["status"].startswith("ok") for r in reports)
    cols = ["paper", "claim", "paper's value", "otgen", "seeds", "budget", "verdict", "report"]
    return (
        "# Results summary\n\nWritten by `python benchmarks/summarize.py` from the reports' "
        "JSON (claims and provenance) and the claims catalogue `otgen.utils.claims.CATALOG`. "
        "A verdict other than *untested* needs a converged model (the last three evaluations "
        "of its metric agree pairwise within their standard errors and the last six show no "
        "least-squares trend) and at least two training seeds; a stale report's verdicts "
        "count as untested.\n\n"
        f"## Claims of the five papers\n\n{len(claims)} claims: {tally}.\n\n"
        + markdown_table(claims, cols)
        + "\n"
        + unavailable_section()
        + f"\n## Reports\n\n{len(reports)} reports, {stale} stale (no provenance, a commit "
        "outside the history, or a training curve counted as converged that today's stop rule "
        "rejects: regenerate them with the current code).\n\n"
        + markdown_table(
            index_rows(reports), ["report", "command", "profile", "commit", "date", "status"]
        )
    )


def main() -> None:
    reports = load_reports()
    write_text(RESULTS / "SUMMARY.md", render(reports))
    print(f"summarised {len(reports)} reports in {RESULTS / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
