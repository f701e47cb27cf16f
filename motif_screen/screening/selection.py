"""Choosing what to send to the oracle within a budget."""

from __future__ import annotations

import numpy as np

from motif_screen.errors import InputError

__all__ = ["select_top"]


def select_top(scores, budget: int, mask=None) -> np.ndarray:
    """Indices of the ``budget`` highest scores among ``mask``-allowed entries, best first.

    NaN scores are never selected; ties keep input order; fewer than ``budget`` eligible
    entries returns them all.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise InputError(f"select_top needs a 1-D score array, got shape {scores.shape}.")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(f"The selection budget must be a positive integer, got {budget!r}.")
    allowed = np.isfinite(scores)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != scores.shape:
            raise InputError(f"select_top mask has shape {mask.shape}, scores {scores.shape}.")
        allowed &= mask
    eligible = np.flatnonzero(allowed)
    order = np.argsort(-scores[eligible], kind="stable")
    return eligible[order[:budget]]
