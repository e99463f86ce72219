"""``otgen data fetch NAME [--root DIR] | list``: download known datasets, checked and cached."""

from __future__ import annotations

import argparse

from otgen.errors import OTGenError

HELP = "download a known dataset (checked, resumable, cached) or list the ones otgen can fetch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    fe = sub.add_parser("fetch", help="download, verify and cache a dataset")
    fe.add_argument("name", help="fashion-mnist, mnist, cifar10, svhn or stl10")
    fe.add_argument(
        "--root", default=None, help="destination root (default: $OTGEN_DATA or the otgen cache)"
    )
    fe.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("list", help="datasets otgen can fetch: size, licence, source")


def run(args: argparse.Namespace) -> int:
    from otgen.data import fetch

    if args.action == "fetch":
        folder = fetch.fetch_dataset(args.name, args.root, progress=not args.no_progress)
        print(f"{args.name}: files in {folder}")
        return 0
    if args.action == "list":
        for ds in fetch.DATASETS.values():
            print(f"{ds.name:14s} {fetch.format_size(ds.size):>9s}  {ds.description}")
            print(f"{'':14s} {'':9s}  licence: {ds.licence}")
            print(f"{'':14s} {'':9s}  from: {ds.homepage}; checks: {ds.checksum_source}")
        return 0
    raise OTGenError("choose an action: fetch or list")
