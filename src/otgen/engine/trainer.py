"""The training loop: data order, phases, logging, samples, checkpoints, EMA, resume, DDP.

One run (:func:`train`) is::

    seed everything -> build the method (its nets and optimisers) -> [restore a checkpoint]
    for each phase of method.phases(total_steps):
        method.begin_phase(name, whole train set)
        for each step of the phase:
            batch = the step's slice of a seeded per-epoch permutation (this rank's shard)
            logs = method.train_step(x, y, step);  EMA update;  metrics;  samples;  checkpoint

Reproducibility: the data order depends only on ``(seed, epoch, position)`` (:class:`BatchSampler`),
the method draws its noise from torch's global RNG, whose state (and python's and numpy's) is
saved in every checkpoint, and interval samples are drawn from a forked RNG so they never
disturb training. Hence a run resumed from any checkpoint ends with the same weights, bit for
bit on CPU, as an uninterrupted run. ``step`` passed to ``train_step`` is the global step
(0-based, counted across phases).

Around the loop: the data adapter and sampler live in :mod:`otgen.engine.data`, applying a
checkpoint's state tree to a method in :mod:`otgen.engine.state`, RNG capture in
:mod:`otgen.utils.seeding`, sample figures in :mod:`otgen.viz.samples`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from otgen.data.spec import DataSpec
from otgen.engine import distributed as D
from otgen.engine import rundir
from otgen.engine.checkpoint import check_resumable, load_checkpoint, save_checkpoint
from otgen.engine.config import (
    TrainConfig,
    config_from_dict,
    load_config_file,
    method_config,
    resolve_method,
)
from otgen.engine.data import BatchSampler, as_dataset, load_data
from otgen.engine.ema import EMA
from otgen.engine.logging import MetricMeter, RunLogger
from otgen.engine.rundir import SAMPLE_DIR, read_run
from otgen.engine.state import apply_state, extra_on
from otgen.errors import CheckpointError, Interrupted, NonFiniteError, OTGenError
from otgen.methods.base import Method, Phase
from otgen.utils.checks import check_batchnorm_batch
from otgen.utils.device import resolve_device
from otgen.utils.progress import progress
from otgen.utils.seeding import capture_rng, restore_rng, seed_everything
from otgen.viz.samples import save_samples

_SAMPLE_SEED = 20240601  # fixed noise for interval samples, so images are comparable over time


# -- the trainer --------------------------------------------------------------------------


def _phase_bounds(phases: list[Phase]) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for ph in phases:
        if not isinstance(ph, Phase) or ph.steps < 0:
            raise OTGenError(f"method returned an invalid phase {ph!r}")
        bounds.append((start, start + ph.steps))
        start += ph.steps
    if len({ph.name for ph in phases}) != len(phases):
        raise OTGenError("method phases must have distinct names")
    return bounds


class Trainer:
    """Builds a method for a config and runs (or resumes) its training; rank 0 writes."""

    allow_changes: tuple[str, ...] = ()  # config keys a resume may change (check_resumable)

    def __init__(
        self,
        config: TrainConfig,
        data: Any = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.config = config.validate_for_run()
        self.run_dir = Path(config.out)
        # rank 0 writes, so it alone locks the directory (for as long as this trainer lives)
        self._lock = rundir.claim(
            self.run_dir, resume=resume, overwrite=overwrite, lock=D.env_info().is_main
        )
        self._writing = False  # until run() writes, a failure leaves the directory untouched
        try:
            self._setup(config, data, resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, config: TrainConfig, data: Any, resume: bool) -> None:
        device = resolve_device(config.device)
        self.info, self.device = D.init_distributed(device)
        D.barrier(self.info)  # every rank has checked the run dir before rank 0 writes to it
        self.data = as_dataset(data) if data is not None else load_data(config)
        self.spec = self.data.spec
        self.sampler = BatchSampler(len(self.data.x), config.batch_size, config.seed, self.info)
        self.x, self.y = self._data_on_device()

        seed_everything(config.seed)
        self.method: Method = build_method(config, self.spec, self.device)
        # config.json records what the run trains with: the method's resolved settings
        # (e.g. EOTGM's latent_dim/optimizer/lr chosen for the data), never None.
        check_batchnorm_batch(self.method.nets, config.batch_size // self.info.world_size)
        self.config = config = resolved_config(config, self.method)
        D.setup_method(self.method, self.info, config.distributed)
        if self.info.rank > 0:  # ranks draw different noise; rank 0 keeps the 1-process stream
            seed_everything(config.seed + 1_000_003 * self.info.rank)
        self.ema = self._make_ema()

        total = (
            config.steps
            if config.steps is not None
            else config.epochs * self.sampler.steps_per_epoch
        )
        self.phases = list(self.method.phases(total))
        self.bounds = _phase_bounds(self.phases)
        self.total = self.bounds[-1][1] if self.bounds else 0
        self.meter = MetricMeter()
        self.logger = RunLogger(
            self.run_dir, enabled=self.info.is_main, tensorboard=config.tensorboard
        )
        self.step = 0
        self._pending_rng: dict[str, Any] | None = None
        self.last_checkpoint: Path | None = None
        self._saved_step = -1
        self._resumed_extra: dict[str, Any] = {}
        self.phase = self.phases[0].name if self.phases else ""

    # -- setup ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the run directory's lock (the process's exit would, too); if nothing was
        written yet, also remove the lock file (and directories) that claiming it created."""
        if self._lock is not None:
            self._lock.release(undo=not self._writing)

    def _data_on_device(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = self.data.x, self.data.y
        # on a GPU, a data set that fits comfortably is moved once instead of every batch
        if self.device.type == "cuda" and x.numel() * x.element_size() < 2**30:
            x = x.to(self.device)
            y = y.to(self.device) if y is not None else None
        return x, y

    def _make_ema(self) -> EMA | None:
        if self.config.ema.decay <= 0:
            return None
        gen = self.method.generator
        if gen is None:
            raise OTGenError(f"ema.decay: method {self.config.method!r} has no generator (G)")
        return EMA(D.unwrap(gen), self.config.ema.decay, self.config.ema.start)

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        m = self.method
        return {
            "nets": {k: D.unwrap(v).state_dict() for k, v in m.nets.items()},
            "optimizers": {k: opt.state_dict() for k, opt in m.optimizers.items()},
            "extra": dict(m.extra_state()),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": capture_rng(),
            "meter": {
                "sums": {k: float(v) for k, v in self.meter.sums.items()},
                "count": self.meter.count,
            },
        }

    def save(self) -> None:
        """Checkpoint the current step (rank 0 writes; every rank syncs its buffers first)."""
        self.meter.check(self.step)  # never commit a state reached through a NaN loss
        D.sync_buffers(self.method, self.info)
        self._saved_step = self.step
        if not self.info.is_main:
            return
        meta = {
            "phase": self.phase,
            "sampler": self.sampler.state(self.step),
            "world_size": self.info.world_size,
            "config": self.config.to_dict(),
            "spec": rundir.spec_dict(self.spec),
        }
        self.last_checkpoint = save_checkpoint(
            rundir.checkpoint_dir(self.run_dir),
            self.step,
            self.state(),
            meta,
            self.config.keep_checkpoints,
        )

    def restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        check_resumable(ckpt, self.config.to_dict(), self.allow_changes)
        if ckpt.step > self.total:
            raise CheckpointError(f"checkpoint step {ckpt.step} is past the run's end {self.total}")
        apply_state(self.method, ckpt.state, self.ema)
        self._resumed_extra = extra_on(ckpt.state, self.method.device)
        meter = ckpt.state.get("meter") or {}
        self.meter.sums = dict(meter.get("sums", {}))
        self.meter.count = int(meter.get("count", 0))
        self.step = self._saved_step = ckpt.step
        self.last_checkpoint = path
        if self.info.rank == 0:
            self._pending_rng = ckpt.state["rng"]
        else:  # other ranks get fresh, distinct streams
            seed_everything(self.config.seed + 1_000_003 * self.info.rank + ckpt.step)

    def _restore_pending_rng(self) -> None:
        if self._pending_rng is not None:
            restore_rng(self._pending_rng)
            self._pending_rng = None

    # -- samples --------------------------------------------------------------------------
    @contextmanager
    def _sampling(self):
        """Unwrapped nets in eval mode, EMA weights in G, and a forked RNG with fixed seed."""
        m = self.method
        wrapped = dict(m.nets)
        modes = {k: v.training for k, v in wrapped.items()}
        devices = [self.device] if self.device.type == "cuda" else []
        m.nets.update({k: D.unwrap(v) for k, v in wrapped.items()})
        try:
            for v in m.nets.values():
                v.eval()
            ema_ctx = self.ema.swapped(m.nets["G"]) if self.ema is not None else nullcontext()
            with ema_ctx, torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(_SAMPLE_SEED)
                yield m
        finally:
            m.nets.update(wrapped)
            for k, v in wrapped.items():
                v.train(modes[k])

    def write_samples(self) -> Path | None:
        if not self.info.is_main:
            return None
        with self._sampling() as m:
            samples = m.sample(self.config.n_samples).detach().cpu()
        path = self.run_dir / SAMPLE_DIR / f"step-{self.step:09d}.png"
        real = self.data.x[: max(self.config.n_samples, 1000)].cpu()
        return save_samples(
            samples, path, real=real, title=f"{self.config.method} step {self.step}"
        )

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> Path:
        latest = rundir.newest_checkpoint(self.run_dir)
        if latest is not None:
            self.restore(latest)
        self._writing = True
        self.logger.truncate(self.step)  # drop records a killed run wrote past its checkpoint
        if self.info.is_main:
            rundir.write_config(self.run_dir, self.config, self.spec, self.data.name)
        try:
            self._loop()
        except NonFiniteError as exc:
            where = self.last_checkpoint.name if self.last_checkpoint else "none written"
            raise NonFiniteError(f"{exc} (last good checkpoint: {where})") from None
        except OSError as exc:  # disk full, read-only: what was committed stays resumable
            what = f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)
            raise OTGenError(f"cannot write the run: {what}; {self._resumable()}") from None
        except KeyboardInterrupt:
            raise Interrupted(
                f"training stopped at step {self.step}; {self._resumable()}"
            ) from None
        finally:
            self.logger.close()
        D.barrier(self.info)
        return self.run_dir

    def _resumable(self) -> str:
        """Where a stopped run can be continued from (one clause of an error line)."""
        newest = rundir.newest_checkpoint(self.run_dir)
        if newest is None:
            return "no checkpoint was written yet"
        return (
            f"newest complete checkpoint: {newest.name}; continue with "
            f"`otgen resume --run {self.run_dir}`"
        )

    def _loop(self) -> None:
        cfg = self.config
        bar = progress(total=self.total, desc=f"{cfg.method}")
        bar.update(self.step)
        for phase, (start, end) in zip(self.phases, self.bounds, strict=True):
            if end < self.step or (end == self.step and start < end):
                continue  # finished before the checkpoint we resumed from
            inside = start < self.step  # resuming in the middle of this phase
            if not inside:
                self._restore_pending_rng()  # begin_phase then draws exactly as uninterrupted
            self.phase = phase.name
            bar.set_description(f"{cfg.method}:{phase.name}")
            self.method.begin_phase(phase.name, self.x, self.y)
            if inside and self._resumed_extra:  # the checkpoint's state wins over a recompute
                self.method.load_extra_state(self._resumed_extra)
            self._restore_pending_rng()  # a repeated begin_phase must not shift the RNG
            while self.step < end:
                self._one_step(bar)
        bar.close()
        self._flush_log()
        if self._saved_step != self.step:  # same decision on every rank (save is collective)
            self.save()
            self.write_samples()  # (a resumed run that had already finished rewrites nothing)

    def _one_step(self, bar) -> None:
        cfg = self.config
        idx = self.sampler.indices(self.step)
        if self.x.device.type == "cpu" and self.device.type != "cpu":
            x = self.x[idx].to(self.device, non_blocking=True)
        else:
            x = self.x[idx.to(self.x.device)]
        y = None
        if self.y is not None:
            y = self.y[idx.to(self.y.device)].to(self.device)
        logs = self.method.train_step(x, y, self.step)
        self.meter.add(logs, self.step)
        if self.ema is not None:
            self.ema.update(D.unwrap(self.method.nets["G"]), self.step)
        self.step += 1
        bar.update(1)
        if cfg.log_every and self.step % cfg.log_every == 0:
            values = self._flush_log()
            if values:
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:4]})
        if (
            cfg.checkpoint_every
            and self.step % cfg.checkpoint_every == 0
            and self.step < self.total
        ):
            self.save()
        if cfg.sample_every and self.step % cfg.sample_every == 0 and self.step < self.total:
            self.write_samples()

    def _flush_log(self) -> dict[str, float]:
        if not self.meter.count:
            return {}
        values = D.mean_across_ranks(self.meter.means(self.step), self.info, self._reduce_device())
        self.logger.log(self.step, self.phase, values)
        return values

    def _reduce_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


