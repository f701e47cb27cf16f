"""Acquisition scores: how much an oracle calculation of a candidate is worth, from mean and uncertainty.

Higher is better for every kind and goal, so selection is always "take the top scores":

* ``ucb`` — optimistic value: ``mean + κ·std`` when maximising, ``-(mean - κ·std)`` when
  minimising, ``κ·std - distance(mean, [lower, upper])`` for a range;
* ``ei`` — expected improvement over the hit threshold under a Gaussian predictive
  distribution (for a range: the expected depth inside the window, ``E[(h - |Y - c|)+]``);
* ``prob_hit`` — probability that the oracle value is a hit.

With ``std == 0`` each reduces to its deterministic limit.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from motif_screen.errors import InputError
from motif_screen.screening.targets import TargetSpec

__all__ = ["ACQUISITION_KINDS", "acquisition"]

ACQUISITION_KINDS = ("ucb", "ei", "prob_hit")
_TINY = 1e-12


def _pdf(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _gaussian_excess(mean, std, threshold):
    """E[(Y - threshold)+] for Y ~ N(mean, std²); exact limit at std = 0."""
    s = np.maximum(std, _TINY)
    z = (mean - threshold) / s
    value = (mean - threshold) * ndtr(z) + s * _pdf(z)
    return np.where(std > _TINY, value, np.maximum(mean - threshold, 0.0))


def _partial_first_moment(mean, std, lo, hi):
    """E[Y · 1{lo < Y < hi}] and P(lo < Y < hi) for Y ~ N(mean, std²), std > 0."""
    a, b = (lo - mean) / std, (hi - mean) / std
    prob = ndtr(b) - ndtr(a)
    return mean * prob + std * (_pdf(a) - _pdf(b)), prob


def _range_ei(mean, std, lower, upper):
    c, h = 0.5 * (lower + upper), 0.5 * (upper - lower)
    s = np.maximum(std, _TINY)
    m_up, p_up = _partial_first_moment(mean, s, c, c + h)  # Y in (c, c+h): h - (Y - c)
    m_dn, p_dn = _partial_first_moment(mean, s, c - h, c)  # Y in (c-h, c): h + (Y - c)
    value = (h + c) * p_up - m_up + (h - c) * p_dn + m_dn
    return np.where(std > _TINY, np.maximum(value, 0.0), np.maximum(h - np.abs(mean - c), 0.0))


def _prob_hit(mean, std, target):
    s = np.maximum(std, _TINY)
    if target.goal == "maximize":
        p = 1 - ndtr((target.lower - mean) / s)
        exact = (mean >= target.lower).astype(float)
    elif target.goal == "minimize":
        p = ndtr((target.upper - mean) / s)
        exact = (mean <= target.upper).astype(float)
    else:
        p = ndtr((target.upper - mean) / s) - ndtr((target.lower - mean) / s)
        exact = ((mean >= target.lower) & (mean <= target.upper)).astype(float)
    return np.where(std > _TINY, p, exact)


def acquisition(mean, std, target: TargetSpec, kind: str = "ucb", kappa: float = 2.0) -> np.ndarray:
    """Acquisition score per candidate (higher = more worth an oracle call); NaN where mean/std are NaN."""
    if not isinstance(target, TargetSpec):
        raise InputError(f"acquisition needs a TargetSpec, got {type(target).__name__}.")
    if kind not in ACQUISITION_KINDS:
        raise InputError(f"Unknown acquisition kind {kind!r}; choose one of {', '.join(ACQUISITION_KINDS)}.")
    mean = np.asarray(mean, dtype=float)
    std = np.zeros_like(mean) if std is None else np.asarray(std, dtype=float)
    if mean.shape != std.shape or mean.ndim != 1:
        raise InputError(f"acquisition needs 1-D mean and std of equal length, got {mean.shape} and {std.shape}.")
    if np.any(std < 0):
        raise InputError("acquisition got a negative predictive standard deviation.")
    if not np.isfinite(kappa) or kappa < 0:
        raise InputError(f"kappa must be a finite number >= 0, got {kappa}.")
    with np.errstate(invalid="ignore"):
        if kind == "ucb":
            if target.goal == "maximize":
                score = mean + kappa * std
            elif target.goal == "minimize":
                score = -mean + kappa * std
            else:
                distance = np.maximum.reduce([target.lower - mean, mean - target.upper, np.zeros_like(mean)])
                score = kappa * std - distance
        elif kind == "ei":
            if target.goal == "maximize":
                score = _gaussian_excess(mean, std, target.lower)
            elif target.goal == "minimize":
                assert target.upper is not None  # TargetSpec requires it for a minimize goal
                score = _gaussian_excess(-mean, std, -target.upper)
            else:
                score = _range_ei(mean, std, target.lower, target.upper)
        else:
            score = _prob_hit(mean, std, target)
    score = np.asarray(score, dtype=float)
    score[~(np.isfinite(mean) & np.isfinite(std))] = np.nan
    return score
