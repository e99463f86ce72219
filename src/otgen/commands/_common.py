"""Flags shared by several subcommands, so they are spelled the same everywhere."""

from __future__ import annotations

import argparse


def add_device_seed(parser: argparse.ArgumentParser, *, seed: int = 0) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")


def add_allow_change(parser: argparse.ArgumentParser) -> None:
    """``--allow-change KEY`` (repeatable): config keys a resumed run may change."""
    parser.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="KEY",
        help="accept a config key (e.g. steps, method.lr) that differs from the checkpoint's",
    )
