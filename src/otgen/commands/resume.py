"""``otgen resume --run DIR``: continue a run from its newest checkpoint."""

from __future__ import annotations

import argparse

from otgen.commands._common import add_allow_change

HELP = "continue a training run from its newest checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or auto (default: the run's)"
    )
    add_allow_change(parser)


def run(args: argparse.Namespace) -> int:
    from otgen.engine import resume

    run_dir = resume(args.run, device=args.device, allow_changes=args.allow_change)
    print(f"resumed run in {run_dir}")
    return 0
