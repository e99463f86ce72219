"""Train an image model until its quality curve flattens (issue 16's ``--profile cpu``).

The rule, in the words of the issue: FID-fmnist-net is evaluated every ``eval_every`` steps on
a *fixed* set of ``n`` generated samples (the same latent draws every time, so differences
between evaluations are the model's, not the sampler's) against a fixed set of real images;
training stops when two consecutive evaluations agree within their standard errors
(:func:`otgen.utils.claims.check_convergence`), or at ``max_steps`` — the stated cap. Whether
the curve flattened is recorded either way; a model stopped by the cap is "not converged" and
claims that rest on it stay untested.

Standard error of one evaluation: the real features are fixed, so the noise of an FID estimate
is the finite generated set. It is measured by a bootstrap over the generated features
(``boot`` resamples with replacement) — the spread an independent draw of ``n`` samples from
the same generator would show.

Training goes through the engine in chunks: the run is trained to ``k·eval_every`` steps, then
resumed with ``steps`` extended (``allow_changes=("steps",)``), which continues bit for bit
(same optimizer and RNG state) as one long run would. Methods whose phase plan depends on the
total number of steps (AE-OT-GAN's AE/GAN split) must not be trained this way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.utils.claims import Convergence, check_convergence

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
    ``config``: further engine config keys (e.g. ``{"ema": {"decay": 0.999}}``)."""
    import shutil

    from otgen.engine.logging import read_metrics
    from otgen.engine.trainer import load_run, train

    if eval_every < 1 or max_steps < eval_every:
        raise OTGenError(f"need 1 <= eval_every <= max_steps (got {eval_every}, {max_steps})")
    if run_dir.exists():  # a re-run replaces its own earlier run folder
        shutil.rmtree(run_dir)
    config = {"method": method, "params": params, "batch_size": batch, "seed": seed,
              "device": str(device), "out": str(run_dir), "sample_every": 0,
              "log_every": max(1, eval_every // 10), "checkpoint_every": 0,
              "keep_checkpoints": 1, **(config or {})}  # fmt: skip
    steps, fids, ses, seconds = [], [], [], 0.0
    conv = check_convergence([], [], [])
    while not steps or steps[-1] < max_steps:
        target = min(max_steps, (steps[-1] if steps else 0) + eval_every)
        start = time.perf_counter()
        train({**config, "steps": target}, data, resume=bool(steps), allow_changes=("steps",))
        seconds += time.perf_counter() - start
        trained, _ = load_run(run_dir, device)
        fid, se = probe(trained.sample)
        steps.append(target), fids.append(fid), ses.append(se)
        conv = check_convergence(steps, fids, ses)
        if progress:
            progress(f"{method} seed {seed}: step {target}  FID {fid:.3f} ± {se:.3f}")
        if conv.converged and len(steps) >= min_evals:
            break
    if not conv.converged or len(steps) < min_evals:
        why = "" if conv.converged else f"; stopped at the cap of {max_steps} steps"
        if conv.converged:
            why = f"; fewer than {min_evals} evaluations"
        conv = Convergence(False, conv.evidence + why, conv.steps, conv.means, conv.ses)
    curve = Curve(tuple(steps), tuple(fids), tuple(ses), conv, seconds)
    return trained, read_metrics(run_dir), curve
