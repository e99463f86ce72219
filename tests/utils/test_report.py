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


def test_layer_summary_lists_weighted_layers_in_call_order():
    import torch
    from torch import nn

    from otgen.utils.report import layer_summary

    class Net(nn.Module):  # registered out of call order, as the DCGAN generator is
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 1)
            self.norm = nn.BatchNorm1d(8)
            self.body = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 8))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.head(self.act(self.norm(self.body(x))))

    net = Net().train()
    text = layer_summary(net, torch.randn(2, 3))
    assert text == "Linear 3→8 SN, BN, Linear 8→1 (57 parameters)"
    assert net.training  # the summary's eval-mode pass leaves the mode as it was
    conv = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.ConvTranspose2d(4, 1, 4, 2, 1))
    assert layer_summary(conv, torch.randn(1, 1, 8, 8)).startswith("Conv 1→4 4×4/2, ConvT 4→1")


def test_method_nets_describes_each_net_and_never_raises():
    import torch
    from torch import nn

    from otgen.data.spec import DataSpec
    from otgen.methods import get_method
    from otgen.utils.report import method_nets

    spec = DataSpec((1, 28, 28), num_classes=10)
    cls = get_method("sngan")
    gan = cls(cls.Config(arch="dcgan", width=8, conditional=True), spec, torch.device("cpu"))
    nets = method_nets(gan)
    assert nets["G"].startswith("Linear 100→784") and "Embedding 10×16" in nets["G"]
    assert nets["D"].startswith("Conv 1→8 4×4/2 SN")
    gan.nets["X"] = nn.Linear(3, 1)  # reads neither latents nor images
    assert method_nets(gan)["X"].startswith("(no summary: TypeError")
