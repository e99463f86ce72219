"""Train an image model until its quality curve flattens (issue 16's ``--profile cpu``).

The rule, in the words of the issue: FID-fmnist-net is evaluated every ``eval_every`` steps on
a *fixed* set of ``n`` generated samples (the same latent draws every time, so differences
between evaluations are the model's, not the sampler's) against a fixed set of real images;
training stops when :func:`otgen.utils.claims.check_steady` passes, or at ``max_steps`` — the
stated cap. Its two parts (docs/convergence.md): the last three evaluations agree pairwise
within their standard errors (both consecutive pairs and the first with the last: one flat
pair is also what a curve pausing on its way down shows, and two flat pairs can hide a slow
drift), and the least-squares change over the last six evaluations lies within two standard
errors (three agreeing points can be a pause in a curve that is still falling; the noise is
the larger of the fit's residual spread and the evaluations' own errors, so a GAN's
oscillation is not read as a trend). Whether the curve flattened is recorded either way; a
model stopped by the cap is "not converged" and claims that rest on it stay untested.

Standard error of one evaluation: the real features are fixed, so the noise of an FID estimate
is the finite generated set. It is measured by a bootstrap over the generated features
(``boot`` resamples with replacement) — the spread an independent draw of ``n`` samples from
the same generator would show.

Training goes through the engine in chunks: the run is trained to ``k·eval_every`` steps, then
resumed with ``steps`` extended (``allow_changes=("steps",)``), which continues bit for bit
(same optimizer and RNG state) as one long run would. Methods whose phase plan depends on the
total number of steps (AE-OT-GAN's AE/GAN split) must not be trained this way.

Resumable: after every evaluation the curve so far is written (atomically) to
``run_dir/curve.json`` under a key of everything the numbers depend on — the engine config, the
evaluation interval, the probe's fingerprint, the training data's hash and a hash of the sources
training and evaluation run (not the reproduction scripts: a new cap or report keeps the
runs). Calling
:func:`train_until_flat` again with the same key continues from the last evaluation (a killed
paper-profile run loses at most one chunk), returns a finished run without training, and
extends a run stopped by its cap when ``max_steps`` has grown. Any other key, a run folder
without checkpoints, or a probe without a ``fingerprint`` (one that keeps state of its own, such
as images per evaluation) starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.utils.claims import Convergence, check_steady

BOOTSTRAP_SEED = 12_345  # the bootstrap's own generator: evaluations never touch global RNG


@dataclass(frozen=True)
class Curve:
    """FID over training of one model, and whether it flattened."""

    steps: tuple[int, ...]
    fids: tuple[float, ...]
    ses: tuple[float, ...]
    convergence: Convergence
    seconds: float  # training wall time (evaluations excluded)

    @property
    def converged(self) -> bool:
        return self.convergence.converged

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), "fid": list(self.fids), "se": list(self.ses),
                "converged": self.converged, "evidence": self.convergence.evidence,
                "train_seconds": round(self.seconds, 1)}  # fmt: skip


class FidProbe:
    """FID of a generator's fixed sample set against fixed real images, with a bootstrap s.e.

    ``sample(n) -> images`` is called under a forked RNG seeded with ``seed`` so every
    evaluation sees the same latent draws and the caller's RNG stream is untouched.
    """

    metric = "FID"  # the name progress lines print (another probe, e.g. an MSE, names its own)

    def __init__(
        self,
        real: torch.Tensor,
        *,
        extractor: str = "fmnist-net",
        n: int = 5000,
        seed: int = 0,
        boot: int = 20,
        device: str | torch.device = "cpu",
    ) -> None:
        from otgen.metrics.evaluate import Features

        if n < 2 or boot < 2:
            raise OTGenError(f"FidProbe needs n >= 2 and boot >= 2 (got n={n}, boot={boot})")
        self.features = Features(extractor, is_image=True, device=device)
        self.n, self.seed, self.boot = n, seed, boot
        with torch.no_grad():
            real_feats = self.features.features(real).double().cpu().numpy()
        from otgen.metrics.fid import feature_stats

        self.real_stats = feature_stats(real_feats)
        self.extractor = extractor

    @property
    def fingerprint(self) -> str:
        """Hash of everything an evaluation depends on besides the generator."""
        h = hashlib.sha256(f"{self.extractor}|{self.n}|{self.seed}|{self.boot}".encode())
        for stat in self.real_stats:
            h.update(np.ascontiguousarray(stat, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    def floor(self, real: torch.Tensor) -> tuple[float, float]:
        """(FID, s.e.) of ``n`` *other* real images: what a perfect generator would score at
        these sample sizes (the reference point of every curve). ``real`` must be disjoint from
        the probe's own real set, or the floor is biased towards zero."""
        if len(real) < self.n:
            raise OTGenError(f"the real-vs-real floor needs >= {self.n} images, got {len(real)}")
        return self(lambda k: real[:k])

    def samples(self, sample: Callable[[int], torch.Tensor]) -> torch.Tensor:
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(self.seed)
            return sample(self.n).detach().cpu()

    def __call__(self, sample: Callable[[int], torch.Tensor]) -> tuple[float, float]:
        """(FID, bootstrap standard error) of ``sample``'s fixed set."""
        from otgen.metrics.fid import feature_stats, fid_from_stats

        with torch.no_grad():
            feats = self.features.features(self.samples(sample)).double().cpu().numpy()
        value = fid_from_stats(*self.real_stats, *feature_stats(feats))
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        draws = [
            fid_from_stats(*self.real_stats, *feature_stats(feats[rng.integers(0, len(feats),
                                                                                len(feats))]))
            for _ in range(self.boot)
        ]  # fmt: skip
        return float(value), float(np.std(draws, ddof=1))


