"""Opening a run directory never imports or executes code (issue #17, class 1).

A run's ``config.json`` names its method; names resolve only against ``otgen.methods.METHODS``.
Each case runs the real CLI in a fresh interpreter whose working directory is the run
directory (so a planted ``otgen_plugin.py`` there is importable) and checks: exit code 2, one
``otgen: error:`` line, no marker file written by the plant, and neither ``this`` nor
``otgen_plugin`` in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otgen.engine.config import config_from_dict

PLANT = """from pathlib import Path
Path(__file__).with_name("EXECUTED").write_text("plugin code ran")

class Method:
    pass
"""

DRIVER = """import json, sys
from otgen.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(m for m in ("this", "otgen_plugin")
                                              if m in sys.modules)}))
"""


def _run_dir(tmp_path: Path, method: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    good = config_from_dict({"method": "eotgm", "data": {"name": "gauss4"}, "steps": 1})
    record = {"config": {**good.to_dict(), "method": method, "params": {}},
              "spec": {"shape": [2], "num_classes": None, "value_range": [-1.0, 1.0]}}  # fmt: skip
    (run / "config.json").write_text(json.dumps(record))
    (run / "otgen_plugin.py").write_text(PLANT)
    (run / "checkpoints").mkdir()
    return run


@pytest.mark.parametrize(
    ("method", "command"),
    [("this:Nope", "sample"), ("otgen_plugin:Method", "eval"), ("otgen_plugin", "resume")],
)
def test_loading_a_run_imports_nothing(tmp_path, method, command):
    run = _run_dir(tmp_path, method)
    args = {
        "sample": ["sample", "--run", ".", "--n", "4", "--out", str(tmp_path / "s.npy")],
        "eval": ["eval", "--run", ".", "--n", "4", "--out", str(tmp_path / "ev")],
        "resume": ["resume", "--run", "."],
    }[command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=run, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 2, "modules": []}, (proc.stdout, proc.stderr)
    assert not (run / "EXECUTED").exists()
    assert "Zen of Python" not in proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error: "), proc.stderr
    assert "unknown method" in err[0]
