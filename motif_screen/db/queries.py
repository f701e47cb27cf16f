"""Typed candidate queries and funnel counts.

User text never reaches MongoDB as an operator: every filter value is parsed into a number, an
element symbol, a known status or a validated name first, and only our own field names (from
this module) appear as keys. A string like ``{"$where": ...}`` is therefore just an unknown
campaign name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from pymatgen.core import Composition
from pymatgen.core.periodic_table import Element

from motif_screen import keys
from motif_screen.db.documents import Candidate, OracleResult
from motif_screen.errors import InputError
from motif_screen.structures.motifs import parse_motif_filter
from motif_screen.structures.prototypes import PROTOTYPES

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# CLI option name -> stored property name
PROPERTY_OPTIONS = {
    "band-gap": keys.BAND_GAP,
    "formation-energy": keys.FORMATION_ENERGY,
    "energy-above-hull": keys.ENERGY_ABOVE_HULL,
    "energy-per-atom": keys.ENERGY_PER_ATOM,
}
SORT_FIELDS = ("acquisition", "created", "formula", "nsites", "round")
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class Range:
    lower: float | None = None
    upper: float | None = None

    def to_mongo(self) -> dict:
        cond = {}
        if self.lower is not None:
            cond["$gte"] = self.lower
        if self.upper is not None:
            cond["$lte"] = self.upper
        return cond


def parse_range(text: str, name: str = "range") -> Range:
    """``"1.0:3.0"``, ``"1:"`` or ``":3"`` -> Range; anything else is an InputError."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise InputError(f"--{name} {text!r}: expected LOW:HIGH, LOW: or :HIGH (e.g. 1.0:3.0)")
    parts: list[float | None] = []
    for part in text.split(":"):
        part = part.strip()
        if not part:
            parts.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise InputError(f"--{name} {text!r}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"--{name} {text!r}: bounds must be finite numbers")
        parts.append(value)
    lower, upper = parts
    if lower is None and upper is None:
        raise InputError(f"--{name} {text!r}: give at least one bound")
    if lower is not None and upper is not None and lower > upper:
        raise InputError(f"--{name} {text!r}: the lower bound is above the upper bound")
    return Range(lower, upper)


def validate_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InputError(f"{what} {value!r} is not a valid name (letters, digits, '_', '-', '.'; at most 64)")
    return value


def validate_element(symbol: str) -> str:
    if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol.strip()):
        raise InputError(f"{symbol!r} is not an element symbol")
    return symbol.strip()


def validate_motif(label: str) -> str:
    """Canonical motif label, e.g. ``Ti:octahedral:O``."""
    if not isinstance(label, str):
        raise InputError(f"motif {label!r} is not of the form ELEMENT:ENVIRONMENT:LIGAND, e.g. Ti:octahedral:O")
    parsed = parse_motif_filter(label)
    return getattr(parsed, "label", None) or str(parsed)


@dataclass
class CandidateQuery:
    """What `motif-screen query` can ask; ``to_filter()`` is the only place filters are built."""

    campaign: str | None = None
    statuses: list[str] = field(default_factory=list)
    ranges: dict[str, Range] = field(default_factory=dict)  # stored property name -> Range
    on: str = "predicted"  # predicted | oracle
    elements: list[str] = field(default_factory=list)  # every one must be present
    formula: str | None = None
    motif: str | None = None
    prototype: str | None = None  # of A B X3 cells: one of structures.prototypes.PROTOTYPES
    model_version: int | None = None
    round: int | None = None
    sort: str = "acquisition"
    descending: bool = True
    limit: int = 50

    def validate(self) -> CandidateQuery:
        if self.campaign is not None:
            validate_name(self.campaign, "campaign")
        for status in self.statuses:
            if status not in keys.CANDIDATE_STATUSES:
                raise InputError(f"unknown status {status!r}; expected one of {', '.join(keys.CANDIDATE_STATUSES)}")
        for prop in self.ranges:
            if prop not in keys.KNOWN_PROPERTIES:
                raise InputError(f"unknown property {prop!r}; expected one of {', '.join(keys.KNOWN_PROPERTIES)}")
        if self.on not in ("predicted", "oracle"):
            raise InputError(f"--on must be 'predicted' or 'oracle', not {self.on!r}")
        self.elements = [validate_element(e) for e in self.elements]
        if self.formula is not None:
            try:
                self.formula = Composition(self.formula).reduced_formula
            except Exception:
                raise InputError(f"{self.formula!r} is not a chemical formula") from None
        if self.motif is not None:
            self.motif = validate_motif(self.motif)
        if self.prototype is not None and self.prototype not in PROTOTYPES:
            raise InputError(f"unknown prototype {self.prototype!r}; expected one of {', '.join(PROTOTYPES)}")
        if self.sort not in SORT_FIELDS:
            raise InputError(f"cannot sort by {self.sort!r}; choose one of {', '.join(SORT_FIELDS)}")
        if not (1 <= int(self.limit) <= MAX_LIMIT):
            raise InputError(f"--limit must be between 1 and {MAX_LIMIT}")
        return self

    def to_filter(self) -> dict:
        self.validate()
        flt: dict = {}
        if self.campaign is not None:
            flt["campaign"] = self.campaign
        if self.statuses:
            flt["status"] = {"$in": list(self.statuses)}
        for prop, rng in self.ranges.items():
            path = f"predictions.{prop}.mean" if self.on == "predicted" else f"oracle.{prop}"
            flt[path] = rng.to_mongo()
        if self.elements:
            flt["elements"] = {"$all": list(self.elements)}
        if self.formula is not None:
            flt["formula"] = self.formula
        if self.motif is not None:
            flt["motif_labels"] = self.motif
        if self.prototype is not None:
            flt["motifs.prototype"] = self.prototype
        if self.model_version is not None:
            flt["origin.model_version"] = int(self.model_version)
        if self.round is not None:
            flt["origin.round"] = int(self.round)
        return flt

    def sort_spec(self) -> list[tuple[str, int]]:
        field_name = "origin.round" if self.sort == "round" else self.sort
        return [(field_name, -1 if self.descending else 1), ("_id", 1)]


