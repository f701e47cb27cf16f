"""What a campaign looks for: one target type, used by the screening functions, the campaign spec
and the stored campaign alike.

``minimize``: hit if value <= ``upper``; ``maximize``: hit if value >= ``lower``;
``range``: hit if ``lower`` <= value <= ``upper``. Values are in the oracle's units.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict

from motif_screen import keys
from motif_screen.errors import InputError

__all__ = ["GOALS", "TargetSpec", "is_hit"]

GOALS = ("minimize", "maximize", "range")


@dataclass(frozen=True)
class TargetSpec:
    """A property, a goal, the threshold(s) that make a value a hit, and an optional composition.

    ``composition`` (a chemical system such as ``"Ba-Ti-O"`` or a formula) constrains generation.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")  # unknown keys in a campaign file are an error

    property: str
    goal: Literal["minimize", "maximize", "range"]
    lower: float | None = None
    upper: float | None = None
    composition: str | None = None

    def __post_init__(self):
        if self.property not in keys.KNOWN_PROPERTIES:
            raise InputError(
                f"unknown target property {self.property!r}; choose one of {', '.join(keys.KNOWN_PROPERTIES)}"
            )
        if self.goal not in GOALS:
            raise InputError(f"unknown target goal {self.goal!r}; choose one of {', '.join(GOALS)}")
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not math.isfinite(float(value))):
                raise InputError(f"target `{name}` must be a finite number, not {value!r}")
        if self.goal == "minimize" and self.upper is None:
            raise InputError("a minimize target needs `upper`: the value at or below which a candidate is a hit")
        if self.goal == "maximize" and self.lower is None:
            raise InputError("a maximize target needs `lower`: the value at or above which a candidate is a hit")
        if self.goal == "range" and (self.lower is None or self.upper is None):
            raise InputError("a range target needs both `lower` and `upper`")
        if self.lower is not None and self.upper is not None and float(self.lower) > float(self.upper):
            raise InputError("target lower is above upper")
        if self.goal == "range" and float(self.lower) == float(self.upper):
            raise InputError("a range target needs lower < upper")

    @classmethod
    def from_document(cls, target) -> TargetSpec:
        """From a mapping (a stored campaign's ``target``) or anything with these attributes."""

        def get(key: str) -> Any:  # unchecked stored values: __post_init__ validates them
            return target.get(key) if isinstance(target, dict) else getattr(target, key, None)

        return cls(get("property"), get("goal"), get("lower"), get("upper"), get("composition"))

    def to_dict(self) -> dict:
        return asdict(self)

    @builtins.property  # the field `property` shadows the builtin for type checkers
    def learned_property(self) -> str:
        """The property the model's head predicts for this target (stability comes from formation energy)."""
        return keys.LEARNED_PROPERTY[self.property]

    def is_hit(self, value) -> bool:
        """A scalar value (None or NaN never is)."""
        return value is not None and bool(is_hit(value, self))


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
