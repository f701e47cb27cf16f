"""motif_screen.screening — pure functions that decide which candidates are worth an oracle call.

No database access: the campaign's steps convert documents to these types and back.
"""

from motif_screen.screening.acquisition import ACQUISITION_KINDS, acquisition
from motif_screen.screening.pipeline import (
    FUNNEL,
    CandidateDecision,
    ScreenResult,
    ScreenSettings,
    assess,
    decide,
    screen,
)
from motif_screen.screening.selection import select_top
from motif_screen.screening.targets import GOALS, TargetSpec, is_hit

__all__ = [
    "ACQUISITION_KINDS",
    "FUNNEL",
    "GOALS",
    "CandidateDecision",
    "ScreenResult",
    "ScreenSettings",
    "TargetSpec",
    "acquisition",
    "assess",
    "decide",
    "is_hit",
    "screen",
    "select_top",
]
