"""What the campaign looks for, as a plain dataclass the pure screening functions understand.

The lead converts ``motif_screen.db.documents.Target`` into :class:`TargetSpec`; keeping the
screening functions free of mongoengine makes them testable and usable outside a database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motif_screen.errors import InputError

__all__ = ["GOALS", "TargetSpec", "is_hit"]

GOALS = ("minimize", "maximize", "range")


@dataclass(frozen=True)
class TargetSpec:
    """A property, a goal, and the threshold(s) that make a value a hit.

    ``minimize``: hit if value <= ``upper``; ``maximize``: hit if value >= ``lower``;
    ``range``: hit if ``lower`` <= value <= ``upper`` — the same meaning as the database ``Target``.
    """

    property: str
    goal: str
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        if not isinstance(self.property, str) or not self.property:
            raise InputError("A screening target needs a property name.")
        if self.goal not in GOALS:
            raise InputError(f"Unknown target goal {self.goal!r}; choose one of {', '.join(GOALS)}.")
        needs = {"minimize": ("upper",), "maximize": ("lower",), "range": ("lower", "upper")}[self.goal]
        for name in needs:
            value = getattr(self, name)
            if value is None or not math.isfinite(float(value)):
                raise InputError(f"Target {self.property} with goal {self.goal} needs a finite '{name}' threshold.")
        if self.goal == "range" and not float(self.lower) < float(self.upper):
            raise InputError(f"Target {self.property} range needs lower < upper, got [{self.lower}, {self.upper}].")

    @classmethod
    def from_document(cls, target) -> TargetSpec:
        """From anything with ``property``, ``goal``, ``lower``, ``upper`` attributes (e.g. db ``Target``) or a dict."""
        get = target.get if isinstance(target, dict) else lambda k, d=None: getattr(target, k, d)
        return cls(get("property"), get("goal"), get("lower"), get("upper"))


def is_hit(value, target: TargetSpec):
    """Whether a value (scalar -> bool, array -> bool array) is a hit; NaN is never a hit."""
    v = np.asarray(value, dtype=float)
    if target.goal == "minimize":
        hit = v <= target.upper
    elif target.goal == "maximize":
        hit = v >= target.lower
    else:
        hit = (v >= target.lower) & (v <= target.upper)
    hit = hit & np.isfinite(v)
    return bool(hit) if hit.ndim == 0 else hit
