"""``otgen`` command line: ``otgen train | sample | resume | eval | refine | reproduce | ...``.

Each subcommand lives in its own module under ``otgen/commands/`` and exposes::

    HELP: str                                   # one line for ``otgen --help``
    def add_arguments(parser) -> None           # its flags
    def run(args) -> int | None                 # its work; return value = exit code

:data:`COMMANDS` lists them (command name -> module); a command is added there. Bad input
(:class:`otgen.errors.OTGenError`) prints one line ``otgen: error: ...`` and exits with 2. Any
other exception is a bug or an input nobody validated yet: it also becomes one line (naming the
command, exit 2), and ``otgen --debug COMMAND ...`` shows its traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otgen import __version__
from otgen.errors import OTGenError

COMMANDS: dict[str, str] = {
    "data": "otgen.commands.data",
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
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an unexpected error"
    )
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
        _error(str(exc))
        return 2
    except KeyboardInterrupt as exc:  # e.g. training says which checkpoint to resume from
        print(" ".join(f"otgen: interrupted; {exc}".split()).rstrip("; "), file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, read-only or vanished files: the OS said what
        if args.debug:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        _error(f"{args.command}: {exc.strerror or _describe(exc)}{where}")
        return 2
    except Exception as exc:  # the last line of defence: never a bare traceback
        if args.debug:
            raise
        _error(
            f"{args.command} failed: {_describe(exc)} (run `otgen --debug {args.command} ...` "
            "for the traceback)"
        )
        return 2
    return int(code or 0)


def _describe(exc: BaseException) -> str:
    """``TypeName: first line of the message`` -- one line whatever the exception holds."""
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _error(message: str) -> None:
    """Print ``otgen: error: MESSAGE`` on exactly one line of stderr."""
    one_line = " ".join(message.split()) or "unknown error"
    print(f"otgen: error: {one_line}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
