"""What every generation mode returns: structures with provenance, and an honest validity tally.

A decoder output that fails a validity check is neither dropped nor passed on silently: it stays
in the report with ``valid=False`` and its reason, and ``failure_counts`` tallies the reasons, so
a user sees "812 of 1,000 valid; 150 invalid:charge, 38 invalid:distance".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from motif_screen import limits
from motif_screen.structures.validity import check_validity

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

__all__ = ["GeneratedStructure", "GenerationReport", "MAX_REQUEST", "check_count", "assess"]

MAX_REQUEST = limits.STRUCTURES_PER_CALL.high  # one call; more is a mistake (a million CIFs) rather than a plan


@dataclass
class GeneratedStructure:
    """One decoded structure and where it came from."""

    structure: Structure | Molecule  # crystals or molecules
    mode: str  # prior | perturb | interpolate | guided | constrained
    parents: list[str]  # ids/names of the structures it was derived from ([] for prior samples)
    latent: list[float]  # the latent vector that was decoded
    model_version: int | None
    model_name: str | None = None
    valid: bool = True
    reason: str = ""  # "" or "invalid:<check>" (see motif_screen.structures.validity)
    validity: dict = field(default_factory=dict)  # check -> {"ok", "detail"}
    predictions: dict = field(default_factory=dict)  # property -> (mean, std) from the latent heads

    def provenance(self) -> dict:
        """Flat, JSON-able record (CSV rows, Candidate.origin)."""
        return {
            "mode": self.mode,
            "parents": ";".join(self.parents),
            "model_name": self.model_name or "",
            "model_version": "" if self.model_version is None else self.model_version,
            "formula": self.structure.composition.reduced_formula,
            "nsites": len(self.structure),
            "valid": self.valid,
            "reason": self.reason,
            "latent": " ".join(f"{x:.5g}" for x in self.latent),
            **{f"pred_{k}": v[0] for k, v in self.predictions.items()},
            **{f"pred_{k}_std": v[1] for k, v in self.predictions.items()},
        }


@dataclass
class GenerationReport:
    """All structures of one request (valid and invalid) plus the failure tally; iterable like a list."""

    mode: str
    requested: int
    structures: list[GeneratedStructure]
    seconds: float = 0.0
    # family modes: how many formulas passed each composition rule, in order (generation.families.FUNNEL)
    formula_rules: dict[str, int] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.structures)

    def __len__(self) -> int:
        return len(self.structures)

    def __getitem__(self, i):
        return self.structures[i]

    @property
    def valid(self) -> list[GeneratedStructure]:
        return [g for g in self.structures if g.valid]

    @property
    def failure_counts(self) -> dict[str, int]:
        return dict(Counter(g.reason for g in self.structures if not g.valid))

    def summary(self) -> str:
        failed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failure_counts.items(), key=lambda kv: -kv[1]))
        text = f"{self.mode}: {len(self.valid)} of {len(self.structures)} valid"
        text += (f"; {failed}" if failed else "") + f" ({self.seconds:.1f} s)"
        if self.formula_rules:
            text += "; formulas: " + " -> ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.formula_rules.items())
        return text


def check_count(n, what: str = "structures") -> int:
    """A request size between 1 and MAX_REQUEST, else InputError."""
    return int(limits.STRUCTURES_PER_CALL.check(n, f"the number of {what}"))


def assess(structure, check_charge: bool = True) -> tuple[bool, str, dict]:
    """(valid, reason, per-check dict) with the shared validity checks."""
    report = check_validity(structure, check_charge=check_charge)
    return report.ok, report.reason, report.to_dict()
