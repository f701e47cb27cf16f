"""Regression and calibration metrics for mean ± std predictions (numpy and scipy)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

_LEVELS = np.linspace(0.01, 0.99, 99)


def coverage(y, mean, std, k: float) -> float:
    """Fraction of labels inside mean ± k·std (0.683 for k=1 and 0.954 for k=2 when calibrated)."""
    y, mean, std = map(np.asarray, (y, mean, std))
    return float(np.mean(np.abs(y - mean) <= k * std)) if y.size else float("nan")


def miscalibration_area(y, mean, std) -> float:
    """Mean |observed − expected| coverage of central Gaussian intervals over levels 1..99%.

    0 is perfect; 0.5 is the worst possible (Tran et al. 2020, "Methods for comparing
    uncertainty quantifications for material property predictions").
    """
    y, mean, std = map(np.asarray, (y, mean, std))
    if not y.size:
        return float("nan")
    z = np.abs(y - mean) / np.maximum(std, 1e-12)
    half_widths = ndtri(0.5 + _LEVELS / 2)
    observed = (z[None, :] <= half_widths[:, None]).mean(axis=1)
    return float(np.mean(np.abs(observed - _LEVELS)))


def gaussian_nll(y, mean, std) -> float:
    y, mean, std = map(np.asarray, (y, mean, std))
    var = np.maximum(std, 1e-12) ** 2
    return float(np.mean(0.5 * (np.log(2 * math.pi * var) + (y - mean) ** 2 / var))) if y.size else float("nan")


def std_scale_factor(y, mean, std) -> float:
    """The factor s for which mean ± s·std has the smallest miscalibration area on these rows.

    Recalibration by coverage, not by likelihood: the NLL-optimal s² = mean(z²) is set by the few
    largest errors, so on oracle labels with heavy tails (a CHGNet relaxation of a broken cell ends
    at +10 eV/atom) it inflated σ about threefold for every other candidate (1σ coverage 0.98).
    Matching the observed coverage of central intervals at every level keeps σ honest for the bulk
    and leaves the tail visible as under-coverage at 2σ. Gaussian errors give s² ≈ mean(z²) either way.
    """
    y, mean, std = (np.asarray(a, dtype=float) for a in (y, mean, std))
    z = np.abs(y - mean) / np.maximum(std, 1e-12)
    z = np.sort(z[np.isfinite(z)])
    if z.size < 2 or not np.any(z > 0):
        return 1.0
    half_widths = ndtri(0.5 + _LEVELS / 2)

    def area(scale: float) -> float:
        return float(np.mean(np.abs(np.searchsorted(z, half_widths * scale, side="right") / z.size - _LEVELS)))

    guess = float(np.median(z) / ndtri(0.75))
    grid = guess * np.exp(np.linspace(-2.0, 2.0, 801))  # guess / 7.4 .. guess * 7.4, steps of 0.5%
    return float(min(grid, key=area))


def spearman(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    if a.size < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def regression_metrics(y, mean, std=None) -> dict[str, float]:
    """MAE, RMSE and, with a std, 1σ/2σ coverage, miscalibration area, NLL and error–std rank correlation.

    Missing labels (NaN) are ignored.
    """
    y, mean = np.asarray(y, dtype=float), np.asarray(mean, dtype=float)
    keep = np.isfinite(y)
    y, mean = y[keep], mean[keep]
    err = mean - y
    out = {
        "count": float(y.size),
        "mae": float(np.mean(np.abs(err))) if y.size else float("nan"),
        "rmse": float(np.sqrt(np.mean(err**2))) if y.size else float("nan"),
    }
    if std is not None:
        std = np.asarray(std, dtype=float)[keep]
        out.update(
            coverage_1sigma=coverage(y, mean, std, 1.0),
            coverage_2sigma=coverage(y, mean, std, 2.0),
            miscalibration_area=miscalibration_area(y, mean, std),
            nll=gaussian_nll(y, mean, std),
            mean_std=float(np.mean(std)) if y.size else float("nan"),
            error_std_spearman=spearman(np.abs(err), std),
        )
    return out
