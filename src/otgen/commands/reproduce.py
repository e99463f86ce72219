"""``otgen reproduce NAME``: re-run one of the papers' tables or figures."""

from __future__ import annotations

import argparse

from otgen.commands._common import add_device_seed
from otgen.errors import OTGenError

HELP = "reproduce a paper's table or figure (JSON + Markdown + PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from otgen.reproduce import ALL_ORDER, PROFILES, available

    parser.add_argument(
        "name",
        nargs="?",
        help="experiment: " + ", ".join(available()) + "; or 'all' (" + ", ".join(ALL_ORDER)
        + ", in that order, resuming a cut-off run)",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list experiments and exit")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="budget: quick (minutes), cpu (what fits this CPU), paper (the paper's budget)",
    )
    parser.add_argument("--quick", action="store_true", help="alias of --profile quick")
    parser.add_argument(
        "--status",
        action="store_true",
        help="show what the image runs under --out have trained so far (steps, metric, steady, "
        "whether saved by the same training code, checkpoint present); trains nothing",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default benchmarks/results/<name>; for 'all' the parent folder)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train the experiment's independent runs (models x seeds) in this many processes, "
        "one thread each, before writing the report (image experiments; default 1)",
    )
    add_device_seed(parser)


def run(args: argparse.Namespace) -> int:
    from otgen.reproduce import available, run_all, run_experiment

    if args.list or not args.name:
        for name, doc in available().items():
            print(f"{name:24s} {doc}")
        return 0 if args.list else 2
    if args.quick and args.profile not in (None, "quick"):
        raise OTGenError(f"--quick contradicts --profile {args.profile}")
    profile = "quick" if args.quick else (args.profile or "cpu")
    if args.jobs < 1:
        raise OTGenError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.jobs != 1 and args.name == "all":
        raise OTGenError("--jobs is for one image experiment, not 'all'")
    if args.status:
        from otgen.reproduce.status import status_table

        if args.name not in available():
            raise OTGenError(f"--status needs one experiment, one of: {', '.join(available())}")
        print(status_table(args.out or f"benchmarks/results/{args.name}", profile))
        return 0
    if args.name == "all":
        out = args.out or "benchmarks/results"
        summary = run_all(out, profile, args.seed, args.device)
    elif args.name not in available():
        raise OTGenError(
            f"unknown experiment {args.name!r}; choose one of: {', '.join(available())}, all"
        )
    else:
        out = args.out or f"benchmarks/results/{args.name}"
        summary = run_experiment(args.name, out, profile, args.seed, args.device, args.jobs)
    print(f"wrote results to {out}")
    for key, value in (summary or {}).items():
        print(f"  {key}: {value}")
    return 0
