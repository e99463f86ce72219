import subprocess
import sys

from otgen.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "reproduce" in out


def test_unknown_experiment_is_one_line_exit_2(capsys):
    assert main(["reproduce", "no-such-experiment"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error: unknown experiment")


def test_python_dash_m_works():
    proc = subprocess.run(
        [sys.executable, "-m", "otgen", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("otgen ")
