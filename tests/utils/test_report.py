"""Every report written through ``write_report`` carries its provenance and claims."""

from __future__ import annotations

import json
import subprocess
import sys

from otgen.utils.claims import check_convergence, make_claim
from otgen.utils.provenance import command_line, infer_profile, is_complete, repo_root
from otgen.utils.report import write_report


def _report(tmp_path, monkeypatch, argv, **kw):
    monkeypatch.setattr(sys, "argv", argv)
    js, md = write_report(tmp_path, "r", title="T", rows=[{"a": 1.0}], command="otgen x", **kw)
    return json.loads(js.read_text()), md.read_text()


def test_provenance_in_json_and_markdown(tmp_path, monkeypatch):
    argv = ["/usr/bin/otgen", "reproduce", "dot-2d", "--quick", "--out", "res dir"]
    payload, md = _report(tmp_path, monkeypatch, argv)
    prov = payload["provenance"]
    assert is_complete(prov)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert prov["commit"] == head
    assert isinstance(prov["dirty"], bool)
    # the full command line, --out included and shell-quoted
    assert prov["command_line"] == "otgen reproduce dot-2d --quick --out 'res dir'"
    assert prov["profile"] == "quick"
    assert prov["device"] == "cpu" and prov["torch_threads"] >= 1 and prov["wall_s"] >= 0
    assert head[:10] in md and "--out 'res dir'" in md and "**quick**" in md


def test_profile_and_device_can_be_set(tmp_path, monkeypatch):
    payload, _ = _report(tmp_path, monkeypatch, ["otgen", "reproduce", "x", "--quick"],
                          profile="paper", device="cuda (H100)", wall_s=12.5)  # fmt: skip
    prov = payload["provenance"]
    assert (prov["profile"], prov["device"], prov["wall_s"]) == ("paper", "cuda (H100)", 12.5)


def test_profile_inference():
    assert infer_profile(["otgen", "reproduce", "all", "--profile", "paper"]) == "paper"
    assert infer_profile(["otgen", "reproduce", "all", "--profile=cpu", "--quick"]) == "cpu"
    assert infer_profile(["otgen", "reproduce", "x", "--quick"]) == "quick"
    assert infer_profile(["python", "benchmarks/sinkhorn.py"]) == "cpu"


def test_command_line_forms():
    root = repo_root()
    assert command_line([str(root / "benchmarks" / "x.py"), "--n", "5"]) == (
        "python benchmarks/x.py --n 5"
    )
    assert command_line([str(root / "src/otgen/__main__.py"), "eval"]) == "python -m otgen eval"


def test_older_reports_are_incomplete():
    assert not is_complete(None)
    assert not is_complete({"date": "x"})


def test_claims_table_in_report(tmp_path, monkeypatch):
    conv = check_convergence([1, 2], [0.05, 0.051], [0.002, 0.002])
    claim = make_claim("dot-keff-gauss25", seed_values=[1.9, 2.1], convergence=conv,
                       holds=lambda m, se: abs(m - 1.98) <= 0.25 * 1.98, budget=0.2)  # fmt: skip
    payload, md = _report(tmp_path, monkeypatch, ["otgen"], claims=[claim])
    (stored,) = payload["claims"]
    assert stored["verdict"] == "holds" and stored["n_seeds"] == 2
    assert stored["ours"] == "2 ± 0.1" and stored["convergence"]["converged"] is True
    assert "## Claims" in md and "| DOT | K_eff of the trained critic, 25 gaussians |" in md
    assert "0.2×" in md and "| holds |" in md


def test_markdown_table_escapes_pipes_inside_cells():
    from otgen.utils.tables import markdown_table

    table = markdown_table([{"a": "|x − y| / y", "b": 1}])
    body = table.splitlines()[2]
    # an unescaped "|" would split the row into more cells than the header has
    assert body.replace("\\|", "").count("|") == table.splitlines()[0].count("|")
    assert "\\|x − y\\|" in body