# -- public entry points ------------------------------------------------------------------


def _as_config(config: TrainConfig | dict | str | Path) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config_from_dict(config.to_dict())  # re-validate the method params
    if isinstance(config, (str, Path)):
        return config_from_dict(load_config_file(config))
    return config_from_dict(config)


def train(
    config: TrainConfig | dict | str | Path,
    data: Any = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    allow_changes: Sequence[str] = (),
) -> Path:
    """Train a run; returns its directory. ``data``: an in-memory Dataset or tensor (default:
    ``otgen.data.load(config.data.name, ...)``). ``resume=True`` continues from the newest
    checkpoint in ``config.out`` if there is one (else starts), instead of refusing the dir.
    ``overwrite=True`` trains in a directory that holds files but no run (entries a run writes
    are renamed ``<name>.<N>`` first, nothing is deleted; see :mod:`otgen.engine.rundir`).
    The directory is locked against other writers until this returns.
    """
    trainer = Trainer(_as_config(config), data, resume=resume, overwrite=overwrite)
    trainer.allow_changes = tuple(allow_changes)
    try:
        return trainer.run()
    finally:
        trainer.close()
        if trainer.info.enabled:
            D.shutdown()


def resume(
    run_dir: str | Path,
    data: Any = None,
    *,
    device: str | None = None,
    allow_changes: Sequence[str] = (),
) -> Path:
    """Continue the run in ``run_dir`` from its newest checkpoint, to the configured end.

    A config edited since the checkpoint is refused unless its changed keys are in
    ``allow_changes`` (e.g. ``("steps",)`` to extend a run).
    """
    config, _ = read_run(run_dir)
    config = config.replace(out=str(run_dir), **({"device": device} if device else {}))
    return train(config, data, resume=True, allow_changes=allow_changes)


