"""Multi-seed training: S seeds stacked in one network vs S separate single-seed runs.

    python benchmarks/stacked.py                 # S = 10, DOT's 2D WGAN-GP nets, batch 256
    python benchmarks/stacked.py --steps 5       # smoke run

Variants, timed per critic step (a G update every 5th), all in this process and interleaved
round by round, so a shared, loaded CPU slows them alike:

- ``stacked``: :class:`otgen.engine.stacked.StackedWGANGP` with S seeds (batched matmuls);
- ``sequential (stack of 1)``: S instances with one seed each, stepped one after another
  (the same code path; per seed bit-identical to the stacked run, see tests);
- ``sequential (otgen method)``: S ``wgan-gp`` methods (``dot-mlp`` nets, ``nn.Linear``) —
  today's single-seed training loop;
- ``vmap``: ``torch.func.functional_call`` + ``vmap`` over S stacked parameter sets, where
  torch supports the penalty's double backward under vmap (the row says if it does not).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

from otgen.data.toy import sample
from otgen.engine.stacked import (
    StackedPacGAN,
    StackedPacGANConfig,
    StackedWGANGP,
    StackedWGANGPConfig,
)
from otgen.errors import OTGenError
from otgen.utils.report import write_report

OUT = Path(__file__).resolve().parent / "results" / "stacked"


def _sampler(n: int, g: torch.Generator) -> torch.Tensor:
    return sample("gauss25-dot", n, generator=g)


def _grid(n: int, g: torch.Generator) -> torch.Tensor:
    return sample("grid25", n, generator=g)


def _method_runner(seeds: list[int], batch: int, model: str, pack: int):
    from otgen.data import DataSpec
    from otgen.methods import get_method

    cls = get_method(model)
    data = _sampler if model == "wgan-gp" else _grid
    methods = []
    for s in seeds:
        torch.manual_seed(s)
        cfg = (cls.Config(arch="dot-mlp", prior="uniform", gp_weight=0.1) if model == "wgan-gp"
               else cls.Config(pack=pack))  # fmt: skip
        methods.append(cls(cfg, DataSpec((2,)), torch.device("cpu")))
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    state = {"step": 0}

    def step() -> None:
        for m, g in zip(methods, gens, strict=True):
            m.train_step(data(batch, g), None, state["step"])
        state["step"] += 1

    return step


def _vmap_runner(seeds: list[int], batch: int):
    """WGAN-GP critic step with functional_call + vmap over stacked parameters."""
    from torch.func import functional_call, stack_module_state, vmap

    from otgen.nets.mlp import dot_discriminator, dot_generator

    Gs, Ds = [], []
    for s in seeds:
        torch.manual_seed(s)
        Gs.append(dot_generator())
        Ds.append(dot_discriminator())
    g_par, _ = stack_module_state(Gs)
    d_par, _ = stack_module_state(Ds)
    g_base, d_base = Gs[0].to("meta"), Ds[0].to("meta")
    params = list(g_par.values()) + list(d_par.values())
    opt_d = torch.optim.Adam(list(d_par.values()), lr=1e-4, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(list(g_par.values()), lr=1e-4, betas=(0.5, 0.9))
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    state = {"step": 0}
    del params

    def d_one(p, x):
        return functional_call(d_base, p, (x,))

    def g_one(p, z):
        return functional_call(g_base, p, (z,))

    def critic_loss(pd, pg, real, z, t):
        fake = g_one(pg, z).detach()
        x_hat = t * real + (1 - t) * fake
        grad = torch.func.grad(lambda xh: d_one(pd, xh).sum())(x_hat)
        gp = (grad.norm(dim=1) - 1).pow(2).mean()
        return d_one(pd, fake).mean() - d_one(pd, real).mean() + 0.1 * gp

    def step() -> None:
        real = torch.stack([_sampler(batch, g) for g in gens])
        z = torch.stack([torch.rand(batch, 2, generator=g) * 2 - 1 for g in gens])
        t = torch.stack([torch.rand(batch, 1, generator=g) for g in gens])
        loss = vmap(critic_loss)(d_par, g_par, real, z, t)
        opt_d.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt_d.step()
        state["step"] += 1
        if state["step"] % 5 == 0:
            z = torch.stack([torch.rand(batch, 2, generator=g) * 2 - 1 for g in gens])
            g_loss = vmap(lambda pd, pg, zz: -d_one(pd, g_one(pg, zz)).mean())(d_par, g_par, z)
            opt_g.zero_grad(set_to_none=True)
            g_loss.sum().backward()
            opt_g.step()

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=50, help="critic steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--no-sequential", action="store_true", help="time stacked and vmap only")
    p.add_argument("--model", choices=("wgan-gp", "pacgan"), default="wgan-gp")
    p.add_argument("--pack", type=int, default=4, help="PacGAN pack (--model pacgan)")
    args = p.parse_args(argv)
    seeds = list(range(args.seeds))
    if args.model == "wgan-gp":
        make = partial(
            StackedWGANGP, sampler=_sampler, cfg=StackedWGANGPConfig(batch_size=args.batch)
        )
    else:
        cfg = StackedPacGANConfig(batch_size=args.batch, pack=args.pack)
        make = partial(StackedPacGAN, sampler=_grid, cfg=cfg)
    stacked = make(seeds)
    singles = [make([s]) for s in seeds]
    runners = {
        "stacked": stacked.train_step,
        "sequential (stack of 1)": lambda: [m.train_step() for m in singles],
        "sequential (otgen method)": _method_runner(seeds, args.batch, args.model, args.pack),
    }
    if args.no_sequential:
        runners = {"stacked": stacked.train_step}
    errors: dict[str, str] = {}
    try:
        if args.model != "wgan-gp":
            raise OTGenError("vmap variant written for WGAN-GP only")
        vm = _vmap_runner(seeds, args.batch)
        vm()  # fails here if vmap cannot do the double backward
        runners["vmap (functional_call)"] = vm
    except Exception as exc:  # recorded in the report, not hidden
        errors["vmap (functional_call)"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    for run in runners.values():  # warm-up: first-call allocations and kernel selection
        run()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times.get("sequential (otgen method)", times["stacked"]))
    rows = [
        {
            "variant": name,
            "ms / step, all seeds (median of rounds)": round(1e3 * statistics.median(ts), 1),
            "min / max": f"{1e3 * min(ts):.1f} / {1e3 * max(ts):.1f}",
            "speed-up vs sequential method"
            if not args.no_sequential
            else "speed-up vs stacked": round(base / statistics.median(ts), 2),
        }
        for name, ts in times.items()
    ]
    rows += [{"variant": k, "ms / step, all seeds (median of rounds)": f"not run: {v}"}
             for k, v in errors.items()]  # fmt: skip
    model = (
        "DOT's 2D WGAN-GP (G 2→256×3→2, D 2→512×3→1, λ = 0.1, G update every 5th critic step) "
        "on gauss25-dot"
        if args.model == "wgan-gp"
        else f"PacGAN{args.pack} (G 2→400×4→2 BatchNorm, D 3× maxout 200×5, NS loss) on grid25"
    )
    notes = (
        f"{args.seeds} seeds of {model}, batch {args.batch}; {args.steps} critic steps "
        f"per variant per round, {args.rounds} rounds, variants interleaved within each round "
        f"(the CPU is shared with other jobs; interleaving exposes all variants to the same "
        f"load). torch threads: {torch.get_num_threads()}."
    )
    write_report(
        args.out, "stacked", rows=rows,
        title=f"Multi-seed training ({args.model}): stacked vs sequential (CPU)",
        data={"times_s_per_step": times, "errors": errors, "seeds": args.seeds},
        notes=notes,
        command=f"python benchmarks/stacked.py --seeds {args.seeds} --steps {args.steps} "
        f"--rounds {args.rounds} --batch {args.batch} --model {args.model}"
        + (f" --pack {args.pack}" if args.model == "pacgan" else "")
        + (" --no-sequential" if args.no_sequential else ""),
    )  # fmt: skip
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
