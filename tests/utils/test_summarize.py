"""SUMMARY.md lists every catalogued claim, with verdicts from reports and stale flags."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from otgen.utils.claims import CATALOG, check_convergence, check_steady, make_claim
from otgen.utils.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def _summarize():
    spec = importlib.util.spec_from_file_location("summarize", ROOT / "benchmarks/summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FLAT = check_steady(range(1, 7), [0.05, 0.051, 0.05, 0.049, 0.05, 0.05], [0.01] * 6)


def test_summary_table(tmp_path, monkeypatch):
    mod = _summarize()
    monkeypatch.setattr(sys, "argv", ["otgen", "reproduce", "dot-2d", "--out", str(tmp_path)])
    conv = FLAT
    claim = make_claim("dot-keff-gauss25", seed_values=[1.9, 2.0], holds=True, convergence=conv)
    write_report(tmp_path / "dot-2d", "dot_2d", title="new", rows=[{"a": 1}], claims=[claim])
    old = tmp_path / "old" / "old.json"  # written by code before provenance existed
    old.parent.mkdir()
    old.write_text(json.dumps({"title": "old", "command": "x", "rows": []}))

    reports = mod.load_reports(tmp_path)
    status = {r["payload"]["title"]: r["status"] for r in reports}
    assert status["new"].startswith("ok")
    assert status["old"].startswith("stale — regenerate")

    rows = mod.claim_rows(reports)
    assert len(rows) == len(CATALOG)  # every catalogued claim appears exactly once here
    by_claim = {r["claim"]: r for r in rows}
    keff = by_claim["K_eff of the trained critic, 25 gaussians"]
    assert (
        keff["verdict"] == "holds" and keff["seeds"] == "2" and "dot-2d/dot_2d.md" in keff["report"]
    )
    swiss = by_claim["K_eff of the trained critic, swiss roll"]
    assert swiss["verdict"] == "untested — no report"
    text = mod.render(reports)
    assert "stale — regenerate" in text and "cannot be reproduced" in text


def test_stale_verdict_is_marked(tmp_path, monkeypatch):
    mod = _summarize()
    monkeypatch.setattr(sys, "argv", ["otgen"])
    conv = FLAT
    claim = make_claim("dot-keff-gauss25", seed_values=[1.9, 2.0], holds=True, convergence=conv)
    js, _ = write_report(tmp_path / "r", "r", title="r", rows=[], claims=[claim])
    payload = json.loads(js.read_text())
    payload["provenance"]["commit"] = "0" * 40  # a commit this history does not contain
    js.write_text(json.dumps(payload))
    (row,) = [
        r
        for r in mod.claim_rows(mod.load_reports(tmp_path))
        if r["verdict"] != "untested — no report" and "not reproducible" not in r["verdict"]
    ]
    assert row["verdict"] == (
        "untested — stale — regenerate (commit not in history); the report said: holds"
    )


def test_a_curve_counted_converged_that_is_not_steady_makes_the_report_stale(tmp_path):
    mod = _summarize()
    conv = FLAT
    claim = make_claim("dot-keff-gauss25", seed_values=[1.9, 2.0], holds=True, convergence=conv)
    one_pair = {
        "steps": [1, 2, 3, 4, 5, 6],
        "fid": [108.9, 107.9, 108.6, 119.0, 107.6, 108.0],
        "se": [0.7, 0.7, 0.7, 0.7, 1.0, 0.6],
        "converged": True,
    }  # a fall, then one flat pair: counted converged before
    steady = {**one_pair, "fid": [108.9, 107.9, 108.6, 108.4, 107.6, 108.0]}
    write_report(tmp_path / "a", "a", title="a", rows=[], claims=[claim],
                 data={"runs": [{"curve": steady}]})  # fmt: skip
    write_report(tmp_path / "b", "b", title="b", rows=[], claims=[claim],
                 data={"runs": [{"curve": steady}, {"curve": one_pair}]})  # fmt: skip
    status = {r["payload"]["title"]: r["status"] for r in mod.load_reports(tmp_path)}
    assert status["a"].startswith("ok")
    assert status["b"].startswith("stale — regenerate (1 curve(s)")
    assert mod.unsteady_curves({"runs": [{"curve": one_pair}]}) == ["/runs[0]/curve"]


def test_a_claim_counted_converged_by_an_older_rule_makes_the_report_stale(tmp_path):
    # a 2D claim's convergence record (steps, means, ses) is checked like a training curve
    mod = _summarize()
    two_points = check_convergence([1, 2], [0.05, 0.05], [0.01, 0.01])  # the old rule
    assert FLAT.converged and two_points.converged
    for name, conv in (("flat", FLAT), ("old", two_points)):
        claim = make_claim("dot-keff-gauss25", seed_values=[1.9, 2.0], holds=True,
                           convergence=conv)  # fmt: skip
        write_report(tmp_path / name, name, title=name, rows=[], claims=[claim])
    status = {r["payload"]["title"]: r["status"] for r in mod.load_reports(tmp_path)}
    assert status["flat"].startswith("ok")
    assert status["old"].startswith("stale — regenerate (1 curve(s)")
