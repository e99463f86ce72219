"""``otgen sample --run DIR [--n N] [--out FILE.png|.npy]``: draw samples from a trained run.

PNG: an image grid for image data, a scatter plot (with real points) for 2D data; ``.npy``:
the raw samples array (N, ...). The generator's EMA weights are used when the run has them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from otgen.commands._common import add_device_seed
from otgen.errors import OTGenError

HELP = "draw samples from a trained run (PNG grid / 2D scatter, or .npy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", default=None, help="output .png or .npy (default DIR/samples.png)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw (not EMA) generator")
    add_device_seed(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from otgen.engine import load_run
    from otgen.engine.rundir import check_outputs
    from otgen.utils.checks import check_int, check_output_path
    from otgen.viz.samples import save_samples

    n = check_int(args.n, "--n")
    out = Path(args.out) if args.out else Path(args.run) / "samples.png"
    if out.suffix.lower() not in (".png", ".npy"):
        raise OTGenError(f"--out must end in .png or .npy, got {str(out)!r}")
    check_output_path(out, "--out")
    check_outputs([out], args.run)
    method, config = load_run(args.run, device=args.device, ema=not args.no_ema)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        samples = method.sample(n)
    real = None
    if samples.ndim == 2 and samples.shape[1] == 2 and out.suffix.lower() == ".png":
        real = _real_points(config, n)
    save_samples(samples, out, real=real, title=f"{config.method}: {n} samples")
    print(f"wrote {n} samples to {out}")
    return 0


def _real_points(config, n: int):
    """Real 2D points to draw beside the samples, when the data set can be loaded."""
    try:
        from otgen.engine.data import load_data

        return load_data(config).x[: max(n, 1000)]
    except OTGenError:
        return None
