"""Power diagrams of 2D semi-discrete OT maps (AE-OT Figs. 7-9) and displacement interpolation
(Fig. 11 idea).

The cells W_i(h) are drawn by rasterising the source square: each pixel is assigned its cell
(``argmax_i ⟨x, y_i⟩ + h_i``) and coloured by the position of its target y_i, so the colour
says *where* a cell is sent. Cell boundaries are thin grey lines; boundaries between a
*singular* pair (normal angle ≥ θ, see :mod:`otgen.ot.extended_map`) are bold black: they
are the discontinuity set Σ_1 of the OT map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from otgen.errors import OTGenError
from otgen.ot.extended_map import ExtendedMap, normal_angles
from otgen.ot.semidiscrete import SemiDiscreteResult, SourceSampler


def target_colours(y: torch.Tensor) -> np.ndarray:
    """An RGB colour per 2D target from its position (nearby targets, similar colours)."""
    yn = y.double().cpu().numpy()
    lo, hi = yn.min(0), yn.max(0)
    u = (yn - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.stack([0.15 + 0.8 * u[:, 0], 0.35 + 0.3 * (1 - u[:, 1]), 0.15 + 0.8 * u[:, 1]], 1)


def _check_2d(result: SemiDiscreteResult) -> None:
    if not isinstance(result, SemiDiscreteResult):
        raise OTGenError("power diagram plots need a SemiDiscreteResult")
    if result.dim != 2:
        raise OTGenError(f"power diagram plots need 2D targets, got dimension {result.dim}")


def _box(result: SemiDiscreteResult) -> tuple[float, float]:
    return (-0.5, 0.5) if result.source == "uniform" else (-3.0, 3.0)


def plot_power_diagram(
    result: SemiDiscreteResult,
    ext: ExtendedMap | None = None,
    *,
    theta: float | None = None,
    resolution: int = 400,
    samples: torch.Tensor | None = None,
    path: str | Path | None = None,
    title: str | None = None,
) -> plt.Figure:
    """Left: cells in the source, coloured by target, singular facets bold. Right: targets
    (same colours) and optional generated ``samples``. θ comes from ``ext`` or ``theta``."""
    _check_2d(result)
    if ext is not None:
        theta, scale = ext.theta, ext.scale
    else:
        scale = 1.0
    lo, hi = _box(result)
    g = torch.linspace(lo, hi, resolution, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g.flip(0), indexing="xy")
    grid = torch.stack([xx.flatten(), yy.flatten()], 1)
    label = result.assign(grid).view(resolution, resolution).cpu()
    colours = target_colours(result.y)
    img = colours[label.numpy()]
    y = result.y.double().cpu()
    thin = np.zeros(label.shape, bool)
    bold = np.zeros(label.shape, bool)
    for a, b, sl in (
        (label[:, :-1], label[:, 1:], np.s_[:, :-1]),
        (label[:-1], label[1:], np.s_[:-1]),
    ):
        edge = (a != b).numpy()
        thin[sl] |= edge
        if theta is not None and edge.any():
            ia, ib = a[torch.from_numpy(edge)], b[torch.from_numpy(edge)]
            sing = (normal_angles(y[ia], y[ib], scale) >= theta).numpy()
            mask = np.zeros_like(edge)
            mask[edge] = sing
            bold[sl] |= mask
    img[thin] = 0.55 * img[thin] + 0.45 * 0.5
    # Dilate singular boundaries by one pixel so they read as bold lines.
    wide = bold.copy()
    wide[1:] |= bold[:-1]
    wide[:, 1:] |= bold[:, :-1]
    img[wide] = 0.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(img, extent=(lo, hi, lo, hi), interpolation="nearest")
    axes[0].set_title(
        "power diagram in the source" + ("" if theta is None else f" (θ={theta:.2f})")
    )
    yn = y.numpy()
    axes[1].scatter(
        yn[:, 0], yn[:, 1], s=10, c=colours, edgecolors="k", linewidths=0.2, label="targets"
    )
    if samples is not None:
        s = samples.detach().double().cpu().numpy()
        axes[1].scatter(s[:, 0], s[:, 1], s=2, c="tab:green", alpha=0.4, label="generated")
    axes[1].set_aspect("equal")
    axes[1].set_title("targets y_i (cell colours)")
    if samples is not None:
        axes[1].legend(loc="upper right", fontsize=7)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_interpolation(
    result: SemiDiscreteResult,
    ts: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    n: int = 4000,
    seed: int = 0,
    transport=None,
    path: str | Path | None = None,
) -> plt.Figure:
    """Supports of ρ_t = [(1 − t) id + t T]_# μ (AE-OT §5.2, Fig. 11) for T = ∇u_h, or for
    ``transport`` (e.g. an :class:`ExtendedMap`); points coloured by their cell's target."""
    _check_2d(result)
    if not ts or any(not 0.0 <= float(t) <= 1.0 for t in ts):
        raise OTGenError("interpolation times must lie in [0, 1]")
    x = SourceSampler(2, result.source, seed=seed).draw(n).to(result.y)
    tx = (transport or result.transport)(x).double()
    col = target_colours(result.y)[result.assign(x).cpu().numpy()]
    fig, axes = plt.subplots(1, len(ts), figsize=(3 * len(ts), 3.2))
    for ax, t in zip(np.atleast_1d(axes), ts, strict=True):
        p = ((1 - t) * x.double() + t * tx).cpu().numpy()
        ax.scatter(p[:, 0], p[:, 1], s=1.5, c=col)
        ax.set_title(f"t = {t:g}")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return _finish(fig, path)


def _finish(fig: plt.Figure, path: str | Path | None) -> plt.Figure:
    """Lay out ``fig``; when ``path`` is given, save it there and close it (no open figures
    pile up in loops)."""
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
