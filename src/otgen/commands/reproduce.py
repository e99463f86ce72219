"""``otgen reproduce NAME``: re-run one of the papers' tables or figures."""

from __future__ import annotations

import argparse

from otgen.commands._common import add_device_seed
from otgen.errors import OTGenError

HELP = "reproduce a paper's table or figure (JSON + Markdown + PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from otgen.reproduce import available

    parser.add_argument("name", nargs="?", help="experiment: " + ", ".join(available()))
    parser.add_argument("--list", action="store_true", help="list experiments and exit")
    parser.add_argument("--quick", action="store_true", help="short settings (minutes on CPU)")
    parser.add_argument(
        "--out", default=None, help="output folder (default benchmarks/results/<name>)"
    )
    add_device_seed(parser)


def run(args: argparse.Namespace) -> int:
    from otgen.reproduce import available, get

    if args.list or not args.name:
        for name, doc in available().items():
            print(f"{name:24s} {doc}")
        return 0 if args.list else 2
    if args.name not in available():
        raise OTGenError(
            f"unknown experiment {args.name!r}; choose one of: {', '.join(available())}"
        )
    out = args.out or f"benchmarks/results/{args.name}"
    summary = get(args.name)(out=out, quick=args.quick, seed=args.seed, device=args.device)
    print(f"wrote results to {out}")
    if summary:
        for key, value in summary.items():
            print(f"  {key}: {value}")
    return 0
