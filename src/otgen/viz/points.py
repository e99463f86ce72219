"""2D scatter of real vs generated points with density contours (EOT paper, Fig. 1a style).

Real samples are red '+', generated samples blue 'o'; each set gets the contour lines of a
Gaussian kernel density estimate (``scipy.stats.gaussian_kde``, Scott's bandwidth) in its own
colour. The figure is drawn with matplotlib's Agg canvas directly (no pyplot state), so it works
headless and from several threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from otgen.utils.checks import ArrayLike, as_points

_KDE_POINTS = 1000  # KDE cost is O(points × grid); a random subset keeps a plot fast
_GRID = 90


def plot_points(
    real: ArrayLike,
    fake: ArrayLike | None,
    path: str | Path,
    *,
    title: str | None = None,
    means: ArrayLike | None = None,
    contours: bool = True,
    max_points: int = 5000,
    limits: tuple[float, float, float, float] | None = None,
    labels: tuple[str, str] = ("real", "generated"),
) -> Path:
    """Save a scatter + density-contour plot of ``real`` (and ``fake``) to ``path`` (PNG).

    ``means`` (K, 2) are drawn as black crosses (mode centres); ``limits`` is
    ``(xmin, xmax, ymin, ymax)``, by default the real data's range plus a 10% margin.
    Returns the written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sets = [(_points(real, "real", max_points), "tab:red", "+", labels[0])]
    if fake is not None:
        sets.append((_points(fake, "fake", max_points), "tab:blue", "o", labels[1]))
    box = limits or _limits(sets[0][0])

    fig = Figure(figsize=(5.2, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for pts, colour, marker, label in sets:
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=10 if marker == "+" else 6,
            c=colour,
            marker=marker,
            alpha=0.45,
            linewidths=0.8 if marker == "+" else 0,
            label=label,
        )
    if contours:
        for pts, colour, _, _ in sets:
            _draw_density(ax, pts, colour, box)
    if means is not None:
        m = as_points(means, "means").cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], c="black", marker="x", s=30, label="modes")
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8, markerscale=1.5)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _points(x: ArrayLike, name: str, max_points: int) -> np.ndarray:
    from otgen.errors import OTGenError

    pts = as_points(x, name).detach().cpu().double().numpy()
    if pts.shape[1] != 2:
        raise OTGenError(f"{name} must be 2D points, got dimension {pts.shape[1]}")
    if len(pts) > max_points:  # deterministic thinning keeps the plot reproducible
        pts = pts[np.random.default_rng(0).choice(len(pts), max_points, replace=False)]
    return pts


def _limits(pts: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.1 * max(hi - lo) + 1e-3
    return (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)


def _draw_density(ax, pts: np.ndarray, colour: str, box) -> None:
    """KDE contour lines; skipped for degenerate sets (collapsed to a point or a line)."""
    from scipy.stats import gaussian_kde

    if len(pts) < 3:
        return
    sub = pts
    if len(pts) > _KDE_POINTS:
        sub = pts[np.random.default_rng(1).choice(len(pts), _KDE_POINTS, replace=False)]
    try:
        kde = gaussian_kde(sub.T)
    except (np.linalg.LinAlgError, ValueError):
        return  # singular covariance: a collapsed generator has no density to contour
    gx, gy = np.meshgrid(np.linspace(box[0], box[1], _GRID), np.linspace(box[2], box[3], _GRID))
    dens = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    if not np.isfinite(dens).all() or dens.max() <= 0:
        return
    ax.contour(gx, gy, dens, levels=5, colors=colour, linewidths=0.9)
