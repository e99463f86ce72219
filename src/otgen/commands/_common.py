"""Flags shared by several subcommands, so they are spelled the same everywhere."""

from __future__ import annotations

import argparse


def add_device_seed(parser: argparse.ArgumentParser, *, seed: int = 0) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
