"""DOT paper, Tables 1-3 analogue on Fashion-MNIST: latent-space DOT on small DCGANs.

The paper refines CIFAR-10/STL-10 DCGAN/ResNet GANs (Table 1), swaps in the discriminator of
another GAN for a fixed G (Table 2) and runs conditional latent DOT on ImageNet (Table 3). On a
CPU budget this reproduction uses Fashion-MNIST (28×28) and the DCGAN architecture:

- Table 1: WGAN-GP, SNGAN (ns) and SNGAN (hinge), each trained for ``steps`` updates, scored
  bare and after latent DOT (Algorithm 2: SGD lr 0.01, ``dot_steps`` updates, δ = 0.001,
  k_eff from eq. 21 with 100 pairs × 10 repeats, tangent projection for the N(0, I) prior);
- Table 2: G of SNGAN (ns) fixed, latent DOT with each discriminator in turn;
- Table 3: a class-conditional SNGAN (hinge, projection D), conditional latent DOT
  (Algorithm 3) with Adam(0.01, 0, 0.9) for 0/4/16/32 updates, k_eff(y) = 1 and per class
  (eq. 26, 50 pairs per class).

Scores: FID and IS with the domain extractor ``fmnist-net`` (FID against the 10,000 test
images); numbers are not comparable with Inception-based CIFAR scores. Every run draws the
same latents (seeded) so bare and DOT columns compare the same samples.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

GANS = {  # label: (preset, config overrides)
    "WGAN-GP": ("wgan-gp", {}),
    "SNGAN(ns)": ("sngan", {"loss": "ns"}),
    "SNGAN(hi)": ("sngan", {"loss": "hinge"}),
}
COND_GAN = ("sngan", {"loss": "hinge", "conditional": True})
FIXED_G = "SNGAN(ns)"


@dataclass(frozen=True)
class Settings:
    steps: int  # training updates per GAN (critic updates for WGAN-GP)
    batch_size: int
    n_train: int  # training images (subset of the 60,000)
    n_eval: int  # generated images per score
    dot_steps: int  # latent DOT updates (Table 1: 20 SGD steps on CIFAR-10)
    cond_updates: tuple[int, ...]  # Table 3 columns
    k_pairs: int = 100  # latent pairs per k_eff repeat (eq. 21; half of them per class, eq. 26)
    k_repeats: int = 10  # k_eff repeats (their max ratios are averaged)


FULL = Settings(steps=6000, batch_size=64, n_train=60000, n_eval=5000, dot_steps=20,
                cond_updates=(0, 4, 16, 32))  # fmt: skip
QUICK = Settings(steps=150, batch_size=64, n_train=5000, n_eval=500, dot_steps=10,
                 cond_updates=(0, 4, 16))  # fmt: skip


def train_gan(preset: str, overrides: dict, data, s: Settings, seed: int, device):
    """Train one GAN preset with the DCGAN nets through its ``train_step`` loop."""
    from otgen.methods import get_method
    from otgen.utils.seeding import seed_everything

    gen = seed_everything(seed)
    cls = get_method(preset)
    method = cls(cls.Config(arch="dcgan", **overrides), data.spec, device)
    n = data.x.shape[0]
    logs: dict[str, float] = {}
    for step in range(s.steps):
        idx = torch.randint(n, (s.batch_size,), generator=gen)
        y = None if data.y is None else data.y[idx]
        logs = method.train_step(data.x[idx], y, step)
    for net in method.nets.values():
        net.eval()
    return method, logs


class Scorer:
    """FID (against the test set) and IS with one pinned extractor (``metrics.evaluate``)."""

    def __init__(self, name: str, real: torch.Tensor, device) -> None:
        from otgen.metrics.evaluate import Evaluator

        self.evaluator = Evaluator(real, name, device=device)

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        return self.evaluator(images, ("fid", "is")).by_metric()

    def label(self) -> str:
        info = self.evaluator.features.describe()
        return info.get("label", info["name"])


def _latents(pair, n: int, seed: int, labels=None) -> torch.Tensor:
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        return pair.sample_latent(n, labels).cpu()


def _fmt(sc: dict[str, float]) -> str:
    return f"{sc['is']:.2f}({sc['is_std']:.2f}), {sc['fid']:.2f}"


def table1_and_2(methods: dict, score: Scorer, s: Settings, seed: int, out: Path) -> dict:
    from otgen.methods.dot import GANPair, estimate_lipschitz, latent_dot
    from otgen.viz.images import save_image_grid

    t1, t2, grids = [], [], []
    for label, method in methods.items():
        pair = GANPair.from_method(method)
        z = _latents(pair, s.n_eval, seed + 11).to(pair.device)
        k = estimate_lipschitz(pair, "latent", n_pairs=s.k_pairs, n_repeats=s.k_repeats, seed=seed)
        res = latent_dot(pair, z, k, steps=s.dot_steps, lr=0.01, optimizer="sgd")
        bare, dot = score(res.x0), score(res.x)
        t1.append({"GAN": label, "k_eff": float(k), "bare (IS, FID)": _fmt(bare),
                   "DOT (IS, FID)": _fmt(dot), "bare": bare, "dot": dot})  # fmt: skip
        path = out / f"dot_images_{label.replace('(', '_').replace(')', '')}.png"
        grids.append(save_image_grid(torch.cat([res.x0[:32], res.x[:32]]).cpu(), path, scale=2))
    G = methods[FIXED_G]
    row: dict[str, Any] = {
        "G": FIXED_G,
        "without D": _fmt(t1[list(methods).index(FIXED_G)]["bare"]),
    }
    for label, other in methods.items():
        pair = GANPair.from_method(G, D=other.discriminator)
        z = _latents(pair, s.n_eval, seed + 11).to(pair.device)
        k = estimate_lipschitz(pair, "latent", n_pairs=s.k_pairs, n_repeats=s.k_repeats, seed=seed)
        res = latent_dot(pair, z, k, steps=s.dot_steps, lr=0.01, optimizer="sgd")
        sc = score(res.x)
        row[f"D of {label}"] = _fmt(sc)
        t2.append({"D": label, "k_eff": float(k), **sc})
    return {"table1": t1, "table2_row": row, "table2": t2, "grids": grids}


def table3(method, score: Scorer, s: Settings, seed: int, out: Path) -> dict:
    from otgen.methods.dot import GANPair, estimate_lipschitz, latent_dot
    from otgen.viz.images import save_image_grid

    pair = GANPair.from_method(method)
    C = pair.num_classes
    labels = (torch.arange(s.n_eval) % C).to(pair.device)
    z = _latents(pair, s.n_eval, seed + 21, labels).to(pair.device)
    k_class = estimate_lipschitz(
        pair, "latent", n_pairs=s.k_pairs // 2, n_repeats=s.k_repeats, num_classes=C, seed=seed
    )
    rows, grid = [], None
    for tag, k in (("keff(y) = 1", 1.0), ("keff(y) per class (eq. 26)", k_class)):
        row: dict[str, Any] = {"trial": tag}
        for n_up in s.cond_updates:
            res = latent_dot(pair, z, k, labels=labels, steps=n_up, lr=0.01, optimizer="adam",
                             betas=(0.0, 0.9))  # fmt: skip
            sc = score(res.x)
            row[f"#updates={n_up}"] = _fmt(sc)
            row[f"raw_{n_up}"] = sc
        rows.append(row)
        if grid is None:
            path = out / "dot_images_conditional.png"
            grid = save_image_grid(torch.cat([res.x0[:40], res.x[:40]]).cpu(), path, nrow=10,
                                   scale=2)  # fmt: skip
    return {"rows": rows, "k_per_class": k_class.value.tolist(), "grid": grid}


def run(out: str, quick: bool, seed: int, device: str) -> dict:
    from otgen.data import load
    from otgen.utils.device import resolve_device
    from otgen.utils.report import write_report
    from otgen.utils.tables import markdown_table

    s = QUICK if quick else FULL
    dev = resolve_device(device)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load("fashion-mnist", n=s.n_train, seed=seed)
    score = Scorer("fmnist-net", load("fashion-mnist", split="test").x, dev)
    t0 = time.perf_counter()
    methods, logs = {}, {}
    for label, (preset, over) in GANS.items():
        methods[label], logs[label] = train_gan(preset, over, data, s, seed, dev)
    cond, logs["conditional SNGAN(hi)"] = train_gan(*COND_GAN, data, s, seed, dev)
    train_s = time.perf_counter() - t0
    r12 = table1_and_2(methods, score, s, seed, out_dir)
    r3 = table3(cond, score, s, seed, out_dir)
    cols1 = ["GAN", "k_eff", "bare (IS, FID)", "DOT (IS, FID)"]
    cols3 = ["trial", *[f"#updates={n}" for n in s.cond_updates]]
    notes = "\n".join([
        f"Extractor: {score.label()} (FID vs the 10,000 test images; IS over 10 splits).",
        f"GANs: DCGAN nets, {s.steps} updates each, batch {s.batch_size}, {s.n_train} training "
        f"images; {s.n_eval} samples per score; latent DOT SGD lr 0.01, {s.dot_steps} updates.",
        "",
        "## Table 2 analogue: G of SNGAN(ns) fixed, latent DOT with each D (IS, FID)",
        "",
        markdown_table([r12["table2_row"]]),
        "## Table 3 analogue: conditional latent DOT, Adam(0.01, 0, 0.9) (IS, FID)",
        "",
        markdown_table(r3["rows"], cols3),
        f"k_eff(y) per class: {', '.join(f'{v:.3g}' for v in r3['k_per_class'])}",
        "",
        "Grids: upper half G's samples, lower half the same latents after DOT.",
    ])  # fmt: skip
    data_out = {"settings": asdict(s), "seed": seed, "train_seconds": train_s,
                "table1": r12["table1"], "table2": r12["table2"], "table3": r3["rows"],
                "k_per_class": r3["k_per_class"], "train_logs": logs}  # fmt: skip
    cmd = f"otgen reproduce dot-images{' --quick' if quick else ''} --seed {seed}"
    write_report(out_dir, "dot_images", title="DOT Tables 1-3 analogue (Fashion-MNIST)",
                 rows=r12["table1"], columns=cols1, data=data_out, notes=notes, command=cmd,
                 figures=[*r12["grids"], r3["grid"]])  # fmt: skip
    return {
        r["GAN"]: f"bare {r['bare (IS, FID)']} -> DOT {r['DOT (IS, FID)']}" for r in r12["table1"]
    }
