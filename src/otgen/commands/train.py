"""``otgen train CONFIG_OR_METHOD --data NAME --out DIR [overrides]``: train a method.

The first argument is a config file (``.yaml``/``.yml``/``.toml``/``.json``) or a method name.
Every engine config key has a flag generated from the dataclasses of ``otgen.engine.config``
(``steps`` -> ``--steps``, ``ema.decay`` -> ``--ema-decay``, ``data.name`` -> ``--data``), and
any key, method hyper-parameters included, can be set with ``--set KEY=VALUE``
(``--set method.eps=0.5``). Precedence: defaults < config file < flags < ``--set``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from otgen.commands._common import add_allow_change
from otgen.errors import OTGenError

HELP = "train a method (config file or method name; flags and --set KEY=VALUE override)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from otgen.engine.config import cli_flags

    parser.add_argument("config", metavar="CONFIG_OR_METHOD", help="config file or method name")
    for flag in cli_flags():
        parser.add_argument(
            flag.flag,
            dest=f"cfg:{flag.key}",
            default=None,
            metavar=flag.key.split(".")[-1].upper(),
            help=flag.help,
        )
    parser.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set method.eps=0.5 --set data.n=500",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint (start it if none)",
    )
    add_allow_change(parser)  # with --resume: e.g. --steps 2000 --allow-change steps
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train in an --out that holds files but no run (files a run writes there are "
        "renamed NAME.N first; nothing is deleted; a run is never overwritten)",
    )


def build_config(args: argparse.Namespace) -> Any:
    """The validated TrainConfig described by the command line."""
    from otgen.engine.config import (
        CONFIG_SUFFIXES,
        apply_override,
        config_from_dict,
        load_config_file,
        parse_override,
    )

    source = args.config
    if Path(source).suffix in CONFIG_SUFFIXES or Path(source).is_file():
        raw = load_config_file(source)
    else:
        raw = {"method": source}
    overrides = []
    for key, value in vars(args).items():
        if key.startswith("cfg:") and value is not None:
            overrides.append(parse_override(f"{key[4:]}={value}"))
    overrides += [parse_override(text) for text in args.overrides]
    for key, value in overrides:
        raw = apply_override(raw, key, value)
    return config_from_dict(raw)


def run(args: argparse.Namespace) -> int:
    from otgen.engine import train

    config = build_config(args)
    if not config.out:
        raise OTGenError("no output directory: give --out DIR (or out: in the config file)")
    if args.allow_change and not args.resume:
        raise OTGenError("--allow-change only applies to --resume")
    run_dir = train(
        config, resume=args.resume, overwrite=args.overwrite, allow_changes=args.allow_change
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        print(f"trained {config.method}: run in {run_dir}")
    return 0
