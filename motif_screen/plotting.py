"""The latent map: a 2D projection of latent vectors, drawn as a PNG (CLI `plot latent` and run reports).

Figures are drawn with matplotlib's object API (``Figure``), which needs no GUI backend and leaves
the caller's pyplot state alone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from motif_screen.errors import InputError


def pca_2d(latents):
    """(N, D) -> (N, 2) projection on the two leading principal axes, and their explained variance."""
    x = np.asarray(latents, dtype=float)
    if len(x) < 2:
        raise InputError("a latent map needs at least 2 structures")
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    explained = (s**2) / max((s**2).sum(), 1e-12)
    return x @ vt[:2].T, explained[:2]


def draw_map(
    xy, values, out: Path, color_label: str, title: str, explained, highlight=None, highlight_label: str = ""
) -> Path:
    """Scatter plot: numeric values get a colour bar, labels a legend (top 10 + 'other');
    ``highlight`` (a boolean mask) rings the points it marks, e.g. those sent to the oracle."""
    fig = Figure(figsize=(7.5, 6), dpi=130)
    ax = fig.subplots()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        vals = np.asarray(values, dtype=float)
        finite = np.isfinite(vals)
        if (~finite).any():
            ax.scatter(xy[~finite, 0], xy[~finite, 1], s=6, c="lightgrey", label="no value", linewidths=0)
        lo, hi = np.percentile(vals[finite], [2, 98]) if finite.any() else (0, 1)
        sc = ax.scatter(
            xy[finite, 0], xy[finite, 1], s=8, c=vals[finite], cmap="viridis", vmin=lo, vmax=hi, linewidths=0
        )
        fig.colorbar(sc, ax=ax, label=color_label)
    else:
        labels = [str(v) for v in values]
        top = [name for name, _ in Counter(labels).most_common(10)]
        cmap = colormaps["tab10"]
        other = [i for i, v in enumerate(labels) if v not in top]
        if other:
            ax.scatter(xy[other, 0], xy[other, 1], s=6, c="lightgrey", label=f"other ({len(other)})", linewidths=0)
        for k, name in enumerate(top):
            idx = [i for i, v in enumerate(labels) if v == name]
            ax.scatter(xy[idx, 0], xy[idx, 1], s=8, color=cmap(k % 10), label=f"{name} ({len(idx)})", linewidths=0)
        ax.legend(title=color_label, fontsize=7, title_fontsize=8, markerscale=2, loc="best", framealpha=0.85)
    if highlight is not None and np.asarray(highlight).any():
        mask = np.asarray(highlight, dtype=bool)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=40, facecolors="none", edgecolors="tab:red", label=highlight_label)
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
