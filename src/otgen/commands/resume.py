"""``otgen resume --run DIR``: continue a run from its newest checkpoint."""

from __future__ import annotations

import argparse

HELP = "continue a training run from its newest checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or auto (default: the run's)"
    )
    parser.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="KEY",
        help="accept a config key (e.g. steps, method.lr) that differs from the checkpoint's",
    )


def run(args: argparse.Namespace) -> int:
    from otgen.engine import resume

    run_dir = resume(args.run, device=args.device, allow_changes=args.allow_change)
    print(f"resumed run in {run_dir}")
    return 0