def find_candidates(query: CandidateQuery):
    """Matching Candidate documents, sorted and limited."""
    flt = query.to_filter()
    return list(
        Candidate.objects(__raw__=flt)
        .order_by(*[("-" if d < 0 else "+") + f for f, d in query.sort_spec()])
        .limit(int(query.limit))
    )


def funnel_counts(campaign: str | None = None) -> dict[str, dict]:
    """``{campaign: {"total": {status: n}, "rounds": {round: {status: n}}}}``."""
    match = {"campaign": validate_name(campaign, "campaign")} if campaign else {}
    pipeline = [
        {"$match": match},
        {"$group": {"_id": {"c": "$campaign", "r": "$origin.round", "s": "$status"}, "n": {"$sum": 1}}},
    ]
    out: dict[str, dict] = {}
    # mongoengine's documented way to its pymongo collection (an atomic upsert / aggregation)
    for row in Candidate._get_collection().aggregate(pipeline):
        c, r, s = row["_id"]["c"], row["_id"].get("r"), row["_id"]["s"]
        entry = out.setdefault(c, {"total": {st: 0 for st in keys.CANDIDATE_STATUSES}, "rounds": {}})
        entry["total"][s] = entry["total"].get(s, 0) + row["n"]
        per_round = entry["rounds"].setdefault(r, {st: 0 for st in keys.CANDIDATE_STATUSES})
        per_round[s] = per_round.get(s, 0) + row["n"]
    return out


def candidate_row(doc) -> dict:
    """One flat, JSON-able row per candidate (the query CLI's table, JSON and CSV, and the run report)."""
    row = {
        "id": str(doc.id),
        "campaign": doc.campaign,
        "formula": doc.formula,
        "nsites": doc.nsites,
        "status": doc.status,
        "round": doc.origin.round if doc.origin else None,
        "method": doc.origin.method if doc.origin else None,
        "model_version": doc.origin.model_version if doc.origin else None,
        "acquisition": doc.acquisition,
    }
    for prop in keys.KNOWN_PROPERTIES:
        pred = (doc.predictions or {}).get(prop)
        row[f"pred_{prop}"] = pred.mean if pred else None
        row[f"pred_{prop}_std"] = pred.std if pred else None
    oracle = doc.oracle or {}
    row["oracle_source"] = oracle.get("source")
    for prop in keys.KNOWN_PROPERTIES:
        row[f"oracle_{prop}"] = oracle.get(prop)
    row["awaiting_references"] = " ".join(oracle.get("awaiting_references") or [])
    row["motifs"] = " ".join(doc.motif_labels or [])
    row["prototype"] = (doc.motifs or {}).get("prototype")
    row["status_reason"] = doc.status_reason
    row["fw_id"] = doc.fw_id
    row["task_ids"] = " ".join(doc.task_ids or [])
    return row


def successful_results(sources, campaign: str | None = None) -> list:
    """Successful oracle results of the given sources (and campaign), e.g. as a training set."""
    flt = {"run_status": "successful", "source__in": list(sources)}
    if campaign is not None:
        flt["campaign"] = validate_name(campaign, "campaign")
    return list(OracleResult.objects(**flt))
