"""``otgen refine``: improve a trained GAN's samples with discriminator optimal transport (DOT).

    otgen refine --run runs/wgan-gauss25 --mode target --n 1000 --eval
    otgen refine --run runs/sngan-fmnist --mode latent --steps 20 --keff 1 --out refined.npy

Writes ``OUT`` (.npy, the refined samples), ``OUT`` with ``.png`` (before/after scatter or
image grids) and ``.json`` (settings, the K used and, with ``--eval``, metrics before and
after: EMD to real points for 2D data, FID/IS with a domain feature extractor for images).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.commands._common import add_device_seed
from otgen.errors import OTGenError
from otgen.utils.checks import check_int, check_output_path, check_positive

HELP = "refine a trained GAN's samples with discriminator optimal transport (DOT)"

# Per mode: (updates, optimiser) from the reference code (target: Adam 100; latent: SGD 20).
_DEFAULTS = {"target": (100, "adam"), "naive": (100, "adam"), "latent": (20, "sgd")}
_TARGET_CLIP_2D = (-2.0, 2.0)  # reference box for the 2D toys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a training run folder (otgen train)")
    parser.add_argument("--mode", default="latent", choices=("latent", "target", "naive"))
    parser.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    parser.add_argument("--steps", type=int, default=None, help="updates (100 target, 20 latent)")
    parser.add_argument("--lr", type=float, default=0.01, help="step size (default 0.01)")
    parser.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        default=None,
        help="adam (β = 0, 0.9) or sgd (default: adam target, sgd latent)",
    )
    parser.add_argument("--delta", type=float, default=1e-3, help="δ of ‖x − y + δ‖ (0.001)")
    parser.add_argument("--keff", default="auto", help="'auto' (eqs. 20/21/26) or a number")
    parser.add_argument(
        "--clip",
        default="auto",
        help="target box LO,HI, 'none', or auto (data range; [-2, 2] for 2D)",
    )
    parser.add_argument(
        "--projection",
        default="tangent",
        choices=("tangent", "reference", "none"),
        help="Gaussian-prior gradient projection (latent mode)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--out", default=None, help="output .npy (default RUN/refined-MODE.npy)")
    parser.add_argument("--eval", action="store_true", help="metrics before and after")
    parser.add_argument("--extractor", default="auto", help="feature extractor for image metrics")
    add_device_seed(parser)


def _keff(text: str) -> str | float:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise OTGenError(f"--keff must be 'auto' or a positive number, got {text!r}") from None
    return check_positive(value, "keff")


def _clip(text: str) -> tuple[float, float] | str | None:
    """``--clip``: None, "auto" (decided by the data once the run is loaded) or (lo, hi)."""
    if text in ("none", "auto"):
        return None if text == "none" else "auto"
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise OTGenError(f"--clip must be LO,HI, 'auto' or 'none', got {text!r}") from None
    if not lo < hi:
        raise OTGenError(f"--clip must be LO,HI with LO < HI, got {text!r}")
    return lo, hi


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """DOT options from the flags, validated before the (slow) run loading."""
    steps, optimizer = _DEFAULTS[args.mode]
    options: dict[str, Any] = dict(
        steps=check_int(steps if args.steps is None else args.steps, "steps", minimum=0),
        lr=check_positive(args.lr, "lr"),
        optimizer=args.optimizer or optimizer,
        delta=check_positive(args.delta, "delta"),
        batch_size=check_int(args.batch_size, "batch_size"),
    )
    if args.mode == "latent":
        options["projection"] = args.projection
    else:
        options["clip"] = _clip(args.clip)
    return options


def _load(run_dir: str, device: torch.device):
    from otgen import engine

    if not Path(run_dir).is_dir():
        raise OTGenError(f"--run {run_dir!r} is not a folder")
    return engine.load_run(run_dir, device=device)


def run(args: argparse.Namespace) -> int:
    from otgen.engine.rundir import check_outputs
    from otgen.methods.dot import GANPair, refine
    from otgen.utils.device import resolve_device
    from otgen.utils.io import write_json

    options = _options(args)
    keff = _keff(args.keff)
    n = check_int(args.n, "n")
    out = Path(args.out or Path(args.run) / f"refined-{args.mode}.npy").with_suffix(".npy")
    check_output_path(out, "--out")
    check_outputs([out.with_suffix(s) for s in (".npy", ".png", ".json")], args.run)
    device = resolve_device(args.device)
    method, cfg = _load(args.run, device)
    if options.get("clip") == "auto":
        spec = method.spec
        options["clip"] = tuple(spec.value_range) if spec.is_image else _TARGET_CLIP_2D
    pair = GANPair.from_method(method)
    res = refine(pair, n, args.mode, keff=keff, seed=args.seed, **options)

    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, res.x.cpu().numpy())
    figure = _figure(res, method.spec, out.with_suffix(".png"), args.mode)
    summary: dict[str, Any] = {
        "run": str(args.run),
        "mode": args.mode,
        "n": args.n,
        "K": res.K.unique().cpu().tolist() if res.K.numel() else [],
        "keff": args.keff,
        **{k: v for k, v in options.items() if k != "batch_size"},
        "mean_displacement": float(res.displacement.mean()),
        "samples": str(out),
        "figure": str(figure),
    }
    if args.eval:
        summary["metrics"] = _evaluate(res, cfg, method.spec, args, device)
    write_json(out.with_suffix(".json"), summary)
    print(f"wrote {out} and {figure}")
    for key, value in summary.get("metrics", {}).items():
        print(f"  {key}: {value}")
    return 0


def _figure(res, spec, path: Path, mode: str) -> Path:
    label = {"latent": "latent DOT", "target": "target DOT", "naive": "naive"}[mode]
    if spec.is_image:
        from otgen.viz.images import save_image_grid

        # Upper half: G's samples; lower half: the same samples after DOT (same positions).
        k = min(32, res.x.shape[0])
        both = torch.cat([res.x0[:k], res.x[:k]]).cpu()
        return save_image_grid(both, path, nrow=min(8, k), scale=2)
    from otgen.viz.points import plot_points

    return plot_points(res.x0.cpu(), res.x.cpu(), path, labels=("G", label), contours=False)


def _evaluate(res, cfg, spec, args, device) -> dict[str, Any]:
    """EMD to fresh real points (2D) or FID/IS with the data's extractor (images)."""
    from otgen.data import load
    from otgen.metrics.evaluate import Evaluator

    name = cfg.data.name
    if spec.is_image:
        real = load(name, split="test", image_size=cfg.data.image_size)
        ev, metrics = Evaluator(real, args.extractor, device=device), ("fid", "is")
    else:
        real = load(name, n=args.n, seed=args.seed + 7)
        ev, metrics = Evaluator(real, "identity", device=device), ("emd",)
    metrics = ev.applicable(metrics, explicit=False)[0]
    scores: dict[str, Any] = {}
    if spec.is_image:
        scores["extractor"] = ev.features.describe()["label"]
    for tag, x in (("before", res.x0), ("after", res.x)):
        scores.update({f"{k}_{tag}": v for k, v in ev(x, metrics).by_metric().items()})
    return scores
