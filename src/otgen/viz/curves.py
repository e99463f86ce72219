"""Quality curves over training: the convergence evidence of every image experiment.

One figure layout for all of them (issue 16): one panel per model, one line per training seed
with its standard-error bars, the real-vs-real floor as a dotted line, and "(cap)" in the
legend of every run that stopped at its cap instead of flattening, so a reader sees at a glance
which curves the verdicts may rest on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Line:
    """One run's curve: values at steps, optional s.e. bars, whether it flattened."""

    steps: Sequence[float]
    values: Sequence[float]
    ses: Sequence[float] | None = None
    flattened: bool | None = None  # None: no stopping rule applies (no legend tag)

    @classmethod
    def of(cls, curve) -> Line:
        """From :class:`otgen.reproduce._converge.Curve` (or anything with the same fields)."""
        return cls(curve.steps, curve.fids, curve.ses, curve.converged)

    def prepend(self, step: float, value: float, se: float = 0.0) -> Line:
        """The same line with a starting point (e.g. AE-OT-GAN's step 0 = the AE-OT model)."""
        ses = None if self.ses is None else (se, *self.ses)
        return Line((step, *self.steps), (value, *self.values), ses, self.flattened)


@dataclass(frozen=True)
class Panel:
    """One model's runs, drawn against one floor."""

    title: str
    lines: Mapping[str, Line]
    floor: float | None = None
    floor_label: str = "real vs real"
    ylabel: str = "FID-fmnist-net"
    xlabel: str = "training step"
    log: bool = True


def plot_curves(panels: Sequence[Panel], path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``panels`` side by side and write a PNG atomically; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from otgen.utils.io import atomic_write

    fig = Figure(figsize=(max(5.0, 3.4 * len(panels) + 0.4), 3.3))
    FigureCanvasAgg(fig)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, line in panel.lines.items():
            tag = {None: "", True: "", False: " (cap)"}[line.flattened]
            ax.errorbar(line.steps, line.values, yerr=line.ses, marker="o" if len(line.steps) < 40
                        else None, ms=3, lw=1.0, capsize=2, label=label + tag)  # fmt: skip
        if panel.floor is not None:
            ax.axhline(panel.floor, color="k", ls=":", lw=0.8, label=panel.floor_label)
        if panel.log:
            ax.set_yscale("log")
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel if i == 0 or
               panel.ylabel != panels[i - 1].ylabel else None)  # fmt: skip
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
