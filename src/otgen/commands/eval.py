"""``otgen eval``: offline, deterministic scores of generated samples against a test set.

    otgen eval --samples FILE.npy|npz [--data NAME] [--extractor auto|NAME|identity]
               [--metrics fid,is,kid,prd,prdc,coverage] [--n N] [--seed S] --out DIR
    otgen eval --run DIR [--n N] ... --out DIR          # samples drawn from a trained run

Writes ``DIR/metrics.json`` (scores, labelled by extractor: ``FID-fmnist-net``; the extractor's
name, layer and weights hash; every setting), ``DIR/metrics.md`` and plots (``prd.png``,
``coverage.png``). The real set is the data's *test* split (``otgen.data.load(NAME,
split="test")``), subsampled to the number of generated samples with the seed. Same inputs and
seed give identical numbers.

Extractors: ``auto`` picks ``identity`` for 2D points, ``fmnist-net`` for (Fashion-)MNIST,
``digits-net`` for digits and ``inception-v3`` otherwise; ``identity`` uses the flattened
samples themselves (pixels or points). Without ``--metrics`` every metric that applies is
computed (IS and coverage need a classifier; coverage needs labelled data); metrics named
explicitly must apply. ``emd`` (exact earth mover's distance on the features) and ``modes``
(PacGAN mode metrics, 2D toys) are available on request.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from otgen.commands._common import add_device_seed
from otgen.errors import OTGenError
from otgen.metrics.evaluate import DEFAULT_METRICS, EXTRA_METRICS

HELP = "score generated samples: FID, IS, KID, PRD, P/R/D/C, class coverage (JSON + plots)"

RUN_DEFAULT_N = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", metavar="FILE", help="generated samples, .npy or .npz (N, ...)")
    src.add_argument("--run", metavar="DIR", help="trained run to draw samples from")
    parser.add_argument("--data", help="dataset whose test split is the reference (default: run's)")
    parser.add_argument(
        "--extractor", default="auto", help="feature extractor: auto (default), identity or a name"
    )
    parser.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated, from {','.join(DEFAULT_METRICS + EXTRA_METRICS)} "
        "(default: all of the first six that apply)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"generated samples (default all; {RUN_DEFAULT_N} for --run)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="extractor batch size")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_device_seed(parser)


def run(args: argparse.Namespace) -> int:
    from otgen.engine.rundir import check_outputs
    from otgen.metrics.evaluate import Evaluator, reference_set
    from otgen.utils.checks import check_int, check_output_path
    from otgen.utils.report import write_report

    check_output_path(args.out, "--out", directory=True)
    out = Path(args.out)
    check_outputs([out, out / "metrics.json", out / "metrics.md"], args.run)
    seed = check_int(args.seed, "--seed", minimum=0)
    n = None if args.n is None else check_int(args.n, "--n")
    requested = _parse_metrics(args.metrics)
    samples, data_name, image_size = _samples(args, n, seed)
    real = reference_set(data_name, samples, seed, image_size)
    bs = check_int(args.batch_size, "--batch-size")
    evaluator = Evaluator(real, args.extractor, device=args.device, batch_size=bs)
    metrics = requested if args.metrics is not None else None
    report = evaluator(samples, metrics, seed=seed, figures_dir=out)
    scores = report.scores
    inputs = {
        "samples": args.samples,
        "run": args.run,
        "data": data_name,
        "split": "test",
        "n_generated": int(samples.shape[0]),
        "n_real": int(real.x.shape[0]),
        "seed": seed,
        "metrics": [m for m in requested if m not in report.skipped],
        "skipped": report.skipped,
    }
    rows = [{"metric": k, "value": v} for k, v in scores.items()]
    write_report(
        out,
        "metrics",
        title=f"Evaluation of {args.samples or args.run} against {data_name} (test)",
        rows=rows,
        data={
            "scores": scores,
            "extractor": report.extractor,
            "inputs": inputs,
            "details": report.details,
        },
        notes="\n".join(f"- {m} skipped: {why}" for m, why in report.skipped.items()),
        command=_command_line(args),
        figures=list(report.figures),
    )
    for key, value in scores.items():
        print(f"{key:32s} {value:.6g}" if isinstance(value, float) else f"{key:32s} {value}")
    print(f"wrote {out / 'metrics.json'}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command, rebuilt from the parsed flags (so it is right however eval was called)."""
    parts = ["otgen eval"]
    for flag in ("samples", "run", "data", "extractor", "metrics", "n", "seed", "out"):
        value = getattr(args, flag)
        if value is not None:
            parts.append(f"--{flag} {value}")
    return " ".join(parts)


# -- inputs -------------------------------------------------------------------------------------
def _parse_metrics(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_METRICS
    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    known = DEFAULT_METRICS + EXTRA_METRICS
    unknown = [m for m in names if m not in known]
    if not names or unknown:
        raise OTGenError(
            f"unknown --metrics {', '.join(unknown) or text!r}; choose from {', '.join(known)}"
        )
    return names


def _samples(args: argparse.Namespace, n: int | None, seed: int):
    """Generated samples (float32 tensor), the reference data name and the run's image size."""
    import torch

    from otgen.metrics.evaluate import load_samples, permutation

    if args.samples:
        x = load_samples(args.samples)
        if n is not None:
            if n > len(x):
                raise OTGenError(f"--n {n} exceeds the {len(x)} samples in {args.samples}")
            x = x[torch.as_tensor(permutation(len(x), seed)[:n])]
        if not args.data:
            raise OTGenError("--data is required with --samples (the reference dataset)")
        return x, args.data, None
    from otgen.engine import load_run

    method, config = load_run(args.run, device=args.device)
    n = n or RUN_DEFAULT_N
    devices = [method.device] if getattr(method.device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        x = method.sample(n).detach().cpu().float()
    data = args.data or getattr(getattr(config, "data", None), "name", None)
    if not data:
        raise OTGenError(f"{args.run}: the run does not name its dataset; pass --data")
    return x, data, getattr(config.data, "image_size", None)
