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
from dataclasses import asdict
from pathlib import Path

from otgen.commands._common import add_device_seed
from otgen.errors import DataNotFoundError, OTGenError

HELP = "score generated samples: FID, IS, KID, PRD, P/R/D/C, class coverage (JSON + plots)"

DEFAULT_METRICS = ("fid", "is", "kid", "prd", "prdc", "coverage")
EXTRA_METRICS = ("emd", "modes")
RUN_DEFAULT_N = 10_000
IDENTITY = "identity"
_AUTO_EXTRACTORS = {"fashion-mnist": "fmnist-net", "mnist": "fmnist-net", "digits": "digits-net"}


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
    from otgen.utils.checks import check_int, check_output_path

    check_output_path(args.out, "--out", directory=True)
    seed = check_int(args.seed, "--seed", minimum=0)
    n = None if args.n is None else check_int(args.n, "--n")
    requested = _parse_metrics(args.metrics)
    samples, data_name, image_size = _samples(args, n, seed)
    real = _reference(data_name, samples, seed, image_size)
    extractor = _extractor(args.extractor, data_name, real, args.device)
    metrics, skipped = _applicable(requested, extractor, real, explicit=args.metrics is not None)

    bs = check_int(args.batch_size, "--batch-size")
    feats_fake = extractor.features(samples, bs)
    feats_real = extractor.features(real.x, bs)
    logits_fake = extractor.logits(samples, bs) if {"is", "coverage"} & set(metrics) else None

    out = Path(args.out)
    scores, details, figures = _compute(
        metrics, feats_real, feats_fake, logits_fake, real, samples, extractor, seed, out
    )
    from otgen.utils.report import write_report

    inputs = {
        "samples": args.samples,
        "run": args.run,
        "data": data_name,
        "split": "test",
        "n_generated": int(samples.shape[0]),
        "n_real": int(real.x.shape[0]),
        "seed": seed,
        "metrics": list(metrics),
        "skipped": skipped,
    }
    rows = [{"metric": k, "value": v} for k, v in scores.items()]
    write_report(
        out,
        "metrics",
        title=f"Evaluation of {args.samples or args.run} against {data_name} (test)",
        rows=rows,
        data={
            "scores": scores,
            "extractor": extractor.describe(),
            "inputs": inputs,
            "details": details,
        },
        notes="\n".join(f"- {m} skipped: {why}" for m, why in skipped.items()),
        command=_command_line(args),
        figures=figures,
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

    if args.samples:
        x = load_samples(args.samples)
        if n is not None:
            if n > len(x):
                raise OTGenError(f"--n {n} exceeds the {len(x)} samples in {args.samples}")
            x = x[torch.as_tensor(_permutation(len(x), seed)[:n])]
        if not args.data:
            raise OTGenError("--data is required with --samples (the reference dataset)")
        return x, args.data, None
    try:
        from otgen.engine import load_run
    except ImportError as exc:
        raise OTGenError(f"--run needs the training engine ({exc})") from None
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


def load_samples(path: str | Path):
    """Samples from ``.npy`` or ``.npz`` (key ``samples``, ``x`` or the only array) as float32.

    Points ``(N, d)``, grayscale ``(N, H, W)`` or images ``(N, C, H, W)`` in ``[-1, 1]``;
    ``uint8`` arrays are taken as pixels in 0..255 and rescaled.
    """
    import numpy as np
    import torch

    from otgen.data.images import load_numpy

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"samples file not found: {path}")
    loaded = load_numpy(path, "samples file")
    if isinstance(loaded, np.ndarray):
        arr = loaded
    else:  # an .npz archive
        key = next((k for k in ("samples", "x") if k in loaded), None)
        if key is None and len(loaded) != 1:
            raise OTGenError(f"{path}: name the samples array 'samples' (arrays: {list(loaded)})")
        arr = loaded[key or next(iter(loaded))]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(arr.dtype, np.floating) or arr.ndim not in (2, 3, 4) or len(arr) == 0:
        raise OTGenError(
            f"{path}: expected float samples (N, d), (N, H, W) or (N, C, H, W), "
            f"got {arr.dtype} {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise OTGenError(f"{path}: samples contain NaN or Inf values")
    x = torch.as_tensor(arr, dtype=torch.float32)
    return x[:, None] if x.ndim == 3 else x


def _permutation(n: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).permutation(n)


def _reference(name: str, samples, seed: int, image_size: int | None):
    """The test split of ``name``, matched to the samples' shape and subsampled to their number."""
    import torch

    from otgen.data import Dataset, load
    from otgen.data.toy import TOY_DATASETS

    m = samples.shape[0]
    if name in TOY_DATASETS:  # toys draw an independent test set of any size
        data = load(name, split="test", n=m, seed=seed)
    else:
        data = load(name, split="test")
        size = image_size or (samples.shape[-1] if samples.ndim == 4 else None)
        if (
            size is not None
            and samples.shape[-2] == size
            and tuple(data.x.shape[-2:]) != (size, size)
        ):
            data = load(name, split="test", image_size=size)  # e.g. 28x28 data, 32x32 DCGAN
    if tuple(data.x.shape[1:]) != tuple(samples.shape[1:]):
        raise OTGenError(
            f"samples have shape {tuple(samples.shape[1:])} but {name} test data "
            f"{tuple(data.x.shape[1:])}"
        )
    if len(data.x) > m:
        keep = torch.as_tensor(_permutation(len(data.x), seed)[:m])
        y = data.y[keep] if data.y is not None else None
        data = Dataset(data.x[keep], y, data.spec, data.name, getattr(data, "classes", None))
    return data


# -- extractor ----------------------------------------------------------------------------------
class _Extractor:
    """Uniform view of a registered extractor or the identity map (flattened inputs)."""

    def __init__(self, ext, name: str, layer: str):
        self.ext, self.name, self.layer = ext, name, layer

    @property
    def has_logits(self) -> bool:
        return self.ext is not None and getattr(
            self.ext, "is_classifier", hasattr(self.ext, "logits")
        )

    def features(self, x, batch_size: int):
        if self.ext is None:
            return x.reshape(x.shape[0], -1).double()
        return self.ext(x, batch_size=batch_size)

    def logits(self, x, batch_size: int):
        return self.ext.logits(x, batch_size=batch_size)

    def describe(self) -> dict:
        info = {"name": self.name, "layer": self.layer}
        if self.ext is not None:
            info["weights_sha256"] = getattr(self.ext, "weights_sha256", None)
            if hasattr(self.ext, "label"):
                info["label"] = self.ext.label()
        return info


def _extractor(name: str, data_name: str, real, device: str) -> _Extractor:
    if name == "auto":
        if real.x.ndim != 4:
            name = IDENTITY
        else:
            name = _AUTO_EXTRACTORS.get(data_name.lower(), "inception-v3")
    if name in (IDENTITY, "pixels"):
        return _Extractor(None, IDENTITY, "pixels" if real.x.ndim == 4 else "points")
    from otgen.metrics.features import get_extractor

    ext = get_extractor(name, device=device)
    return _Extractor(ext, ext.name, ext.layer)


def _applicable(requested, extractor: _Extractor, real, *, explicit: bool):
    """Metrics to run and, for the default list, why the others were skipped."""
    reasons = {}
    for m in requested:
        if m in ("is", "coverage") and not extractor.has_logits:
            reasons[m] = f"extractor {extractor.name!r} has no classifier logits"
        elif m == "coverage" and real.y is None:
            reasons[m] = f"dataset {real.name!r} has no labels"
        elif m == "modes" and real.x.ndim != 2:
            reasons[m] = "mode metrics are defined for the 2D toy mixtures"
    if explicit and reasons:
        m, why = next(iter(reasons.items()))
        raise OTGenError(f"metric {m!r} does not apply: {why}")
    return tuple(m for m in requested if m not in reasons), reasons


# -- scores -------------------------------------------------------------------------------------
def _compute(metrics, feats_real, feats_fake, logits_fake, real, samples, extractor, seed, out):
    tag = extractor.name
    scores: dict = {}
    details: dict = {}
    figures: list[Path] = []
    if "fid" in metrics:
        from otgen.metrics.fid import fid

        scores[f"FID-{tag}"] = fid(feats_real, feats_fake)
    if "is" in metrics:
        from otgen.metrics.inception_score import inception_score

        res = inception_score(logits_fake)
        scores[f"IS-{tag}"], scores[f"IS-{tag}-std"] = res.mean, res.std
    if "kid" in metrics:
        from otgen.metrics.kid import kid

        res = kid(feats_real, feats_fake, seed=seed)
        scores[f"KID-{tag}"], scores[f"KID-{tag}-std"] = res.mean, res.std
        details["kid"] = {"subsets": res.subsets, "subset_size": res.subset_size}
    if "prd" in metrics:
        from otgen.metrics.prd import plot_prd, prd

        res = prd(feats_fake, feats_real, seed=seed)
        scores[f"PRD-F8-{tag}"], scores[f"PRD-F1/8-{tag}"] = res.f_beta, res.f_beta_inv
        figures.append(plot_prd({"samples": res}, out / "prd.png", title=f"PRD ({tag})"))
    if "prdc" in metrics:
        from otgen.metrics.prdc import prdc

        res = prdc(feats_real, feats_fake)
        for field in ("precision", "recall", "density", "coverage"):
            scores[f"{field}-{tag}"] = getattr(res, field)
        details["prdc"] = {"k": res.k}
    if "coverage" in metrics:
        from otgen.metrics.coverage import class_coverage, plot_class_coverage

        res = class_coverage(logits_fake, real.y)
        scores[f"classes-covered-{tag}"] = res.classes_covered
        scores[f"class-KL-{tag}"] = res.reverse_kl
        details["coverage"] = asdict(res)
        figures.append(plot_class_coverage(res, out / "coverage.png", title=f"classes ({tag})"))
    if "emd" in metrics:
        from otgen.metrics.emd import emd_distance

        try:
            scores[f"EMD-{tag}"] = emd_distance(feats_real, feats_fake)
        except ImportError as exc:  # the exact solver lives in otgen.ot.exact
            raise OTGenError(f"emd needs the exact OT solver ({exc})") from None
    if "modes" in metrics:
        from otgen.metrics.modes import mode_metrics

        res = mode_metrics(samples, real.name)
        scores.update(
            {"modes": res.modes, "high-quality": res.high_quality, "modes-KL": res.reverse_kl}
        )
        details["modes"] = asdict(res)
    return scores, details, figures