def resolved_config(config: TrainConfig, method: Method) -> TrainConfig:
    """``config`` with ``params`` read back from the built method's (resolved) config."""
    cfg = method.cfg
    if cfg is None or not dataclasses.is_dataclass(cfg):
        return config
    params = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    return config.replace(params=params)


def build_method(config: TrainConfig, spec: DataSpec, device: torch.device) -> Method:
    """The method named by ``config`` built from its validated config.

    If the method starts from another run (``Method.warm_start_run``), that run is loaded
    here (with the caller's RNG untouched) and handed to the constructor as ``source=``.
    """
    cls = resolve_method(config.method)
    cfg = method_config(config, cls)
    ref = cls.warm_start_run(cfg)
    if ref is None:
        return cls(cfg, spec, device)
    source, _ = load_run(ref, device)
    return cls(cfg, spec, device, source=source)


def load_run(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    *,
    ema: bool = True,
    checkpoint: str | Path | None = None,
) -> tuple[Method, TrainConfig]:
    """The trained method of a run (newest checkpoint, nets in eval mode) and its config.

    With ``ema=True`` and an EMA in the run, the generator holds the EMA weights. Does not
    touch the caller's global RNG.
    """
    config, spec = read_run(run_dir)
    dev = resolve_device(device)
    path = Path(checkpoint) if checkpoint else rundir.newest_checkpoint(run_dir)
    if path is None:
        raise CheckpointError(f"{run_dir} has no checkpoint yet")
    ckpt = load_checkpoint(path)
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        method = build_method(config, spec, dev)
    apply_state(method, ckpt.state)
    if ema and ckpt.state.get("ema") is not None and method.generator is not None:
        method.generator.load_state_dict(ckpt.state["ema"])
    for net in method.nets.values():
        net.eval()
    return method, config
