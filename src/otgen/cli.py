"""``otgen`` command line: ``otgen train | sample | resume | eval | refine | reproduce | ...``.

Each subcommand lives in its own module under ``otgen/commands/`` and exposes::

    HELP: str                                   # one line for ``otgen --help``
    def add_arguments(parser) -> None           # its flags
    def run(args) -> int | None                 # its work; return value = exit code

:data:`COMMANDS` lists them (command name -> module); a command is added there. Bad input
(:class:`otgen.errors.OTGenError`) prints one line ``otgen: error: ...`` and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otgen import __version__
from otgen.errors import OTGenError

COMMANDS: dict[str, str] = {
    "eval": "otgen.commands.eval",
    "features": "otgen.commands.features",
    "refine": "otgen.commands.refine",
    "reproduce": "otgen.commands.reproduce",
    "resume": "otgen.commands.resume",
    "sample": "otgen.commands.sample",
    "train": "otgen.commands.train",
}


def _command_modules() -> dict[str, object]:
    return {name: importlib.import_module(module) for name, module in COMMANDS.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otgen", description="Generative models built on optimal transport."
    )
    parser.add_argument("--version", action="version", version=f"otgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _command_modules().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code = args._run(args)
    except OTGenError as exc:
        print(f"otgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("otgen: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