# What a trained curve depends on: the training code and the probe's metric code. The
# reproduction scripts (their caps, reports, figures), the CLI and plotting are left out, so that
# editing a report or raising a cap does not throw away hours of training; what those scripts
# feed into training (the engine config, the data) is keyed separately.
_TRAINING_SOURCES = ("engine", "methods", "nets", "ot", "data", "metrics", "utils", "errors.py",
                     "reproduce/_converge.py")  # fmt: skip
# ... less what only reads a finished curve: the stopping and verdict rules (a stricter rule
# continues a saved run along the same trajectory), the report writers, the post-training
# protocols (mixing ratio, probes)
_NOT_TRAINING = ("utils/claims.py", "utils/report.py", "utils/tables.py", "utils/provenance.py",
                 "metrics/protocols.py")  # fmt: skip


def training_sources() -> list[str]:
    """The source files (relative to the package) whose hash keys a saved curve."""
    root = Path(__file__).resolve().parents[1]
    files = []
    for part in _TRAINING_SOURCES:
        files += [root / part] if part.endswith(".py") else sorted((root / part).rglob("*.py"))
    names = [f.relative_to(root).as_posix() for f in files]
    return [name for name in names if name not in _NOT_TRAINING]


@cache
def _source_hash() -> str:
    """sha256 of :func:`training_sources`: a saved curve is only continued by the same code."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in training_sources():
        h.update(name.encode())
        h.update((root / name).read_bytes())
    return h.hexdigest()[:16]


def _trajectory_config(config: dict) -> dict:
    """The engine config less what cannot change the numbers: the run folder's path (a
    relative and an absolute ``--out`` name the same run) and the device's index (``cuda``
    and ``cuda:0``); the device type stays (CPU and CUDA kernels round differently)."""
    out = {k: v for k, v in config.items() if k != "out"}
    out["device"] = torch.device(config["device"]).type
    return out


def _code_hash(cls: type) -> str:
    """sha256 of a probe class's source: a probe defined in a reproduction script (which the
    source hash leaves out) still keys the values it computes."""
    import inspect

    try:
        text = inspect.getsource(cls)
    except (OSError, TypeError):  # defined where no source is kept (e.g. an interactive session)
        text = cls.__qualname__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_fingerprint(data) -> str:
    """sha256 of a dataset's images, labels and spec (a subset or another seed is another
    key)."""
    h = hashlib.sha256(repr(data.spec).encode())
    for tensor in (data.x, data.y):
        if tensor is not None:
            h.update(str((tensor.dtype, tuple(tensor.shape))).encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class _Progress:
    """The curve so far, as saved in ``run_dir/curve.json`` after every evaluation."""

    steps: list[int]
    fids: list[float]
    ses: list[float]
    seconds: float

    @classmethod
    def load(cls, path: Path, key: dict) -> _Progress | None:
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("key") != key:
            return None
        return cls(saved["steps"], saved["fid"], saved["se"], saved["train_seconds"])

    def save(self, path: Path, key: dict) -> None:
        from otgen.utils.io import atomic_write

        text = json.dumps({"key": key, "steps": self.steps, "fid": self.fids, "se": self.ses,
                           "train_seconds": self.seconds})  # fmt: skip
        atomic_write(path, lambda p: p.write_text(text))


def _has_checkpoint(run_dir: Path) -> bool:
    """A run folder we can continue (a caller may have deleted the weights to save space)."""
    from otgen.engine.checkpoint import list_checkpoints

    return run_dir.is_dir() and bool(list_checkpoints(run_dir / "checkpoints"))


def _finished(conv: Convergence, n_evals: int, min_evals: int, last: int, cap: int) -> bool:
    return (conv.converged and n_evals >= min_evals) or last >= cap


def train_until_flat(
    method: str,
    params: dict,
    data,
    *,
    probe: FidProbe,
    batch: int,
    seed: int,
    device,
    run_dir: Path,
    eval_every: int,
    max_steps: int,
    min_evals: int = 3,
    progress: Callable[[str], None] | None = print,
    config: dict | None = None,
):
    """Train ``method`` in chunks of ``eval_every`` steps until :class:`FidProbe`'s curve
    flattens (after at least ``min_evals`` evaluations) or ``max_steps``; returns the trained
    method (EMA generator if the run has one), its metric records and the :class:`Curve`.
    ``config``: further engine config keys (e.g. ``{"ema": {"decay": 0.999}}``). Resumes a
    matching earlier call from ``run_dir`` (module docstring)."""
    import shutil

    from otgen.engine.logging import read_metrics
    from otgen.engine.trainer import load_run, train

    if eval_every < 1 or max_steps < eval_every:
        raise OTGenError(f"need 1 <= eval_every <= max_steps (got {eval_every}, {max_steps})")
    config = {"method": method, "params": params, "batch_size": batch, "seed": seed,
              "device": str(device), "out": str(run_dir), "sample_every": 0,
              "log_every": max(1, eval_every // 10), "checkpoint_every": 0,
              "keep_checkpoints": 1, **(config or {})}  # fmt: skip
    # A probe without a fingerprint keeps state of its own (e.g. images per evaluation) that a
    # resumed call could not rebuild: such runs always start afresh.
    fingerprint = getattr(probe, "fingerprint", None)
    key = {"config": _trajectory_config(config), "eval_every": eval_every,
           "probe": fingerprint and f"{fingerprint}:{_code_hash(type(probe))}",
           "data": data_fingerprint(data), "source": _source_hash()}  # fmt: skip
    key = json.loads(json.dumps(key))  # as read back from disk (tuples become lists)
    state_path = run_dir / "curve.json"
    state = _Progress.load(state_path, key) if fingerprint and _has_checkpoint(run_dir) else None
    if state is None:
        if run_dir.exists():  # another key (or no curve yet): a run we cannot continue
            shutil.rmtree(run_dir)
        state = _Progress([], [], [], 0.0)
    elif progress:
        progress(f"{method} seed {seed}: resuming at step {state.steps[-1]} ({run_dir})")
    conv = check_steady(state.steps, state.fids, state.ses)
    trained = None
    metric = getattr(probe, "metric", FidProbe.metric)  # what progress lines call its value
    while not state.steps or not _finished(conv, len(state.steps), min_evals, state.steps[-1],
                                           max_steps):  # fmt: skip
        target = min(max_steps, (state.steps[-1] if state.steps else 0) + eval_every)
        start = time.perf_counter()
        train({**config, "steps": target}, data, resume=bool(state.steps),
              allow_changes=("steps",))  # fmt: skip
        state.seconds += time.perf_counter() - start
        trained, _ = load_run(run_dir, device)
        fid, se = probe(trained.sample)
        state.steps.append(target), state.fids.append(fid), state.ses.append(se)
        state.save(state_path, key)
        conv = check_steady(state.steps, state.fids, state.ses)
        if progress:
            progress(f"{method} seed {seed}: step {target}  {metric} {fid:.3f} ± {se:.3f}")
    if trained is None:  # resumed a finished run: nothing was trained or loaded above
        trained, _ = load_run(run_dir, device)
    if not conv.converged or len(state.steps) < min_evals:
        why = "" if conv.converged else f"; stopped at the cap of {state.steps[-1]} steps"
        if conv.converged:
            why = f"; fewer than {min_evals} evaluations"
        conv = Convergence(False, conv.evidence + why, conv.steps, conv.means, conv.ses)
    conv = note_rise(conv, state.steps, state.fids, state.ses)
    curve = Curve(tuple(state.steps), tuple(state.fids), tuple(state.ses), conv, state.seconds)
    return trained, read_metrics(run_dir), curve


def note_rise(conv: Convergence, steps, fids, ses) -> Convergence:
    """Say so in the evidence when the curve ended clearly above its best point.

    The steady rule only looks at the last three evaluations, so a GAN that degraded and then
    plateaued (a collapse) passes it; the reader must see that the model was better before."""
    best = int(np.argmin(fids))
    gap = fids[-1] - fids[best]
    if best == len(fids) - 1 or gap <= 2 * float(np.hypot(ses[best], ses[-1])):
        return conv
    why = (f"; it ended {gap:.3g} above its best ({fids[best]:.4g} at step {steps[best]}): "
           "the model degraded before the curve flattened")  # fmt: skip
    return Convergence(conv.converged, conv.evidence + why, conv.steps, conv.means, conv.ses)
