"""Which EMD convention can DOT Fig. 3's published values have used? The real-vs-real floor.

    python benchmarks/emd_convention.py             # 100 trials of 1,000 vs 1,000 points
    python benchmarks/emd_convention.py --trials 5  # smoke run

DOT reports EMD between 1,000 generated and 1,000 real points (100 trials): 25 gaussians
G 0.052, DOT 0.052, naive 0.065; swiss roll G 0.021, DOT 0.020, naive 0.160 (reference
notes). The paper does not say which ground cost. For each data set this script draws two
*independent* 1,000-point real samples per trial and solves the exact EMD (network simplex,
:func:`otgen.ot.exact.emd2`) under

- the Euclidean cost ``‖x − y‖₂`` (W1, :func:`otgen.metrics.emd.emd_distance`), and
- the squared Euclidean cost ``‖x − y‖₂²`` (W2², POT's ``ot.dist`` default),

with the same point pairs for both costs. A perfect generator's samples are distributed like
the real ones, so its expected EMD to a fresh real sample *is* this floor: a published G value
below the floor (beyond noise) cannot have been computed with that cost.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from otgen.data.toy import sample
from otgen.metrics.emd import emd_distance
from otgen.ot.exact import emd2
from otgen.utils.report import write_report
from otgen.utils.tables import mean_se

OUT = Path(__file__).resolve().parent / "results" / "emd-convention"
# DOT Fig. 3 (reference notes): (G, DOT, naive), mean over 100 trials
PAPER = {"gauss25-dot": (0.052, 0.052, 0.065), "swissroll": (0.021, 0.020, 0.160)}
COSTS = {"euclidean": "Euclidean ‖x−y‖ (W1)", "sqeuclidean": "squared Euclidean ‖x−y‖² (W2²)"}


def floor(name: str, trials: int, n: int, seed: int) -> dict[str, list[float]]:
    """EMD between two independent n-point real samples, per trial, under both costs."""
    out: dict[str, list[float]] = {c: [] for c in COSTS}
    for t in range(trials):
        gen = torch.Generator().manual_seed(seed * 100_003 + t)
        x = sample(name, n, generator=gen).double()
        y = sample(name, n, generator=gen).double()
        out["euclidean"].append(emd_distance(x, y))
        out["sqeuclidean"].append(float(emd2(x, y, cost="sqeuclidean")))
    return out


def compatible(floor_mean: float, floor_se: float, paper_g: float) -> bool:
    """A cost is compatible if the paper's G value is not below the floor by > 3 s.e."""
    return paper_g >= floor_mean - 3 * floor_se


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    rows, data = [], {}
    for name, paper in PAPER.items():
        per_cost = floor(name, args.trials, args.n, args.seed)
        data[name] = per_cost
        for cost, label in COSTS.items():
            m, se = mean_se(per_cost[cost])
            rows.append(
                {
                    "data": name,
                    "cost": label,
                    "real-vs-real EMD (mean ± s.e.)": f"{m:.4g} ± {se:.2g}",
                    "std over trials": f"{se * math.sqrt(args.trials):.2g}",
                    "paper G / DOT / naive": " / ".join(f"{v:.3f}" for v in paper),
                    "paper G ≥ floor − 3 s.e.": compatible(m, se, paper[0]),
                }
            )
    verdict = {
        cost: all(r["paper G ≥ floor − 3 s.e."] for r in rows if r["cost"] == label)
        for cost, label in COSTS.items()
    }
    matching = [COSTS[c] for c, ok in verdict.items() if ok] or ["neither"]
    notes = (
        f"Two independent real samples of {args.n} points per trial, {args.trials} trials, "
        "exact EMD (network simplex, uniform weights) under each cost on the same pairs. "
        "A perfect generator's expected EMD to fresh real data equals this floor, so a "
        "published G value below it (by more than 3 s.e. of the floor) rules the cost out.\n\n"
        f"**Convention compatible with the paper's values on both data sets: "
        f"{', '.join(matching)}.** "
        "Reproductions of DOT Fig. 3 should report EMD under that cost next to the Euclidean "
        "one, with this floor as the reference row."
    )
    write_report(
        args.out, "emd_convention", title="DOT Fig. 3: EMD convention and real-vs-real floor",
        rows=rows, data={"trials": data, "paper": PAPER, "compatible": verdict, "n": args.n},
        notes=notes, command=f"python benchmarks/emd_convention.py --trials {args.trials}",
    )  # fmt: skip
    print(f"compatible: {', '.join(matching)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
